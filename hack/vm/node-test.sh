#!/usr/bin/env bash
# The VM node test: crius' end-to-end suites (e2e/) run inside the pure-cgroup-v2 systemd guest
# of hack/vm/, once per cgroup driver.
#
#   hack/vm/node-test.sh [--driver cgroupfs|systemd|both] [--full] [FILTER]
#
# On the host: builds the VM image if needed (hack/vm/build-image.sh), builds crius,
# crius-monitor and the e2e test binaries (cargo profile $CRIUS_VM_PROFILE, default dev: the
# binaries hack/test.sh has just built; `vm` in Cargo.toml is an optimized variant without debug
# info), packs them for nextest (`cargo nextest archive`, unpacked into the share and stripped of
# debug info, so the guest runs the binaries it needs straight from there) with the cargo-nextest
# binary, a skeleton of the workspace (manifests, .config/nextest.toml, config/) and a guest
# script, boots the VM (hack/vm/run.sh) and prints a summary ending in `N passed, N failed`.
# Exits non-zero on any failure. The guest has no cargo: it runs `cargo-nextest nextest run
# --binaries-metadata … --workspace-remap …` on the unpacked archive. One retry when a boot
# produced no result (QEMU or the guest died before the script ended); a test failure is never
# retried.
#
#   --driver D   cgroup driver(s), each a full pass with CRIUS_E2E_CGROUP_MANAGER=D in the
#                guest (`[runtime] cgroup_manager`); `both` = cgroupfs then systemd.
#                Default: $CRIUS_VM_DRIVERS, else both.
#   --full       the nine suites ($SUITES below) whole, instead of the default subset
#                ($DEFAULT_FILTER below).
#   FILTER       a nextest filterset (-E) over the nine suites that replaces the subset, e.g.
#                'binary(pods)'.
#
# Environment: CRIUS_VM_PROFILE (cargo profile, default dev), CRIUS_VM_MEM (default here
# 3072 MiB), CRIUS_VM_NODE_TIMEOUT (1800 s per driver pass; the VM gets that per pass plus
# 300 s unless CRIUS_VM_TIMEOUT is set), CRIUS_VM_CACHE, and the rest of hack/vm/run.sh's
# settings. Runs as root. Logs: $TARGET/vm-node-test/result/ (output.log, console.log).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
share=$target_dir/vm-node-test

# The nine suites of the node test (the archive holds only their binaries): pods and
# containers (lifecycle, OOM, stats, live resource updates, handlers, host network, mounts),
# malformed requests and list filters, kill -9 recovery, exec/attach/port-forward, the daemon's
# own behaviour, images (pulls through the daemon under test), CNI.
SUITES=(pods pod_requests pod_recovery streaming daemon images cni_network systemd_driver kubelet_flow)
# The default subset, sized for CI (~15 min per driver under emulation on 2 busy cores): the
# pod/container tests that touch cgroups, OOM and stats, the kill -9 recovery, exec and
# port-forward through the streaming server, the daemon's start/stop/config tests and CNI.
# --full runs the nine suites whole. What is left out of the default and why:
# docs/testing-v2.md.
DEFAULT_FILTER='binary(daemon) | binary(cni_network) | binary(systemd_driver) | binary(kubelet_flow)
  | (binary(pods) & (test(kubelet_flow) | test(oom_kills) | test(stats_report) | test(pid_namespace)
                     | test(resources_update_the_live_cgroup)))
  | (binary(pod_recovery) & test(restart_after_kill9))
  | (binary(streaming) & (test(exec_over_spdy_and_websocket) | test(port_forward_into_the_pod)))'

drivers=${CRIUS_VM_DRIVERS:-both}
full=0
filter=""
while (($#)); do
  case $1 in
    --driver)
      drivers=${2:?--driver needs cgroupfs, systemd or both}
      shift 2
      ;;
    --driver=*)
      drivers=${1#--driver=}
      shift
      ;;
    --full)
      full=1
      shift
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "node-test: unknown option $1" >&2
      exit 2
      ;;
    *)
      filter=$1
      shift
      ;;
  esac
done
case $drivers in
  both) drivers="cgroupfs systemd" ;;
  cgroupfs | systemd | "cgroupfs systemd") ;;
  *)
    echo "node-test: --driver must be cgroupfs, systemd or both, not '$drivers'" >&2
    exit 2
    ;;
esac
read -ra driver_list <<<"$drivers"

if [[ $(id -u) -ne 0 ]]; then
  echo "node-test: must run as root (the VM's image build and its 9p share)" >&2
  exit 1
fi

if [[ -z $filter ]]; then
  if ((full)); then
    filter='all()'
  else
    filter=$(tr -s '\n ' ' ' <<<"$DEFAULT_FILTER")
  fi
fi
test_args=()
for t in "${SUITES[@]}"; do test_args+=(--test "$t"); done

t_start=$SECONDS
t0=$SECONDS
bash hack/vm/build-image.sh
t_image=$((SECONDS - t0))

# ---------------------------------------------------------------------------------------------
# Host build: the daemon, the monitor, the e2e tests (a nextest archive).
t0=$SECONDS
profile=${CRIUS_VM_PROFILE:-dev}
echo "node-test: building crius, crius-monitor and the e2e tests (profile $profile)" >&2
cargo build --profile "$profile" -p crius --bin crius -p crius-monitor --bin crius-monitor
nextest=$(command -v cargo-nextest || true)
if [[ -z $nextest ]]; then
  echo "node-test: cargo-nextest not found (hack/install-deps.sh installs it)" >&2
  exit 1
fi
mkdir -p "$share"
# Everything but the big image's layer cache (kept between runs) is made afresh.
find "$share" -mindepth 1 -maxdepth 1 ! -name cache -exec rm -rf {} +
mkdir -p "$share/cache"
archive=$target_dir/vm-node-test.tar.zst
cargo nextest archive --cargo-profile "$profile" -p crius-e2e "${test_args[@]}" --archive-file "$archive"
t_build=$((SECONDS - t0))

# Each driver's CRIUS_E2E_CGROUP_MANAGER. A daemon without the [runtime] cgroup_manager key
# refuses it as unknown: its only driver is cgroupfs, which then runs with the key unset.
# cargo's directory for the profile.
profile_dir=$profile
[[ $profile == dev ]] && profile_dir=debug
if "$target_dir/$profile_dir/crius" config --config /nonexistent --config-dir /nonexistent |
  grep -q '^cgroup_manager *='; then
  has_key=1
else
  has_key=0
fi
passes=()
for d in "${driver_list[@]}"; do
  if ((has_key)); then
    passes+=("$d:$d")
  elif [[ $d == cgroupfs ]]; then
    echo "node-test: this crius has no [runtime] cgroup_manager: the cgroupfs pass leaves it unset" >&2
    passes+=("cgroupfs:")
  else
    echo "node-test: this crius has no [runtime] cgroup_manager, so no systemd driver to test" >&2
    exit 2
  fi
done

t0=$SECONDS
# Unpacked and stripped of debug info (~130 MB per dev test binary with it, ~30 without), so the
# guest executes the binaries straight from the share (only what runs is read); without the
# build scripts' objects nextest archives along.
mkdir -p "$share/nextest"
tar --zstd -xf "$archive" -C "$share/nextest"
rm -f "$archive"
find "$share/nextest/target" -name '*.o' -delete
find "$share/nextest/target/$profile_dir" -maxdepth 2 -type f -perm -u+x | while read -r bin; do
  if head -c4 "$bin" | grep -q ELF; then
    strip --strip-debug "$bin"
  fi
done
mkdir -p "$share/bin"
strip --strip-debug -o "$share/bin/crius" "$target_dir/$profile_dir/crius"
strip --strip-debug -o "$share/bin/crius-monitor" "$target_dir/$profile_dir/crius-monitor"
cp "$nextest" "$share/bin/cargo-nextest"
# The workspace as the tests see it (--workspace-remap): the manifests nextest checks, the
# nextest configuration (test groups, timeouts, the vm profile), config/ (daemon.rs reads the
# shipped crius.toml), and the test binaries' working directory e2e/.
ws=$share/workspace
mkdir -p "$ws/e2e" "$ws/.config"
cp Cargo.toml Cargo.lock "$ws/"
cp e2e/Cargo.toml "$ws/e2e/"
cp .config/nextest.toml "$ws/.config/"
cp -r config "$ws/config"
t_pack=$((SECONDS - t0))
echo "node-test: share $(du -sh "$share" | cut -f1) ($share)" >&2

# ---------------------------------------------------------------------------------------------
# The guest's script (runs as root under systemd, cwd /mnt/host).
cat >"$share/run.sh" <<EOF
#!/bin/sh
# Generated by hack/vm/node-test.sh: runs the e2e suites once per cgroup driver.
set -u
# driver:CRIUS_E2E_CGROUP_MANAGER pairs.
passes="${passes[*]}"
filter=$(printf %q "$filter")
EOF
cat >>"$share/run.sh" <<'EOF'
echo "== guest: kernel $(uname -r), /sys/fs/cgroup: $(stat -f -c %T /sys/fs/cgroup), $(nproc) CPUs, $(($(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1024)) MiB"
echo "== booted in $(cut -d' ' -f1 /proc/uptime)s; systemd $(systemctl is-system-running 2>/dev/null || true)"
echo "== root cgroup.subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
echo "== dbus: $(systemctl is-active dbus.socket 2>/dev/null || true) (socket)"
echo "== /tmp: $(df -h --output=fstype,size,avail /tmp | tail -1)"
# The binaries run from the share; the tests' state goes to the guest's disk.
bin=/mnt/host/bin
export CRIUS_BIN=$bin/crius
export CRIUS_E2E_CACHE=/mnt/host/cache
export TMPDIR=/tmp
export RUST_BACKTRACE=1
export NEXTEST_HIDE_PROGRESS_BAR=1
ulimit -n 65536
rc=0
for pass in $passes; do
  driver=${pass%%:*}
  manager=${pass#*:}
  echo "== driver $driver: CRIUS_E2E_CGROUP_MANAGER='$manager' cargo-nextest run -E '$filter'"
  start=$(date +%s)
  CRIUS_E2E_CGROUP_MANAGER=$manager "$bin/cargo-nextest" nextest run \
    --binaries-metadata /mnt/host/nextest/target/nextest/binaries-metadata.json \
    --cargo-metadata /mnt/host/nextest/target/nextest/cargo-metadata.json \
    --target-dir-remap /mnt/host/nextest/target \
    --workspace-remap /mnt/host/workspace \
    --profile vm --no-fail-fast --color never -E "$filter" || rc=1
  echo "== driver $driver took $(($(date +%s) - start))s"
  # Whatever a test left behind at the top of the hierarchy or as a unit.
  echo "== driver $driver leftovers: cgroups [$(ls -d /sys/fs/cgroup/crius* 2>/dev/null | tr '\n' ' ')]" \
    "units [$(systemctl list-units --all --plain --no-legend 'crius*' 2>/dev/null | cut -d' ' -f1 |
      grep -vx 'crius-vm-run.service' | tr '\n' ' ')]" \
    "links [$(ip -o link show 2>/dev/null | grep -o 'crius[^:@]*' | tr '\n' ' ')]"
done
exit $rc
EOF

# ---------------------------------------------------------------------------------------------
# Boot; once more if the VM produced no result at all (a test failure is never retried).
per_driver=${CRIUS_VM_NODE_TIMEOUT:-1800}
export CRIUS_VM_TIMEOUT=${CRIUS_VM_TIMEOUT:-$((per_driver * ${#driver_list[@]} + 300))}
export CRIUS_VM_MEM=${CRIUS_VM_MEM:-3072}
t0=$SECONDS
rc=0
bash hack/vm/run.sh "$share" || rc=$?
# 125: the guest left no exit code; 124 with no output at all: the guest never got to the script.
if ((rc == 125)) || { ((rc == 124)) && [[ ! -s $share/result/output.log ]]; }; then
  echo "node-test: the VM left no result; booting once more" >&2
  rc=0
  bash hack/vm/run.sh "$share" || rc=$?
fi
t_vm=$((SECONDS - t0))

# ---------------------------------------------------------------------------------------------
# Summary: per driver and suite (test binary) the tests passed and failed and the sum of their
# durations (they run two at a time), nextest's own summary lines, the failures, the timings.
out=$share/result/output.log
echo
echo "================ node-test summary ================"
passed=0
failed=0
if [[ -f $out ]]; then
  awk '
    /^== driver [a-z]+: / { driver = $3; sub(":", "", driver); done = 0 }
    # After its summary line nextest lists the failures once more.
    /^ *Summary \[/ { done = 1 }
    # "        PASS [   1.234s] ( 3/20) crius-e2e::pods name" (older nextest: no counter)
    !done && $1 ~ /^(PASS|FAIL|TIMEOUT|SIGKILL|SIGSEGV|SIGABRT|SIGBUS|ABORT|LEAK|LEAK-FAIL|FLAKY)$/ && /\] / {
      line = $0
      sub(/^[^[]*\[ */, "", line); secs = line; sub(/s\].*/, "", secs)
      for (i = 1; i <= NF; i++) if ($i ~ /^crius-e2e::/) { suite = $i; sub(/^crius-e2e::/, "", suite) }
      key = driver " " suite
      if (!(key in seen)) { seen[key] = 1; order[++n] = key }
      if ($1 == "PASS" || $1 == "LEAK") pass[key]++; else fail[key]++
      time[key] += secs
    }
    END {
      for (i = 1; i <= n; i++) {
        k = order[i]; split(k, p, " ")
        printf "  %-9s %-16s %3d passed %3d failed  %7.1fs of test time\n", p[1], p[2], pass[k], fail[k], time[k]
      }
    }' "$out"
  grep -E '^ *Summary \[|^== driver [a-z]+ took|^== booted|^== driver [a-z]+ leftovers' "$out" || true
  # Final list of failures nextest prints after its summary line.
  awk '/^ *Summary \[/ { s = 1; next } s && /^ *(FAIL|TIMEOUT|SIG[A-Z]+|ABORT|LEAK-FAIL) \[/ { print } /^== driver/ { s = 0 }' "$out"
  # Totals from nextest's summary lines ("… 20 tests run: 19 passed, 1 failed, 0 skipped").
  read -r passed failed < <(grep -E '^ *Summary \[' "$out" | awk '
    { for (i = 1; i <= NF; i++) {
        if ($(i+1) ~ /^passed/) p += $i
        if ($(i+1) ~ /^failed/) f += $i
        if ($(i+1) ~ /^timed/) f += $i
      } }
    END { print p + 0, f + 0 }')
fi
runs=$(grep -cE '^ *Summary \[' "$out" 2>/dev/null || true)
if [[ -f $out ]] && ((runs < ${#driver_list[@]})); then
  # A pass cut short (VM timeout) has no summary line: count its tests' result lines instead.
  # (Not the failures nextest lists again after a finished pass's summary line.)
  read -r passed failed < <(awk '
    /^== driver [a-z]+: / { done = 0 }
    /^ *Summary \[/ { done = 1 }
    !done && /^ +PASS \[/ { p++ }
    !done && /^ +(FAIL|TIMEOUT|SIG[A-Z]+|ABORT|LEAK-FAIL) \[/ { f++ }
    END { print p + 0, f + 0 }' "$out")
fi
echo "timings: image ${t_image}s, host build ${t_build}s, pack ${t_pack}s, VM (boot, tests, poweroff) ${t_vm}s, total $((SECONDS - t_start))s"
echo "drivers: ${driver_list[*]}; filter: $filter; guest exit code: $rc; logs: $share/result/"
if ((rc == 0 && runs != ${#driver_list[@]})); then
  echo "node-test: expected ${#driver_list[@]} nextest summaries, found $runs" >&2
  rc=1
fi
if ((rc == 0 && failed == 0 && passed == 0)); then
  echo "node-test: no test ran" >&2
  rc=1
fi
echo "$passed passed, $failed failed"
exit "$rc"
