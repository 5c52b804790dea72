#!/usr/bin/env bash
# Proves crius' cgroup library on a pure cgroup v2 host: builds, on this host, the crius lib
# test binary and the hack/vm/v2-smoke program, boots the VM of hack/vm/ (building its image
# first if needed) and runs in it, as root under systemd with /sys/fs/cgroup a cgroup2 mount:
#   1. <crius-libcontainer lib tests> cgroups --test-threads=1 --nocapture
#   2. crius-v2-smoke   (create/apply/update/enforce/freeze/stats/OOM/destroy on the real root),
#      twice: with vda's default I/O scheduler, then with BFQ (io.bfq.weight instead of io.weight)
# Prints the guest's output, then a summary of which real-kernel tests ran or skipped, and
# exits non-zero if anything failed. Logs stay in $TARGET/vm-cgroups-v2/result/.
#
#   hack/vm/test-cgroups-v2.sh [extra test-binary filter args...]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
share=$target_dir/vm-cgroups-v2

if ! command -v jq >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends jq >&2
fi

t0=$SECONDS
bash hack/vm/build-image.sh
t_image=$((SECONDS - t0))

t0=$SECONDS
echo "test-cgroups-v2: building the crius-libcontainer lib tests" >&2
testbin=$(cargo test -p crius-libcontainer --lib --no-run --message-format=json |
  jq -r 'select(.reason == "compiler-artifact" and .target.name == "crius_libcontainer" and .profile.test
               and (.target.kind | index("lib"))) | .executable' | tail -1)
[[ -x $testbin ]] || { echo "test-cgroups-v2: no test binary found" >&2; exit 1; }
echo "test-cgroups-v2: building hack/vm/v2-smoke" >&2
# Own workspace and Cargo.lock, but the main target dir: the dependencies are already built.
smoke=$(cd hack/vm/v2-smoke && CARGO_TARGET_DIR=$target_dir cargo build --message-format=json |
  jq -r 'select(.reason == "compiler-artifact" and .target.name == "crius-v2-smoke") | .executable' | tail -1)
[[ -x $smoke ]] || { echo "test-cgroups-v2: no v2-smoke binary found" >&2; exit 1; }
t_build=$((SECONDS - t0))

rm -rf "$share"
mkdir -p "$share"
# Debug info is of no use in the guest and would only slow the copy through 9p.
strip --strip-debug -o "$share/crius-lib-tests" "$testbin"
strip --strip-debug -o "$share/crius-v2-smoke" "$smoke"
filter=("$@")
cat >"$share/run.sh" <<EOF
# Runs inside the VM (hack/vm/run.sh), as root, cwd /mnt/host.
echo "== guest: kernel \$(uname -r); /sys/fs/cgroup is \$(stat -f -c %T /sys/fs/cgroup)"
echo "== cmdline: \$(cat /proc/cmdline)"
grep -E 'cgroup' /proc/mounts
echo "== root cgroup.controllers: \$(cat /sys/fs/cgroup/cgroup.controllers)"
echo "== root cgroup.subtree_control: \$(cat /sys/fs/cgroup/cgroup.subtree_control)"
echo "== this script's cgroup: \$(cat /proc/self/cgroup)"
work=\$(mktemp -d /tmp/crius-test.XXXXXX)
cp /mnt/host/crius-lib-tests /mnt/host/crius-v2-smoke "\$work/"
cd "\$work"
rc=0
echo "== crius-libcontainer lib tests: cgroups"
start=\$(date +%s)
RUST_BACKTRACE=1 ./crius-lib-tests cgroups:: --test-threads=1 --nocapture ${filter[*]:-} || rc=1
echo "== lib tests took \$((\$(date +%s) - start))s"
echo "== crius-v2-smoke"
start=\$(date +%s)
RUST_BACKTRACE=1 ./crius-v2-smoke || rc=1
echo "== v2-smoke took \$((\$(date +%s) - start))s"
echo "== crius-v2-smoke again, with the BFQ I/O scheduler on vda (weights go to io.bfq.weight)"
if modprobe bfq && echo bfq >/sys/block/vda/queue/scheduler; then
  RUST_BACKTRACE=1 ./crius-v2-smoke || rc=1
else
  echo "BFQ unavailable: second pass skipped"
fi
echo "== leftover test cgroups: \$(ls -d /sys/fs/cgroup/crius-* 2>/dev/null | tr '\n' ' ')"
cd /
rm -rf "\$work"
exit \$rc
EOF

t0=$SECONDS
rc=0
bash hack/vm/run.sh "$share" || rc=$?
t_vm=$((SECONDS - t0))
rm -f "$share/crius-lib-tests" "$share/crius-v2-smoke"

out=$share/result/output.log
echo
echo "================ summary ================"
if [[ -f $out ]]; then
  grep -E '^test result:|^v2-smoke: [0-9]+ passed' "$out" || true
  echo "real-kernel lib tests (name contains ::real::):"
  grep -oE '^test cgroups::[a-z0-9_:]*::real::[a-z0-9_]+' "$out" | sed 's/^test //' |
    while read -r t; do
      fn=${t##*::}
      if reason=$(grep -m1 -oE "skipping $fn: .*" "$out"); then
        echo "  SKIPPED  $t (${reason#skipping $fn: })"
      else
        echo "  RAN      $t"
      fi
    done
  grep -E '^FAIL: |^test .* FAILED$|panicked at' "$out" || true
fi
echo "timings: image ${t_image}s, host build ${t_build}s, VM boot+tests+poweroff ${t_vm}s"
echo "guest exit code: $rc   (logs: $share/result/)"
exit "$rc"
