#!/usr/bin/env bash
# crius and Debian's containerd side by side on this machine, in one run (issue 16, item 5).
#
# Usage: hack/bench.sh [--runs N] [--rounds N] [--pod-pid-runs N] [--pods N] [--density N]
#                      [--clients N] [--lifecycles N] [--heavy-rounds N] [--out FILE] [--no-build]
#
# It installs what it needs if missing (containerd, runc, the CNI plugins, docker-registry,
# busybox-static: apt-get), builds crius (release) and pod-bench, then:
#   - serves the busybox test image and a pause image (crius' static pause packed as /pause)
#     from a loopback registry (`pod-bench serve-images`); no public image is ever pulled;
#   - starts crius and containerd (runc v2 shim, runc), each with its own root, state, socket,
#     config, cgroup parent and CNI bridge network (bridge + host-local + portmap, ipMasq off, a
#     private /24 of 10.198.0.0/16, bridges bench-cr<N> / bench-ct<N>, Debian's plugins);
#     containerd runs in a mount namespace of its own whose /run and /var/lib are directories of
#     this run, so it never touches the host's /run/containerd, /var/lib/containerd or /var/lib/cni
#     (its shims' sockets, hard-wired under /run/containerd/s, land there too);
#   - runs `pod-bench suite` against each, interleaved: --rounds rounds (default 2) of the
#     lifecycle RPCs (crius, containerd, crius, containerd, ...), then --heavy-rounds rounds
#     (default 1) of the node-overhead and density steps, again interleaved;
#   - prints one markdown table of the medians (metric | containerd | crius | crius/containerd),
#     with the date and the load average, to --out (default stdout).
# Both daemons are stopped by PID and everything they made (pods, mounts, bridges, iptables
# rules on their subnets, cgroups, directories) is removed at the end, also on error or Ctrl-C.
# Progress goes to stderr; the raw JSON of every run and the daemons' logs are copied to
# $BENCH_KEEP if that is set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

runs=30 rounds=2 pod_pid_runs=10 pods=20 density=100 clients=8 lifecycles=25 heavy_rounds=1
out="" build=1
usage() { sed -n '4,5p' "$0" | sed 's/^# //' >&2; exit 2; }
while (($#)); do
  case $1 in
    --runs) runs=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --pod-pid-runs) pod_pid_runs=$2; shift ;;
    --pods) pods=$2; shift ;;
    --density) density=$2; shift ;;
    --clients) clients=$2; shift ;;
    --lifecycles) lifecycles=$2; shift ;;
    --heavy-rounds) heavy_rounds=$2; shift ;;
    --out) out=$2; shift ;;
    --no-build) build=0 ;;
    -h|--help) usage ;;
    *) echo "bench: unknown argument $1" >&2; usage ;;
  esac
  shift
done
[[ $(id -u) -eq 0 ]] || { echo "bench: run as root (it starts two container runtimes)" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------------------------------------
# 1. What it needs

packages=(containerd runc containernetworking-plugins docker-registry busybox-static iproute2
  iptables util-linux python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  systemd_up=0; [[ -d /run/systemd/system ]] && systemd_up=1
  was_active=0
  if ((systemd_up)) && systemctl is-active --quiet containerd.service 2>/dev/null; then was_active=1; fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  # Debian's package enables and starts containerd.service where systemd runs: this bench
  # starts its own containerd and wants no system one it did not have before.
  if ((systemd_up && !was_active)) && systemctl is-active --quiet containerd.service 2>/dev/null; then
    log "the install started containerd.service: stopping and disabling it"
    systemctl stop containerd.service
    systemctl disable containerd.service
  fi
fi

if ((build)); then
  log "building crius and crius-monitor (release) and pod-bench"
  cargo build -q --release -p crius --bin crius -p crius-monitor --bin crius-monitor >&2
  cargo build -q --release -p crius-e2e --bin pod-bench >&2
fi
target_dir=${CARGO_TARGET_DIR:-$repo/target}
# BENCH_PROFILE=debug (with --no-build) tries the script out on debug binaries; numbers need release.
profile=${BENCH_PROFILE:-release}
crius_bin=$target_dir/$profile/crius
monitor_bin=$target_dir/$profile/crius-monitor
pod_bench=${POD_BENCH:-$target_dir/$profile/pod-bench}
# The static pause crius embeds (pause/pause.rs, built by build.rs): also containerd's sandbox.
pause_bin=$(ls -t "$target_dir"/"$profile"/build/crius-*/out/crius-pause 2>/dev/null | head -1 || true)
for f in "$crius_bin" "$monitor_bin" "$pod_bench" "$pause_bin"; do
  [[ -n $f && -x $f ]] || { log "missing ${f:-crius-pause}: build first (or drop --no-build)"; exit 1; }
done

# ---------------------------------------------------------------------------------------------
# 2. Work directory, networks, cleanup

work=$(mktemp -d /tmp/crius-bench-XXXXXX)
tag=${work##*-}
registry_pid="" crius_pid="" ctrd_pid="" suite_pid="" cr_bridge="" ct_bridge="" cr_net="" ct_net=""
cr_cgroup=/crius-bench-$tag-crius ct_cgroup=/crius-bench-$tag-containerd

# Every process whose command line mentions the work directory (shims, monitors): ours.
our_helpers() {
  local pid
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
    { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$work/" && echo "$pid"
  done
}

stop_pid() { # pid: SIGTERM, up to 15 s, then SIGKILL
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$? pid cg dir rule net
  trap - EXIT INT TERM
  set +e
  log "cleaning up"
  # A suite still running (interrupted): SIGINT makes it remove its own pods first.
  if [[ -n $suite_pid ]] && kill -0 "$suite_pid" 2>/dev/null; then
    kill -INT "$suite_pid"
    for ((i = 0; i < 1200; i++)); do kill -0 "$suite_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$suite_pid" 2>/dev/null
  fi
  for sock in "$work/crius/crius.sock" "$work/containerd/containerd.sock"; do
    [[ -S $sock ]] && timeout 300 "$pod_bench" cleanup-all --socket "$sock" >&2
  done
  stop_pid "$crius_pid"
  stop_pid "$ctrd_pid"
  # SIGTERM: it stops its registry and removes its storage.
  stop_pid "$registry_pid"
  # What outlived its daemon: shims and monitors by PID, then the processes left in our cgroups.
  for pid in $(our_helpers); do kill -9 "$pid" 2>/dev/null; done
  for cg in "$cr_cgroup" "$ct_cgroup" "$cr_cgroup-monitors"; do
    for pid in $(find /sys/fs/cgroup/*"$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
      kill -9 "$pid" 2>/dev/null
    done
  done
  sleep 0.5
  # crius' mounts (containerd's lived in its own namespace, gone with its last process).
  grep -F " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  for net in "$cr_bridge" "$ct_bridge"; do
    [[ -n $net && -e /sys/class/net/$net ]] && ip link del "$net"
  done
  for net in "$cr_net" "$ct_net"; do
    [[ -n $net ]] || continue
    for table in nat filter mangle; do
      iptables-save -t "$table" 2>/dev/null | grep -E "^-A .*(${net//./\\.}\.|bench-(crius|containerd)-$tag)" |
        while read -r rule; do eval "iptables -t $table ${rule/#-A/-D}"; done
    done
  done
  for cg in "$cr_cgroup" "$ct_cgroup" "$cr_cgroup-monitors"; do
    find /sys/fs/cgroup/*"$cg" -depth -type d 2>/dev/null | while read -r dir; do rmdir "$dir" 2>/dev/null; done
  done
  if [[ -n ${BENCH_KEEP:-} ]]; then
    mkdir -p "$BENCH_KEEP" && cp "$work"/result-*.json "$work"/*/*.log "$BENCH_KEEP"/ 2>/dev/null
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two free /24s in 10.198.0.0/16 (no address on the host in them, no bridge of that name).
free_octet() {
  local n
  for ((n = ${1}; n < 255; n++)); do
    ip -4 -o addr | grep -qF " 10.198.$n." && continue
    [[ -e /sys/class/net/bench-cr$n || -e /sys/class/net/bench-ct$n ]] && continue
    echo "$n"; return
  done
  return 1
}
n1=$(free_octet $((RANDOM % 200 + 1)) || free_octet 1)
n2=$(free_octet $((n1 + 1)) || free_octet 1)
cr_bridge=bench-cr$n1 ct_bridge=bench-ct$n2 cr_net=10.198.$n1 ct_net=10.198.$n2

conflist() { # name bridge net ipam-dir
  cat <<JSON
{
  "cniVersion": "1.0.0",
  "name": "$1",
  "plugins": [
    {
      "type": "bridge", "bridge": "$2", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "$3.0/24", "gateway": "$3.1"}]],
               "routes": [], "dataDir": "$4"}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

# The pods' cgroup parents, made ahead with cpuset filled in (cgroup v1), as a kubelet's are.
make_cgroup() {
  local dir
  for dir in /sys/fs/cgroup/*/; do
    [[ -e $dir/cgroup.procs ]] || continue
    mkdir -p "$dir${1#/}"
    if [[ -e $dir/cpuset.cpus && -e $dir${1#/}/cpuset.cpus ]]; then
      cat "$dir/cpuset.cpus" >"$dir${1#/}/cpuset.cpus"
      cat "$dir/cpuset.mems" >"$dir${1#/}/cpuset.mems"
    fi
  done
}
make_cgroup "$cr_cgroup"; make_cgroup "$ct_cgroup"; make_cgroup "$cr_cgroup-monitors"

# ---------------------------------------------------------------------------------------------
# 3. Registry, crius, containerd

log "work directory $work"
# The daemons and the registry in sessions of their own: a Ctrl-C at the terminal reaches the
# script and the suite, and the cleanup below stops the daemons once their pods are gone.
setsid "$pod_bench" serve-images --out "$work/images.json" --pause-bin "$pause_bin" 2>"$work/registry.log" &
registry_pid=$!
for ((i = 0; i < 600; i++)); do
  [[ -s $work/images.json ]] && break
  kill -0 "$registry_pid" 2>/dev/null || { cat "$work/registry.log" >&2; exit 1; }
  sleep 0.2
done
[[ -s $work/images.json ]] || { log "the registry did not come up"; exit 1; }
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/images.json" "$1"; }
registry=$(json registry) busybox=$(json busybox) pause_image=$(json pause)
log "registry $registry: $busybox, $pause_image"

wait_socket() { # socket pid log
  local i
  for ((i = 0; i < 600; i++)); do
    grep -q " $1\$" /proc/net/unix 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { tail -30 "$3" >&2; log "$(basename "$1") never came up"; exit 1; }
    sleep 0.1
  done
  tail -30 "$3" >&2; log "timed out waiting for $1"; exit 1
}

c=$work/crius
mkdir -p "$c/net.d" "$c/crius.d" "$c/certs.d" "$c/root" "$c/run"
conflist "bench-crius-$tag" "$cr_bridge" "$cr_net" "$c/ipam" >"$c/net.d/10-bench.conflist"
cat >"$c/crius.toml" <<TOML
root = "$c/root"
runroot = "$c/run"
log_level = "info"
[api]
listen = "$c/crius.sock"
[image]
auth_file = "$c/auth.json"
certs_dir = "$c/certs.d"
[image.registries."$registry"]
insecure = true
[network]
network_dir = "$c/net.d"
plugin_dirs = ["/usr/lib/cni"]
[runtime]
monitor_path = "$monitor_bin"
cgroup_parent = "$cr_cgroup"
monitor_cgroup = "$cr_cgroup-monitors"
TOML
log "starting crius ($cr_bridge, $cr_net.0/24)"
setsid "$crius_bin" --config "$c/crius.toml" --config-dir "$c/crius.d" --root "$c/root" \
  --runroot "$c/run" --listen "$c/crius.sock" >"$c/crius.log" 2>&1 &
crius_pid=$!
wait_socket "$c/crius.sock" "$crius_pid" "$c/crius.log"

d=$work/containerd
mkdir -p "$d/net.d" "$d/root" "$d/state" "$d/run" "$d/varlib"
conflist "bench-containerd-$tag" "$ct_bridge" "$ct_net" "$d/ipam" >"$d/net.d/10-bench.conflist"
cat >"$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[debug]
  level = "${BENCH_CONTAINERD_LOG:-info}"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # The pause's oom_score_adj -998 is refused here (no CAP_SYS_RESOURCE over our own score):
  # clamp to containerd's own, as crius does.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "$d/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$registry"]
    endpoint = ["http://$registry"]
TOML
log "starting containerd $(containerd --version | awk '{print $3}') with runc $(runc --version | awk 'NR==1{print $3}') ($ct_bridge, $ct_net.0/24)"
# Its own mount namespace: /run and /var/lib are this run's directories there.
setsid unshare --mount --propagation private sh -c '
  set -e
  mount --bind "$1/run" /run
  mount --bind "$1/varlib" /var/lib
  exec containerd --config "$1/config.toml"' sh "$d" >"$d/containerd.log" 2>&1 &
ctrd_pid=$!
wait_socket "$d/containerd.sock" "$ctrd_pid" "$d/containerd.log"

# ---------------------------------------------------------------------------------------------
# 4. The runs, interleaved

suite() { # runtime round steps extra-args...
  local runtime=$1 round=$2 steps=$3; shift 3
  local args=(suite --image "$busybox" --steps "$steps" --runs "$runs" --pod-pid-runs "$pod_pid_runs"
    --pods "$pods" --density "$density" --clients "$clients" --lifecycles "$lifecycles"
    --out "$work/result-$runtime-$steps-$round.json")
  case $runtime in
    crius) args+=(--socket "$c/crius.sock" --daemon-pid "$crius_pid" --cgroup-parent "$cr_cgroup"
      --helper-exe crius-monitor) ;;
    containerd) args+=(--socket "$d/containerd.sock" --daemon-pid "$ctrd_pid"
      --cgroup-parent "$ct_cgroup" --helper-exe containerd-shim-runc-v2 --pull "$pause_image") ;;
  esac
  log "round $round: $runtime $steps"
  # In the background and waited for, so that a signal runs the trap at once.
  "$pod_bench" "${args[@]}" "$@" &
  suite_pid=$!
  wait "$suite_pid"
  suite_pid=""
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
date_before=$(date -u '+%Y-%m-%d %H:%M UTC')
for ((r = 1; r <= rounds; r++)); do
  for runtime in crius containerd; do suite "$runtime" "$r" lifecycle; done
done
for ((r = 1; r <= heavy_rounds; r++)); do
  for runtime in crius containerd; do suite "$runtime" "$r" overhead,density; done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
# 5. The table

python3 "$repo/hack/bench/table.py" --dir "$work" \
  --header "$date_before; $(nproc) cores; load average $load_before at the start, $load_after at the end" \
  --versions "containerd $(containerd --version | awk '{print $3}') + runc $(runc --version | awk 'NR==1{print $3}'); crius $(git -C "$repo" rev-parse --short HEAD) ($profile build)" \
  >"$work/table.md"
if [[ -n $out ]]; then cp "$work/table.md" "$out"; log "table written to $out"; else cat "$work/table.md"; fi
