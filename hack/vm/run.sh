#!/usr/bin/env bash
# Boots the pure-cgroup-v2 test VM built by hack/vm/build-image.sh with DIR shared at /mnt/host,
# lets the guest run DIR/run.sh (as root, under systemd), waits for the VM to power off, prints
# the guest script's output and exits with its exit code.
#
#   hack/vm/run.sh DIR
#
# DIR/result/ is emptied first; afterwards it holds output.log and exit-code from the guest and
# console.log, the VM's serial console. The disk is opened with snapshot=on: every boot starts
# from the pristine image and nothing is written back. Software emulation (TCG), no network
# device. Environment:
#   CRIUS_VM_CACHE     where build-image.sh put its files (default /var/cache/crius-vm)
#   CRIUS_VM_TIMEOUT   seconds until the VM is killed (default 900)
#   CRIUS_VM_MEM / CRIUS_VM_SMP   memory in MiB (2048) and vCPUs (2)
#   CRIUS_VM_APPEND    extra kernel command line arguments
#   CRIUS_VM_QEMU_ARGS extra QEMU arguments (split on whitespace)
# Exit codes: the guest script's; 124 on timeout; 125 when the VM ends without a result.
set -euo pipefail

if [[ $# -ne 1 || ! -d $1 ]]; then
  echo "usage: $0 DIR   (DIR/run.sh runs inside the VM; results land in DIR/result/)" >&2
  exit 2
fi
share=$(cd "$1" && pwd)
CACHE=${CRIUS_VM_CACHE:-/var/cache/crius-vm}
TIMEOUT=${CRIUS_VM_TIMEOUT:-900}
QROOT=$CACHE/qemu/root

for f in "$QROOT/usr/bin/qemu-system-x86_64" "$CACHE/rootfs.img" "$CACHE/vmlinuz" "$CACHE/initrd.img" "$CACHE/cmdline"; do
  if [[ ! -e $f ]]; then
    echo "run: $f is missing: run hack/vm/build-image.sh first" >&2
    exit 2
  fi
done
if [[ ! -f $share/run.sh ]]; then
  echo "run: warning: $share/run.sh does not exist; the VM will just boot and power off" >&2
fi

result=$share/result
rm -rf "$result"
mkdir -p "$result"
console=$result/console.log

# The unpacked tree's libraries and modules (accel-tcg-x86_64.so), not the host's.
# (Some bookworm packages, libnl-3-200, still put theirs under /lib.)
export LD_LIBRARY_PATH=$QROOT/usr/lib/x86_64-linux-gnu:$QROOT/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export QEMU_MODULE_DIR=$QROOT/usr/lib/x86_64-linux-gnu/qemu
qemu=(
  "$QROOT/usr/bin/qemu-system-x86_64"
  -L "$QROOT/usr/share/qemu" -L "$QROOT/usr/share/seabios"
  -machine q35 -accel tcg -cpu Nehalem
  -m "${CRIUS_VM_MEM:-2048}" -smp "${CRIUS_VM_SMP:-2}"
  -nographic -vga none -monitor none -serial "file:$console"
  -no-reboot -nic none
  -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd.img"
  -append "$(cat "$CACHE/cmdline") ${CRIUS_VM_APPEND:-}"
  -drive "file=$CACHE/rootfs.img,format=raw,if=virtio,snapshot=on"
  -virtfs "local,path=$share,mount_tag=host,security_model=passthrough,id=host"
)
# Extra QEMU arguments, split on whitespace (debugging aid).
read -ra extra <<<"${CRIUS_VM_QEMU_ARGS:-}"
qemu+=("${extra[@]}")

start=$(date +%s%N)
"${qemu[@]}" </dev/null >"$result/qemu.log" 2>&1 &
qpid=$!
# QEMU is ours: kill it (by PID) if this script is interrupted.
trap 'kill -KILL "$qpid" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

timed_out=0
deadline=$((SECONDS + TIMEOUT))
while kill -0 "$qpid" 2>/dev/null; do
  if ((SECONDS >= deadline)); then
    timed_out=1
    echo "run: VM still running after ${TIMEOUT}s; killing QEMU (pid $qpid)" >&2
    kill -KILL "$qpid" 2>/dev/null || true
    break
  fi
  sleep 0.5
done
qrc=0
wait "$qpid" || qrc=$?
trap - EXIT INT TERM
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
elapsed=$((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000)))

if [[ -s $result/output.log ]]; then
  cat "$result/output.log"
fi
echo "run: VM ran ${elapsed}s (QEMU exit $qrc); console log: $console" >&2
if ((timed_out)); then
  tail -20 "$console" >&2 || true
  exit 124
fi
if [[ ! -f $result/exit-code ]]; then
  echo "run: the guest left no exit code; last console lines:" >&2
  tail -30 "$console" >&2 || true
  [[ -s $result/qemu.log ]] && cat "$result/qemu.log" >&2
  exit 125
fi
rc=$(cat "$result/exit-code")
echo "run: guest script exited $rc" >&2
exit "$rc"
