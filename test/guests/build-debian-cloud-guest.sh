#!/bin/bash
# build-debian-cloud-guest.sh OUT_DIR
#
# Builds a real Debian 12 (bookworm) cloud guest as a BOOTABLE qcow2 disk,
# like a cloud image: an MBR disk whose first partition is FAT with syslinux,
# the guest's own kernel and initrd, and whose second partition is the ext4
# root (LABEL=crowd-root). SeaBIOS boots it; no -kernel needed.
# Writes OUT_DIR/disk.qcow2 (and nothing else in OUT_DIR).
#
# The guest has cloud-init, openssh-server, sudo and systemd-networkd +
# systemd-resolved, and stock datasource detection (crowdcloud's SMBIOS
# "OpenStack Nova" selects the OpenStack datasource). cloud-init only makes
# ed25519 host keys (RSA keygen is slow under TCG) and prints
# "CROWD-CLOUD-INIT-FINAL ds=… uptime=…" on the console at the end.
# Recipe and timings: ../../../shared/recipes/README.md section 2.
#
# Needs root (debootstrap, chroot), network access to the host's Debian
# mirror, and (Debian 12): debootstrap, e2fsprogs, dosfstools, mtools,
# syslinux, syslinux-common, qemu-utils. Uses no loop devices or mounts
# outside a private mount namespace.
set -euo pipefail

OUT=${1:?usage: build-debian-cloud-guest.sh OUT_DIR}
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)}
SECURITY_MIRROR=${SECURITY_MIRROR:-${MIRROR}-security}
SYSLINUX_BIOS=/usr/lib/syslinux/modules/bios
MBR_BIN=/usr/lib/syslinux/mbr/mbr.bin

[ "$(id -u)" = 0 ] || { echo "build-debian-cloud-guest.sh needs root (debootstrap, chroot)" >&2; exit 1; }
for t in debootstrap mkfs.ext4 mkfs.vfat mcopy syslinux qemu-img unshare; do
  command -v "$t" >/dev/null || { echo "missing tool $t: apt-get install debootstrap e2fsprogs dosfstools mtools syslinux syslinux-common qemu-utils" >&2; exit 1; }
done
[ -r "$SYSLINUX_BIOS/ldlinux.c32" ] && [ -r "$MBR_BIN" ] || { echo "missing syslinux BIOS files: apt-get install syslinux-common" >&2; exit 1; }

mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
R=$WORK/rootfs

# 1. A minimal base that debootstrap's resolver handles (cloud-init does not: gotcha 4).
debootstrap --variant=minbase --include=systemd-sysv,udev,dbus,iproute2,netbase,kmod \
    bookworm "$R" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
  || { tail -30 "$WORK/debootstrap.log" >&2; exit 1; }

# 2. apt in a chroot, inside a private mount namespace (its mounts vanish with it).
cat > "$R/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"; chmod +x "$R/usr/sbin/policy-rc.d"
cat > "$R/etc/dpkg/dpkg.cfg.d/01-crowd-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\nAcquire::Languages "none";\n' > "$R/etc/apt/apt.conf.d/01-crowd"
mkdir -p "$R/etc/initramfs-tools/conf.d"
printf 'MODULES=list\nCOMPRESS=gzip\n' > "$R/etc/initramfs-tools/conf.d/crowd.conf"
printf 'virtio_pci\nvirtio_blk\n' > "$R/etc/initramfs-tools/modules"
unshare --mount --propagation private /bin/bash -euo pipefail -c '
  R=$1
  mount -t proc proc "$R/proc"
  mount -t sysfs sysfs "$R/sys"
  mount --bind /dev "$R/dev"
  mount -t devpts devpts "$R/dev/pts" -o newinstance,ptmxmode=0666 || true
  export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 LANG=C.UTF-8
  chroot "$R" apt-get -qq update
  chroot "$R" apt-get -y -qq -o Dpkg::Use-Pty=0 dist-upgrade
  chroot "$R" apt-get -y -qq -o Dpkg::Use-Pty=0 install linux-image-cloud-amd64 cloud-init \
    openssh-server sudo systemd-resolved python3-cffi-backend
' _ "$R" > "$WORK/apt.log" 2>&1 || { tail -40 "$WORK/apt.log" >&2; exit 1; }

# 3. Configure for a fast, clean first boot (gotchas 5, 6, 10, 13).
echo 'LABEL=crowd-root / ext4 rw,noatime,errors=remount-ro 0 0' > "$R/etc/fstab"
echo 'LANG=C.UTF-8' > "$R/etc/default/locale"
echo localhost > "$R/etc/hostname"
: > "$R/etc/machine-id"; rm -f "$R/var/lib/dbus/machine-id"
rm -f "$R"/etc/ssh/ssh_host_*
chroot "$R" systemctl enable systemd-networkd.service >/dev/null 2>&1
mkdir -p "$R/etc/systemd/system/systemd-networkd-wait-online.service.d"
printf '[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=30\n' \
  > "$R/etc/systemd/system/systemd-networkd-wait-online.service.d/crowd.conf"
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
         fstrim.timer dpkg-db-backup.timer systemd-firstboot.service; do
  chroot "$R" systemctl mask "$u" >/dev/null 2>&1 || true
done
# Never the build host's resolv.conf, never public fallback resolvers.
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$R/etc/resolv.conf"
mkdir -p "$R/etc/systemd/resolved.conf.d"
printf '[Resolve]\nFallbackDNS=\nLLMNR=no\nMulticastDNS=no\n' > "$R/etc/systemd/resolved.conf.d/crowd.conf"
cat > "$R/etc/cloud/cloud.cfg.d/90-crowd.cfg" <<'EOF'
ssh_genkeytypes: [ed25519]
ssh_deletekeys: true
final_message: "CROWD-CLOUD-INIT-FINAL ds=$DATASOURCE uptime=$UPTIME"
EOF
KV=$(ls "$R/lib/modules" | sort -V | tail -1)
cp "$R/boot/vmlinuz-$KV" "$WORK/vmlinuz"
cp "$R/boot/initrd.img-$KV" "$WORK/initrd.img"
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin "$R"/var/cache/apt/archives/*.deb \
       "$R"/var/log/*.log "$R"/var/log/apt/* "$R/usr/sbin/policy-rc.d" "$R/debootstrap"

# 4. The disk: MBR + syslinux, FAT boot partition at 1 MiB (64 MiB), ext4 root after it (2 GiB).
BOOT_START=2048; BOOT_SECTORS=131072; ROOT_START=$((BOOT_START + BOOT_SECTORS)); ROOT_SECTORS=4194304
cat > "$WORK/syslinux.cfg" <<'EOF'
DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND root=LABEL=crowd-root rw console=ttyS0 net.ifnames=0 quiet
EOF
mkfs.vfat -C -n CROWDBOOT "$WORK/boot.img" $((BOOT_SECTORS / 2)) >/dev/null
mcopy -i "$WORK/boot.img" "$WORK/vmlinuz" "$WORK/initrd.img" "$WORK/syslinux.cfg" "$SYSLINUX_BIOS/ldlinux.c32" ::
mkfs.ext4 -q -F -L crowd-root -m 1 -E lazy_itable_init=0,lazy_journal_init=0 -d "$R" "$WORK/root.img" $((ROOT_SECTORS / 2))k
truncate -s $(((ROOT_START + ROOT_SECTORS) * 512)) "$WORK/disk.raw"
dd if="$WORK/boot.img" of="$WORK/disk.raw" bs=512 seek=$BOOT_START conv=notrunc,sparse status=none
dd if="$WORK/root.img" of="$WORK/disk.raw" bs=1M seek=$((ROOT_START / 2048)) conv=notrunc,sparse status=none
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
# Partition entries (LBA only; CHS fields saturated): 1 active FAT16 (0x0e), 2 Linux (0x83).
printf "\x80\xfe\xff\xff\x0e\xfe\xff\xff$(le32 $BOOT_START)$(le32 $BOOT_SECTORS)\x00\xfe\xff\xff\x83\xfe\xff\xff$(le32 $ROOT_START)$(le32 $ROOT_SECTORS)" \
  | dd of="$WORK/disk.raw" bs=1 seek=446 conv=notrunc status=none
printf '\x55\xaa' | dd of="$WORK/disk.raw" bs=1 seek=510 conv=notrunc status=none
dd if="$MBR_BIN" of="$WORK/disk.raw" bs=440 count=1 conv=notrunc status=none
syslinux --install --offset $((BOOT_START * 512)) "$WORK/disk.raw"
qemu-img convert -f raw -O qcow2 "$WORK/disk.raw" "$WORK/disk.qcow2"
mv "$WORK/disk.qcow2" "$OUT/disk.qcow2"
echo "built $OUT/disk.qcow2 (Debian 12, kernel $KV)"
