import { guestUuid, type GuestInfo } from './guest-info.ts';

/**
 * The values of QEMU's `-smbios` options for a guest, one per option:
 *
 *   qemu-system-x86_64 … -smbios <value[0]> -smbios <value[1]>
 *
 * crowdcloud presents itself as **OpenStack**: system product "OpenStack
 * Nova" (and chassis asset tag the same), which both cloud-init's
 * ds-identify and its OpenStack datasource treat as proof of an OpenStack
 * metadata service at 169.254.169.254. Stock images then read
 * `/openstack/latest/{meta_data,network_data,vendor_data2}.json` and
 * `user_data` with no image changes and no kernel arguments.
 *
 * Not EC2: cloud-init only identifies EC2 from Amazon's own DMI strings
 * (`Amazon EC2`, a system UUID starting `ec2`); claiming those would make
 * cloud-init (and other software) believe it runs on AWS: AWS package
 * mirrors, AWS-specific behaviour and probes. Without them the Ec2 datasource
 * is only used when asked for, and then warns "not running on EC2". The
 * EC2 tree is still served for images and tools that read it.
 *
 * The system UUID and serial are the guest's `guestUuid`, equal to the
 * OpenStack `uuid`, so cloud-init can check its cached instance-id against
 * DMI on later boots without the network.
 *
 * Fallbacks: a NoCloud `cidata` seed disk wins over OpenStack (ds-identify
 * checks NoCloud first), which is how guests without a network at boot are
 * served. For images whose cloud-init lacks the OpenStack datasource, the
 * kernel command line can force another: `ci.ds=Ec2
 * ci.datasource.ec2.strict_id=false` (reads the EC2 tree) or `ci.ds=NoCloud`
 * (seed disk).
 */
export function smbiosValues(guest: GuestInfo): string[] {
  const uuid = guestUuid(guest.instanceId);
  const system = {
    manufacturer: 'OpenStack Foundation',
    product: 'OpenStack Nova',
    version: 'crowdcloud',
    serial: uuid,
    uuid,
    family: 'Virtual Machine',
  };
  const chassis = { manufacturer: 'crowdcloud', asset: 'OpenStack Nova' };
  return [`type=1,${fields(system)}`, `type=3,${fields(chassis)}`];
}

/** QEMU option syntax: `k=v` joined by commas, a comma inside a value doubled. */
function fields(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}=${v.replaceAll(',', ',,')}`)
    .join(',');
}
