#!/usr/bin/env bash
# Builds (once) everything hack/vm/run.sh needs to boot a throw-away Debian bookworm VM whose
# systemd runs on a pure cgroup v2 hierarchy, under QEMU software emulation (TCG, no KVM):
#
#   $CACHE/qemu/root/     qemu-system-x86 7.2 from bookworm, unpacked with `dpkg -x` together with
#                         its TCG module (qemu-system-common), the runtime libraries the host
#                         lacks, SeaBIOS and QEMU's option ROMs (installing the package is
#                         impossible next to the host's qemu-utils 10)
#   $CACHE/rootfs.img     raw ext4 image of a minimal debootstrapped bookworm (systemd, kernel)
#   $CACHE/vmlinuz        the guest's kernel (Debian's linux-image-amd64), booted with -kernel
#   $CACHE/initrd.img     a tiny busybox initrd of our own: loads virtio/ext4, mounts /dev/vda
#   $CACHE/cmdline        the kernel command line (forces pure cgroup v2)
#
# CACHE is ${CRIUS_VM_CACHE:-/var/cache/crius-vm}. Idempotent: a part whose stamp file matches is
# not rebuilt; `--force` rebuilds the image. Runs as root (debootstrap, ownership in the image).
# The image is populated with `mkfs.ext4 -d`, so no loop device or mount is needed.
#
# Inside the guest, crius-vm-run.service mounts the host's share (9p, tag "host") at /mnt/host,
# runs /mnt/host/run.sh if present with its output in /mnt/host/result/output.log and its exit
# code in /mnt/host/result/exit-code (written last), then powers the VM off. The guest has no
# network device.
set -euo pipefail

CACHE=${CRIUS_VM_CACHE:-/var/cache/crius-vm}
SUITE=bookworm
# Bump when the image's content or the boot configuration changes.
IMAGE_VERSION=5
QEMU_VERSION_WANTED=7.2
# Sparse: the e2e suites (registries' storage, unpacked layers, the 200 MiB `big` image, daemons'
# roots) write to /tmp, which is on the root file system in bookworm (no tmpfs); with snapshot=on
# the writes land in QEMU's temporary overlay on the host, not in this file.
IMAGE_SIZE=${CRIUS_VM_IMAGE_SIZE:-12G}
# mitigations=off: with -cpu Nehalem the guest would enable page table isolation, and the CR3
# switch on every syscall is very slow under TCG (boot ~40% slower); irrelevant for cgroups.
CMDLINE="console=ttyS0 root=/dev/vda rw panic=-1 loglevel=4 mitigations=off systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all systemd.show_status=auto"

force=0
[[ ${1:-} == --force ]] && force=1

log() { echo "build-image: $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  echo "build-image: must run as root (debootstrap, device nodes and file ownership in the image)" >&2
  exit 1
fi

mkdir -p "$CACHE"

apt_updated=0
apt_update_once() {
  if ((apt_updated == 0)); then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    apt_updated=1
  fi
}

host_has() {
  dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed
}

# --------------------------------------------------------------------------------------------
# Host tools: debootstrap (a shell script from Debian), mkfs.ext4 (with -d).
need=()
host_has debootstrap || need+=(debootstrap)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt_update_once
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi

# --------------------------------------------------------------------------------------------
# QEMU 7.2, unpacked.
QROOT=$CACHE/qemu/root
qemu_stamp=$CACHE/qemu/.done-2
if [[ ! -f $qemu_stamp ]]; then
  log "unpacking qemu-system-x86 $QEMU_VERSION_WANTED into $QROOT"
  apt_update_once
  rm -rf "$CACHE/qemu"
  mkdir -p "$CACHE/qemu/debs" "$QROOT"
  cd "$CACHE/qemu/debs"
  # Run as root: apt-get download warns (harmlessly) that _apt cannot write here.
  dl() { apt-get download -q "$@" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true; }
  dl qemu-system-x86 qemu-system-data seabios
  qver=$(dpkg-deb -f qemu-system-x86_*.deb Version)
  if [[ $qver != 1:$QEMU_VERSION_WANTED* ]]; then
    echo "build-image: apt offers qemu-system-x86 $qver, not $QEMU_VERSION_WANTED (bookworm's)" >&2
    exit 1
  fi
  # qemu-system-common of the very same build: its accel-tcg-x86_64.so module holds TCG (QEMU
  # refuses modules of another build). Its own dependencies serve other modules (GUI, audio,
  # spice) and are not needed.
  dl "qemu-system-common=$qver"
  # Library dependencies the host does not have, recursively (only lib* packages: the binary
  # needs shared objects, not qemu-system-common's helpers or the GUI).
  declare -A seen=()
  queue=(qemu-system-x86)
  while ((${#queue[@]})); do
    pkg=${queue[0]}
    queue=("${queue[@]:1}")
    deps=$(apt-cache show --no-all-versions "$pkg" | sed -n 's/^Depends: //p' | head -1)
    IFS=',' read -ra items <<<"$deps"
    for item in "${items[@]}"; do
      # First alternative, without version or architecture qualifiers.
      dep=$(sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/[[:space:]]//g' <<<"$item")
      [[ $dep == lib* ]] || continue
      [[ -n ${seen[$dep]:-} ]] && continue
      seen[$dep]=1
      host_has "$dep" && continue
      log "  + $dep (not on the host)"
      dl "$dep"
      queue+=("$dep")
    done
  done
  for deb in *.deb; do dpkg -x "$deb" "$QROOT"; done
  # Some bookworm library packages (libnl-3-200) still ship under /lib, not /usr/lib.
  libpath=$QROOT/usr/lib/x86_64-linux-gnu:$QROOT/lib/x86_64-linux-gnu
  missing=$(LD_LIBRARY_PATH=$libpath ldd "$QROOT/usr/bin/qemu-system-x86_64" | grep 'not found' || true)
  if [[ -n $missing ]]; then
    echo "build-image: qemu-system-x86_64 still misses libraries:" >&2
    echo "$missing" >&2
    exit 1
  fi
  LD_LIBRARY_PATH=$libpath "$QROOT/usr/bin/qemu-system-x86_64" --version | head -1 >&2
  LD_LIBRARY_PATH=$libpath QEMU_MODULE_DIR=$QROOT/usr/lib/x86_64-linux-gnu/qemu \
    "$QROOT/usr/bin/qemu-system-x86_64" -accel help | grep -qx tcg
  rm -rf "$CACHE/qemu/debs"
  touch "$qemu_stamp"
  cd - >/dev/null
fi

echo "$CMDLINE" >"$CACHE/cmdline"

# --------------------------------------------------------------------------------------------
# Guest image.
image_stamp=$CACHE/.image-version
if ((force == 0)) && [[ -f $image_stamp && $(cat "$image_stamp") == "$IMAGE_VERSION" &&
  -f $CACHE/rootfs.img && -f $CACHE/vmlinuz && -f $CACHE/initrd.img ]]; then
  log "image up to date in $CACHE (version $IMAGE_VERSION)"
  exit 0
fi

# The Debian mirror apt is configured with (deb822 .sources or one-line .list files).
find_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk '
      /^[[:space:]]*URIs:/ { for (i = 2; i <= NF; i++) print $i }
      /^[[:space:]]*deb[[:space:]]/ {
        for (i = 2; i <= NF; i++) { if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; continue } print $i; break }
      }' "$f"
  done | grep -E '^https?://[^ ]*/debian/?$' | head -1
}
MIRROR=${CRIUS_VM_MIRROR:-$(find_mirror)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

ROOTFS=$CACHE/build-rootfs
cleanup() {
  # debootstrap mounts /proc and /sys inside the target; never leave them behind.
  if [[ -d $ROOTFS ]]; then
    awk -v r="$ROOTFS" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r |
      while read -r m; do umount -l "$m" || true; done
    rm -rf "$ROOTFS"
  fi
  rm -f "$CACHE/rootfs.img.tmp" "$CACHE/vmlinuz.tmp" "$CACHE/initrd.img.tmp"
}
trap cleanup EXIT
cleanup

# The base system, and what the e2e suites (hack/vm/node-test.sh) need: hack/install-deps.sh's
# runtime packages, curl (streaming.rs' TLS test), dbus (a real systemd node has the system bus;
# the systemd cgroup driver talks to systemd over it). For the NodeConformance run
# (hack/vm/conformance.sh): etcd-server, and netcat-openbsd, dash, bash and hostname, which the
# conformance harness copies into the suite's images with their libraries.
GUEST_PACKAGES=(
  systemd systemd-sysv udev kmod linux-image-amd64 procps util-linux busybox-static cpio
  dbus ca-certificates docker-registry runc containernetworking-plugins openssl iproute2 iptables
  curl etcd-server netcat-openbsd dash bash hostname
)
log "debootstrap $SUITE from $MIRROR into $ROOTFS"
debootstrap --variant=minbase \
  --include="$(IFS=,; echo "${GUEST_PACKAGES[*]}")" \
  "$SUITE" "$ROOTFS" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || {
  tail -30 "$CACHE/debootstrap.log" >&2
  exit 1
}

log "configuring the guest"
echo crius-vm >"$ROOTFS/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 crius-vm\n' >"$ROOTFS/etc/hosts"
# A fixed machine-id: no first-boot logic (systemd-firstboot could prompt on the console).
tr -d '-' </proc/sys/kernel/random/uuid >"$ROOTFS/etc/machine-id"
chroot "$ROOTFS" passwd -d root >/dev/null # console login for debugging; there is no network
mkdir -p "$ROOTFS/mnt/host"
# The root file system is mounted rw by the initrd (root=/dev/vda rw); listing it here would
# make systemd wait for a udev device unit, and udev is masked below.
cat >"$ROOTFS/etc/fstab" <<'EOF'
host  /mnt/host  9p  trans=virtio,version=9p2000.L,msize=512000,nofail  0 0
EOF
printf '9p\n9pnet_virtio\n' >"$ROOTFS/etc/modules-load.d/9p.conf"
# The CNI bridge plugin's links (the kernel would also load them on demand through modprobe) and
# iptables-nft's core (portmap's chains); loaded at boot so a first test does not pay for it.
printf 'bridge\nveth\nnf_tables\nnf_nat\nnf_conntrack\n' >"$ROOTFS/etc/modules-load.d/crius-e2e.conf"

cat >"$ROOTFS/usr/local/sbin/crius-vm-run" <<'EOF'
#!/bin/sh
# Runs /mnt/host/run.sh (the host's test script) and records its output and exit code in
# /mnt/host/result/; the unit powers the VM off afterwards, whatever happened.
if ! mountpoint -q /mnt/host; then
  echo "crius-vm-run: /mnt/host is not mounted" >/dev/console
  exit 0
fi
if [ ! -f /mnt/host/run.sh ]; then
  echo "crius-vm-run: no /mnt/host/run.sh; powering off" >/dev/console
  exit 0
fi
mkdir -p /mnt/host/result
rm -f /mnt/host/result/exit-code
echo "crius-vm-run: running /mnt/host/run.sh" >/dev/console
cd /mnt/host
# Output goes to the share and to the serial console (the host's console log).
{ sh /mnt/host/run.sh; echo $? >/mnt/host/result/.rc; } 2>&1 | tee /mnt/host/result/output.log >/dev/console
rc=$(cat /mnt/host/result/.rc 2>/dev/null || echo 255)
rm -f /mnt/host/result/.rc
echo "$rc" >/mnt/host/result/exit-code
sync
echo "crius-vm-run: run.sh exited $rc" >/dev/console
exit 0
EOF
chmod 755 "$ROOTFS/usr/local/sbin/crius-vm-run"

cat >"$ROOTFS/etc/systemd/system/crius-vm-run.service" <<'EOF'
[Unit]
Description=Run the host's /mnt/host/run.sh, then power off
Wants=mnt-host.mount
After=mnt-host.mount local-fs.target systemd-modules-load.service basic.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/crius-vm-run
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/crius-vm-run.service \
  "$ROOTFS/etc/systemd/system/multi-user.target.wants/crius-vm-run.service"
# Boot fast under emulation (every unit costs ~0.1-0.5 s under TCG): nothing periodic, no udev
# (devtmpfs creates the device nodes, modules come from the initrd and modules-load.d), no login
# prompts, no generator but the fstab one, a volatile journal, none of the units that only
# matter on a real machine, no docker-registry or etcd (the e2e tests and the conformance harness
# start their own). dbus stays: a
# real systemd node has the system bus.
ln -sf /lib/systemd/system/multi-user.target "$ROOTFS/etc/systemd/system/default.target"
mkdir -p "$ROOTFS/etc/systemd/system-generators" "$ROOTFS/etc/systemd/journald.conf.d"
for g in "$ROOTFS"/lib/systemd/system-generators/*; do
  g=$(basename "$g")
  [[ $g == systemd-fstab-generator ]] || ln -sf /dev/null "$ROOTFS/etc/systemd/system-generators/$g"
done
printf '[Journal]\nStorage=volatile\n' >"$ROOTFS/etc/systemd/journald.conf.d/volatile.conf"
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer e2scrub_reap.service \
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
  systemd-udev-trigger.service systemd-udev-settle.service systemd-hwdb-update.service \
  getty.target serial-getty@ttyS0.service getty@tty1.service console-getty.service \
  systemd-update-utmp.service systemd-update-utmp-runlevel.service systemd-logind.service \
  systemd-timesyncd.service systemd-networkd.service systemd-resolved.service \
  systemd-pstore.service systemd-binfmt.service sys-kernel-debug.mount sys-kernel-tracing.mount \
  sys-fs-fuse-connections.mount systemd-firstboot.service systemd-sysusers.service \
  systemd-random-seed.service modprobe@configfs.service modprobe@dm_mod.service \
  modprobe@loop.service modprobe@efi_pstore.service modprobe@fuse.service modprobe@drm.service \
  kmod-static-nodes.service systemd-journal-flush.service sys-kernel-config.mount \
  systemd-remount-fs.service systemd-user-sessions.service systemd-ask-password-console.path \
  systemd-ask-password-wall.path dpkg-db-backup.timer systemd-tmpfiles-clean.timer \
  proc-sys-fs-binfmt_misc.automount systemd-initctl.socket systemd-journald-audit.socket \
  systemd-repart.service systemd-pcrphase.service systemd-pcrphase-sysinit.service \
  docker-registry.service etcd.service; do
  ln -sf /dev/null "$ROOTFS/etc/systemd/system/$u"
done

kver=$(basename "$(ls -d "$ROOTFS"/lib/modules/* | sort -V | tail -1)")
kernel=$ROOTFS/boot/vmlinuz-$kver
cp "$kernel" "$CACHE/vmlinuz.tmp"

# Our own initrd instead of initramfs-tools' (which starts udev and probes every device: ~8 s
# under TCG): static busybox, the modules that mounting /dev/vda needs, and an /init that loads
# them, mounts the root file system and hands over to systemd.
log "building the initrd for $kver"
ird=$ROOTFS/crius-initrd
mkdir -p "$ird"/{bin,dev,proc,sys,root,lib/modules}
cp "$ROOTFS/bin/busybox" "$ird/bin/busybox"
# Load order (dependencies first) as modprobe in the guest tree sees it; "builtin" lines need
# nothing. crc32c is the checksum ext4/jbd2 ask for at mount time.
for mod in virtio_pci virtio_blk crc32c_generic ext4; do
  chroot "$ROOTFS" modprobe -S "$kver" --show-depends "$mod"
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' >"$ird/modules.paths"
while read -r m; do
  cp "$ROOTFS$m" "$ird/lib/modules/"
  basename "$m" >>"$ird/lib/modules/order"
done <"$ird/modules.paths"
rm "$ird/modules.paths"
for mod in virtio_pci.ko virtio_blk.ko ext4.ko; do
  grep -qx "$mod" "$ird/lib/modules/order" || { echo "build-image: $mod missing from the initrd" >&2; exit 1; }
done
log "  modules: $(paste -sd' ' "$ird/lib/modules/order")"
cat >"$ird/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/order); do
  insmod "/lib/modules/$m" || echo "initrd: insmod $m failed"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 1000 ]; do usleep 10000; i=$((i + 1)); done
if ! mount -t ext4 -o rw /dev/vda /root; then
  echo "initrd: cannot mount /dev/vda as the root file system"
  sleep 2
  poweroff -f
fi
mount -o move /dev /root/dev
mount -o move /sys /root/sys
mount -o move /proc /root/proc
exec switch_root /root /sbin/init
INIT
chmod 755 "$ird/init"
chroot "$ROOTFS" sh -c 'cd /crius-initrd && find . | cpio -o -H newc --quiet' | gzip -1 >"$CACHE/initrd.img.tmp"
rm -rf "$ird"

chroot "$ROOTFS" apt-get clean
# initramfs-tools' own initrd is not used (see above).
rm -rf "${ROOTFS:?}"/var/lib/apt/lists/* "${ROOTFS:?}"/debootstrap "${ROOTFS:?}"/boot/initrd.img-*

log "writing $IMAGE_SIZE ext4 image"
truncate -s "$IMAGE_SIZE" "$CACHE/rootfs.img.tmp"
mkfs.ext4 -q -F -L crius-vm -d "$ROOTFS" "$CACHE/rootfs.img.tmp"
mv "$CACHE/rootfs.img.tmp" "$CACHE/rootfs.img"
mv "$CACHE/vmlinuz.tmp" "$CACHE/vmlinuz"
mv "$CACHE/initrd.img.tmp" "$CACHE/initrd.img"
echo "$IMAGE_VERSION" >"$image_stamp"
log "done: $(basename "$kernel"), image $(du -h --apparent-size "$CACHE/rootfs.img" | cut -f1) ($(du -h "$CACHE/rootfs.img" | cut -f1) used)"
