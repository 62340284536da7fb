import type { NicConfig } from '../vm-config.ts';
import { netdevProps, nicDeviceProps, nicIds, pciNics, type PluggedNic } from './qemu-nics.ts';
import type { QmpClient, QmpEvent } from './qmp-client.ts';

/**
 * The NICs a running QEMU holds and its reserved root ports, asked over QMP
 * (how a re-adopted VM's NICs are known). A q35 VM started before NICs had
 * ids and ports holds its config's NICs on the root bus.
 */
export async function queryNics(q: QmpClient, o: { pcie: boolean; configured: NicConfig[] }): Promise<{ nics: PluggedNic[]; ports: string[] }> {
  const found = pciNics(await q.execute<{ devices?: [] }[]>('query-pci'));
  if (o.pcie && found.nics.length === 0 && found.ports.length === 0) return { nics: [...o.configured], ports: [] };
  const nics = await Promise.all(found.nics.map(async (n) => ({ ...n, mac: String(await q.execute('qom-get', { path: `/machine/peripheral/${nicIds(n.tap).device}`, property: 'mac' })) })));
  return { nics, ports: found.ports };
}

/**
 * netdev_add then device_add with the cold-boot options; a device QEMU
 * refuses takes its backend away again, so nothing is left half-plugged.
 */
export async function plugNic(q: QmpClient, nic: NicConfig, port: string | undefined): Promise<void> {
  const { netdev } = nicIds(nic.tap);
  // A backend left by a guest that released its device after the driver stopped waiting.
  await q.execute('netdev_del', { id: netdev }).catch(() => undefined);
  const { type, id, ...rest } = netdevProps(nic);
  await q.execute('netdev_add', { type: type!, id: id!, ...rest });
  try {
    await q.execute('device_add', nicDeviceProps(nic, port));
  } catch (e) {
    await q.execute('netdev_del', { id: netdev }).catch(() => undefined);
    throw e;
  }
}

/**
 * device_del, then waits for the guest to release the device (DEVICE_DELETED)
 * until the deadline, then netdev_del. False when the guest did not let go in
 * time: the device stays until it does (or the VM restarts).
 */
export async function unplugNic(q: QmpClient, nic: NicConfig, timeoutMs: number): Promise<boolean> {
  const ids = nicIds(nic.tap);
  let onEvent: (ev: QmpEvent) => void = () => undefined;
  let onClose: () => void = () => undefined;
  let timer: NodeJS.Timeout | undefined;
  const released = new Promise<boolean>((resolve) => {
    onEvent = (ev) => ev.event === 'DEVICE_DELETED' && ev.data?.device === ids.device && resolve(true);
    onClose = () => resolve(false);
    q.on('event', onEvent);
    q.once('close', onClose);
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    await q.execute('device_del', { id: ids.device });
    if (!(await released)) return false;
  } finally {
    clearTimeout(timer);
    q.off('event', onEvent);
    q.off('close', onClose);
  }
  await q.execute('netdev_del', { id: ids.netdev });
  return true;
}
