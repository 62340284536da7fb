#!/bin/bash
# build-busybox-disk.sh OUT_DIR [KVER]
#
# Builds a tiny BOOTABLE DISK test guest, like a real cloud image: a
# partition-less FAT disk with syslinux in its boot sector, the Debian cloud
# kernel and a busybox-static initramfs. SeaBIOS boots it (no -kernel needed).
# Writes OUT_DIR/disk.qcow2 (and nothing else in OUT_DIR).
#
# The guest's /init, on the serial console (ttyS0):
#   1. prints "CROWD-GUEST-UP",
#   2. brings up eth0 with DHCP when a NIC is present (no NIC: skipped),
#   3. prints "CROWD-GUEST-READY",
#   4. powers off on an ACPI power-button press (QMP system_powerdown),
#   5. otherwise idles with a shell on the console (it never powers off itself).
#
# Needs (Debian 12): busybox-static, linux-image-cloud-amd64, syslinux,
# syslinux-common, mtools, dosfstools, qemu-utils, cpio, gzip.
# Uses no mounts, loop devices or root.
set -euo pipefail

OUT=${1:?usage: build-busybox-disk.sh OUT_DIR [KVER]}
KVER=${2:-$(ls /lib/modules | grep -- '-cloud-amd64$' | sort -V | tail -1)}
KERNEL=/boot/vmlinuz-$KVER
MODDIR=/lib/modules/$KVER
BUSYBOX=/bin/busybox
SYSLINUX_BIOS=/usr/lib/syslinux/modules/bios

[ -n "$KVER" ] && [ -r "$KERNEL" ] || { echo "no readable cloud kernel (/boot/vmlinuz-$KVER): apt-get install linux-image-cloud-amd64" >&2; exit 1; }
file -L "$BUSYBOX" | grep -q 'statically linked' || { echo "$BUSYBOX is not static: apt-get install busybox-static" >&2; exit 1; }
for t in mkfs.vfat mcopy syslinux qemu-img cpio gzip; do
  command -v "$t" >/dev/null || { echo "missing tool $t: apt-get install syslinux syslinux-common mtools dosfstools qemu-utils cpio" >&2; exit 1; }
done
[ -r "$SYSLINUX_BIOS/ldlinux.c32" ] || { echo "missing $SYSLINUX_BIOS/ldlinux.c32: apt-get install syslinux-common" >&2; exit 1; }

mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,run,lib/modules,usr/share/udhcpc}
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in $("$BUSYBOX" --list-full); do
  [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$ROOT/$applet"
done

# Modules, in load order. virtio, the NIC, the ACPI power button and evdev are
# all modules (=m) in the Debian cloud kernel; built-in ones are skipped.
MODS="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net button evdev"
: > "$ROOT/etc/modules.order"
for m in $MODS; do
  grep -qE "/$m\.ko(\.[gx]z|\.zst)?$" "$MODDIR/modules.builtin" 2>/dev/null && continue
  f=$(grep -E "(^|/)$m\.ko(\.[gx]z|\.zst)?:" "$MODDIR/modules.dep" | cut -d: -f1 | head -1)
  [ -n "$f" ] || { echo "module $m not found for $KVER" >&2; exit 1; }
  case "$f" in
    *.ko)     cp "$MODDIR/$f" "$ROOT/lib/modules/$m.ko" ;;
    *.ko.xz)  xz -dc "$MODDIR/$f" > "$ROOT/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$MODDIR/$f" > "$ROOT/lib/modules/$m.ko" ;;
    *.ko.gz)  gzip -dc "$MODDIR/$f" > "$ROOT/lib/modules/$m.ko" ;;
  esac
  echo "$m" >> "$ROOT/etc/modules.order"
done

cat > "$ROOT/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    # udhcpc's own output goes to /dev/null in /init; the marker goes to the console.
    echo "CROWD-GUEST-DHCP: $interface $ip/${mask:-24}" > /dev/console ;;
esac
exit 0
EOF
chmod +x "$ROOT/usr/share/udhcpc/default.script"

cat > "$ROOT/init" <<'EOF'
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "/lib/modules/$m.ko" 2>/dev/null; done < /etc/modules.order
echo "CROWD-GUEST-UP uptime=$(cut -d' ' -f1 /proc/uptime)"

# ACPI power button (QMP system_powerdown): any event on it powers off.
for d in /sys/class/input/input*; do
  [ "$(cat "$d/name" 2>/dev/null)" = "Power Button" ] || continue
  for e in "$d"/event*; do
    dev=/dev/input/${e##*/}
    i=0; while [ ! -e "$dev" ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done
    (head -c 1 "$dev" >/dev/null && echo "CROWD-GUEST-POWEROFF" && sync && poweroff -f) &
  done
done

ip link set lo up
# A virtio NIC (virtio device id 1) may take a moment to become eth0.
if grep -qx 0x0001 /sys/bus/virtio/devices/*/device 2>/dev/null; then
  i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done
fi
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up
  udhcpc -i eth0 -q -n -t 3 -T 1 -s /usr/share/udhcpc/default.script >/dev/null 2>&1 || echo "CROWD-GUEST-DHCP: none"
fi
echo "CROWD-GUEST-READY uptime=$(cut -d' ' -f1 /proc/uptime)"
while true; do setsid cttyhack sh; sleep 1; done
EOF
chmod +x "$ROOT/init"

(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -9n) > "$WORK/initrd.gz"
cp "$KERNEL" "$WORK/vmlinuz"

cat > "$WORK/syslinux.cfg" <<'EOF'
DEFAULT crowd
PROMPT 0
TIMEOUT 0
LABEL crowd
  LINUX /vmlinuz
  INITRD /initrd.gz
  APPEND console=ttyS0 panic=5 quiet
EOF

# FAT size: the payload plus 4 MiB of slack, in KiB.
kib=$(( ($(stat -c %s "$WORK/vmlinuz") + $(stat -c %s "$WORK/initrd.gz")) / 1024 + 4096 ))
mkfs.vfat -C -n CROWDGUEST "$WORK/disk.img" "$kib" >/dev/null
mcopy -i "$WORK/disk.img" "$WORK/vmlinuz" "$WORK/initrd.gz" "$WORK/syslinux.cfg" "$SYSLINUX_BIOS/ldlinux.c32" ::
syslinux --install "$WORK/disk.img"
qemu-img convert -f raw -O qcow2 "$WORK/disk.img" "$WORK/disk.qcow2"
mv "$WORK/disk.qcow2" "$OUT/disk.qcow2"
echo "built $OUT/disk.qcow2 for $KVER"
