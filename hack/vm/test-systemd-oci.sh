#!/usr/bin/env bash
# Proves `crius oci --systemd-cgroup` against a real systemd on a pure cgroup v2 host: builds
# crius on this host, prepares a busybox bundle (from the host's busybox-static) and a guest
# script, boots the VM of hack/vm/ (building its image first if needed) and checks, as root in
# the guest, with systemd's own tools only for looking:
#   - create puts the init in crius-<id>.scope under the expanded slice, with memory.max,
#     cpu.max, pids.max (and systemd's MemoryMax/TasksMax/CPUQuota) set before start;
#   - start/state/exec/update/pause/resume work through the recorded state (no flag needed);
#   - delete stops the unit and its cgroup directory is gone;
#   - the default path (system.slice:crius:<id>), delete --force, the p2p connection to
#     /run/systemd/private when the system bus is unreachable, and the cgroupfs driver's refusal.
# Prints the guest's output and a summary line "systemd-oci: N passed, N failed"; exits
# non-zero on any failure. Logs stay in $TARGET/vm-systemd-oci/result/.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
share=$target_dir/vm-systemd-oci
busybox=${BUSYBOX:-/bin/busybox}

if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends busybox-static >&2
fi

t0=$SECONDS
# The image is shared by everyone's VM tests: any version serves here (the test needs systemd,
# and works with or without dbus), so an existing one is never rebuilt from this script.
if [[ ! -f ${CRIUS_VM_CACHE:-/var/cache/crius-vm}/rootfs.img ]]; then
  bash hack/vm/build-image.sh
fi
t_image=$((SECONDS - t0))

t0=$SECONDS
echo "test-systemd-oci: building crius" >&2
cargo build -p crius --bin crius >&2
t_build=$((SECONDS - t0))

rm -rf "$share"
mkdir -p "$share"
strip --strip-debug -o "$share/crius" "$target_dir/debug/crius"
cp "$busybox" "$share/busybox"
cat >"$share/config.json" <<'EOF'
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["/bin/sleep", "1000"],
    "env": ["PATH=/bin"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "crius-systemd",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "resources": {
      "devices": [{"allow": false, "access": "rwm"}],
      "memory": {"limit": 67108864},
      "cpu": {"shares": 512, "quota": 50000, "period": 100000},
      "pids": {"limit": 20}
    },
    "cgroupsPath": "CGROUPS_PATH",
    "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
  }
}
EOF
cat >"$share/run.sh" <<'EOF'
# Runs inside the VM (hack/vm/run.sh), as root, cwd /mnt/host.
set -u
pass=0
fail=0
check() { # check DESCRIPTION COMMAND...
  d=$1
  shift
  if "$@"; then echo "PASS: $d"; pass=$((pass + 1)); else echo "FAIL: $d"; fail=$((fail + 1)); fi
}
eq() { # eq DESCRIPTION GOT WANT
  [ "$2" = "$3" ] && return 0
  echo "  $1: got '$2', want '$3'"
  return 1
}
ms() { echo $(( $(date +%s%N) / 1000000 )); }

echo "== guest: kernel $(uname -r); /sys/fs/cgroup is $(stat -f -c %T /sys/fs/cgroup); $(systemctl --version | head -1)"
if [ -S /run/dbus/system_bus_socket ]; then bus="system bus (sections 1, 2), p2p (3)"; else bus="no dbus: p2p to /run/systemd/private throughout"; fi
echo "== D-Bus: $bus"
work=$(mktemp -d /tmp/crius-sd.XXXXXX)
cp /mnt/host/crius "$work/crius"
crius="$work/crius"
root=$work/state
mkbundle() { # mkbundle DIR CGROUPS_PATH
  mkdir -p "$1/rootfs/bin" "$1/rootfs/proc" "$1/rootfs/dev" "$1/rootfs/sys"
  cp /mnt/host/busybox "$1/rootfs/bin/busybox"
  for t in sh sleep cat; do ln -sf busybox "$1/rootfs/bin/$t"; done
  sed "s|CGROUPS_PATH|$2|" /mnt/host/config.json >"$1/config.json"
}
oci() { "$crius" oci --root "$root" "$@"; }
statefield() { oci state "$1" | sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",]*\).*/\1/p" | head -1; }
show() { systemctl show -p "$2" --value "$1"; }

echo "== 1. kubepods-burstable-podXYZ.slice:crius:ctr1"
scope=crius-ctr1.scope
cg=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podXYZ.slice/$scope
dir=/sys/fs/cgroup$cg
mkbundle "$work/b1" "kubepods-burstable-podXYZ.slice:crius:ctr1"
t=$(ms)
check "create --systemd-cgroup" oci --systemd-cgroup create --bundle "$work/b1" ctr1
echo "   create took $(( $(ms) - t )) ms"
pid=$(statefield ctr1 pid)
check "status created" eq status "$(statefield ctr1 status)" created
check "scope active after create" eq active "$(systemctl is-active $scope)" active
check "init in the scope before start" eq cgroup "$(cat /proc/$pid/cgroup)" "0::$cg"
check "memory.max before start" eq memory.max "$(cat $dir/memory.max)" 67108864
check "cpu.max before start" eq cpu.max "$(cat $dir/cpu.max)" "50000 100000"
check "pids.max before start" eq pids.max "$(cat $dir/pids.max)" 20
check "cpu.weight (KEP-2254 from 512 shares)" eq cpu.weight "$(cat $dir/cpu.weight)" 20
check "systemd MemoryMax" eq MemoryMax "$(show $scope MemoryMax)" 67108864
check "systemd TasksMax" eq TasksMax "$(show $scope TasksMax)" 20
check "systemd CPUQuotaPerSecUSec" eq CPUQuota "$(show $scope CPUQuotaPerSecUSec)" 500ms
check "systemd CPUWeight" eq CPUWeight "$(show $scope CPUWeight)" 20
check "systemd Slice" eq Slice "$(show $scope Slice)" kubepods-burstable-podXYZ.slice
check "systemd Delegate" eq Delegate "$(show $scope Delegate)" yes
check "start" oci start ctr1
check "status running" eq status "$(statefield ctr1 status)" running
systemctl status --no-pager $scope | head -8
check "exec joins the scope (no flag)" eq exec "$(oci exec ctr1 /bin/cat /proc/self/cgroup)" "0::$cg"
echo '{"pids": {"limit": 30}, "memory": {"limit": 134217728}}' >"$work/update.json"
check "update (no flag)" oci update --resources "$work/update.json" ctr1
check "pids.max after update" eq pids.max "$(cat $dir/pids.max)" 30
check "memory.max after update" eq memory.max "$(cat $dir/memory.max)" 134217728
check "systemd TasksMax after update" eq TasksMax "$(show $scope TasksMax)" 30
check "systemd MemoryMax after update" eq MemoryMax "$(show $scope MemoryMax)" 134217728
check "pause" oci pause ctr1
check "cgroup frozen" eq frozen "$(grep frozen $dir/cgroup.events)" "frozen 1"
check "resume" oci resume ctr1
check "kill" oci kill ctr1 KILL
for _ in $(seq 50); do [ "$(statefield ctr1 status)" = stopped ] && break; sleep 0.1; done
check "status stopped" eq status "$(statefield ctr1 status)" stopped
t=$(ms)
check "delete" oci delete ctr1
echo "   delete took $(( $(ms) - t )) ms"
check "no crius units left" eq units "$(systemctl list-units --all --no-legend 'crius-*.scope')" ""
check "scope cgroup removed" eq dir "$(ls -d $dir 2>/dev/null)" ""

echo "== 2. default path (system.slice:crius:ctr2), delete --force while running"
mkbundle "$work/b2" ""
check "create with empty cgroupsPath" oci --systemd-cgroup create --bundle "$work/b2" ctr2
pid=$(statefield ctr2 pid)
check "init in system.slice/crius-ctr2.scope" eq cgroup "$(cat /proc/$pid/cgroup)" "0::/system.slice/crius-ctr2.scope"
check "start" oci start ctr2
check "delete --force" oci delete --force ctr2
check "unit gone" eq units "$(systemctl list-units --all --no-legend 'crius-*.scope')" ""
check "cgroup removed" eq dir "$(ls -d /sys/fs/cgroup/system.slice/crius-ctr2.scope 2>/dev/null)" ""

echo "== 3. system bus unreachable: peer-to-peer to /run/systemd/private"
mkbundle "$work/b3" "kubepods-besteffort-podP2P.slice:crius:ctr3"
nobus() { DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent "$@"; }
t=$(ms)
check "create over p2p" nobus oci --systemd-cgroup create --bundle "$work/b3" ctr3
echo "   create (p2p) took $(( $(ms) - t )) ms"
pid=$(statefield ctr3 pid)
check "scope active (p2p)" eq active "$(systemctl is-active crius-ctr3.scope)" active
check "init in the scope (p2p)" eq cgroup "$(cat /proc/$pid/cgroup)" "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podP2P.slice/crius-ctr3.scope"
check "update over p2p" nobus oci update --resources "$work/update.json" ctr3
check "systemd TasksMax after p2p update" eq TasksMax "$(show crius-ctr3.scope TasksMax)" 30
check "delete --force over p2p" nobus oci delete --force ctr3
check "unit gone (p2p)" eq units "$(systemctl list-units --all --no-legend 'crius-*.scope')" ""

echo "== 4. without --systemd-cgroup a systemd path is refused"
mkbundle "$work/b4" "system.slice:crius:ctr4"
err=$(oci create --bundle "$work/b4" ctr4 2>&1)
echo "   $err"
check "clear error" sh -c 'case "$1" in *"use --systemd-cgroup"*) exit 0;; *) exit 1;; esac' - "$err"
check "no state left" eq state "$(ls $root 2>/dev/null | grep ctr4)" ""

echo "== features: $("$crius" oci features | grep -o '"systemd": [a-z]*')"
cd /
rm -rf "$work"
echo "systemd-oci: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
EOF

t0=$SECONDS
rc=0
bash hack/vm/run.sh "$share" || rc=$?
t_vm=$((SECONDS - t0))
rm -f "$share/crius" "$share/busybox"

out=$share/result/output.log
echo
echo "================ summary ================"
if [[ -f $out ]]; then
  grep -E '^== D-Bus|^FAIL: |took [0-9]+ ms' "$out" || true
  grep -E '^systemd-oci: [0-9]+ passed' "$out" || echo "systemd-oci: 0 passed, 1 failed (no summary from the guest)"
else
  echo "systemd-oci: 0 passed, 1 failed (no guest output)"
fi
echo "timings: image ${t_image}s, host build ${t_build}s, VM boot+tests+poweroff ${t_vm}s"
echo "guest exit code: $rc   (logs: $share/result/)"
exit "$rc"
