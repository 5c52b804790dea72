#!/usr/bin/env bash
# Measures what crius-monitor processes cost: starts N busybox containers (idle `sleep`, or a
# script), each under its own monitor (no daemon), waits, then prints RSS, PSS and private
# memory per monitor from /proc/PID/smaps_rollup, and where one monitor's resident pages are
# (per mapping, from /proc/PID/smaps). Everything is removed afterwards. A measurement, not a
# test: nothing is asserted. Root, runc (for `runc spec`), jq and busybox are needed.
#
#   hack/monitor-footprint.sh [-n N] [-m MONITOR] [-r RUNTIME] [-w SECONDS] [-c SCRIPT]
#
#   -n N        monitors to start at once (default 20), so shared pages split N ways in PSS
#   -m MONITOR  the monitor binary (default target/release/crius-monitor, else target/debug/...)
#   -r RUNTIME  runtime path; `crius` gets the argument `oci` (default target/debug/crius, else runc)
#   -w SECONDS  time before sampling (default 2)
#   -c SCRIPT   what each container runs, as `sh -c SCRIPT` (default: sleep, no output)
#
# With FOOTPRINT_HOLD=FILE the monitors' pids go to FILE before the sampling, and the script
# waits (up to 1000 s; kill its `sleep` to go on) so they can be looked at in the meantime.
# Busy monitors: -c 'i=0; while [ $i -lt 50 ]; do echo line $i; i=$((i+1)); sleep 0.1; done;
# exec sleep 1000000' -w 1 (sampled while each container writes a line every 100 ms).
set -euo pipefail

cd "$(dirname "$0")/.."
n=20
wait_s=2
monitor=""
runtime=""
script="exec sleep 1000000"
while getopts "n:m:r:w:c:" opt; do
    case $opt in
    n) n=$OPTARG ;;
    m) monitor=$OPTARG ;;
    r) runtime=$OPTARG ;;
    w) wait_s=$OPTARG ;;
    c) script=$OPTARG ;;
    *) sed -n '8,15p' "$0" >&2; exit 2 ;;
    esac
done
if [[ -z $monitor ]]; then
    monitor=target/release/crius-monitor
    [[ -x $monitor ]] || monitor=target/debug/crius-monitor
fi
if [[ -z $runtime ]]; then
    runtime=target/debug/crius
    [[ -x $runtime ]] || runtime=$(command -v runc)
fi
monitor=$(realpath "$monitor")
runtime=$(realpath "$runtime")
runtime_args=()
[[ $(basename "$runtime") == crius ]] && runtime_args=(--runtime-arg oci)
rt_cmd=("$runtime")
[[ ${#runtime_args[@]} -gt 0 ]] && rt_cmd+=(oci)

work=$(mktemp -d /tmp/crius-monfp.XXXXXX)
ids=()
cleanup() {
    for id in "${ids[@]}"; do
        "${rt_cmd[@]}" --root "$work/rt" kill "$id" KILL >/dev/null 2>&1 || true
    done
    for i in "${!ids[@]}"; do
        for _ in $(seq 100); do
            [[ -e $work/c$i/exit.json ]] && break
            sleep 0.05
        done
        "${rt_cmd[@]}" --root "$work/rt" delete --force "${ids[$i]}" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/rootfs/bin" "$work/rootfs/proc" "$work/rootfs/dev" "$work/rootfs/sys"
cp /bin/busybox "$work/rootfs/bin/busybox"
ln -s busybox "$work/rootfs/bin/sleep"
ln -s busybox "$work/rootfs/bin/sh"
runc spec --bundle "$work"
jq --arg root "$work/rootfs" --arg script "$script" '.process.terminal = false
    | .process.args = ["sh", "-c", $script]
    | .root = {path: $root, readonly: true}' "$work/config.json" >"$work/spec.json"

pids=()
for i in $(seq 0 $((n - 1))); do
    id=monfp-$$-$i
    c=$work/c$i
    mkdir -p "$c"
    jq --arg cg "/crius-monfp-$id" '.linux.cgroupsPath = $cg' "$work/spec.json" >"$c/config.json"
    "$monitor" container --id "$id" --bundle "$c" --runtime "$runtime" "${runtime_args[@]}" \
        --runtime-root "$work/rt" --exit-file "$c/exit.json" --log-path "$c/ctr.log" \
        --attach-socket "$c/attach.sock" --control-socket "$c/control.sock" \
        2>"$c/monitor.err" </dev/null | head -n 1 >"$c/sync"
    ids+=("$id")
    if ! jq -e .pid "$c/sync" >/dev/null; then
        cat "$c/sync" "$c/monitor.err" >&2
        exit 1
    fi
    mpid=$(jq -r .monitor_pid "$c/sync")
    "${rt_cmd[@]}" --root "$work/rt" start "$id"
    pids+=("$mpid")
done
sleep "$wait_s"
[[ -n ${FOOTPRINT_HOLD:-} ]] && { echo "${pids[@]}" >"$FOOTPRINT_HOLD"; sleep 1000; }

echo "monitor: $monitor ($(stat -c %s "$monitor") bytes)"
echo "runtime: ${rt_cmd[*]}; $n monitors, sampled ${wait_s} s after the start"
echo "containers: sh -c '$script'"
echo
printf '%-8s %8s %8s %8s %8s %8s %8s\n' pid Rss Pss Pss_Anon Pss_File Priv Anon
for p in "${pids[@]}"; do
    awk -v pid="$p" '
        /^Rss:/ {rss=$2} /^Pss:/ {pss=$2} /^Pss_Anon:/ {pa=$2} /^Pss_File:/ {pf=$2}
        /^Private_Clean:/ {pc=$2} /^Private_Dirty:/ {pd=$2} /^Anonymous:/ {an=$2}
        END {printf "%-8s %8d %8d %8d %8d %8d %8d\n", pid, rss, pss, pa, pf, pc+pd, an}' \
        "/proc/$p/smaps_rollup"
done | sort -k2n | tee "$work/table" | awk '
    {rss[NR]=$2; pss[NR]=$3; priv[NR]=$6}
    END {
        m=int((NR+1)/2)
        printf "median   Rss %d kB, Pss %d kB, private %d kB (kB, of %d monitors; rows sorted by Rss)\n\n", rss[m], pss[m], priv[m], NR
    }'
cat "$work/table"
echo
echo "where the pages of monitor ${pids[0]} are (kB):"
printf "%8s %8s %8s  %s\n" Rss Pss Private mapping
awk '
    /^[0-9a-f]+-[0-9a-f]+ / {name = (NF >= 6) ? $6 : "[anon]"; perms = $2; key = name " " perms}
    /^Rss:/ {rss[key] += $2} /^Pss:/ {pss[key] += $2}
    /^Private_Clean:|^Private_Dirty:/ {priv[key] += $2}
    END {

        for (k in rss) if (rss[k] > 0) printf "%8d %8d %8d  %s\n", rss[k], pss[k], priv[k], k
    }' "/proc/${pids[0]}/smaps" | sort -k1nr
grep -E '^(Threads|VmRSS|RssAnon|RssFile|VmStk|VmData)' "/proc/${pids[0]}/status"
