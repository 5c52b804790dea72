#!/usr/bin/env bash
# Runs the whole test suite: unit tests of every crate and the end-to-end tests in e2e/, which
# start the crius binary built here (CRIUS_BIN) against throw-away registries on 127.0.0.1.
# Extra arguments go to `cargo nextest run`, e.g. `hack/test.sh -E 'test(/pull/)'`.
#
# Without arguments, the e2e suites then run once more inside the pure cgroup v2 systemd VM
# (hack/vm/node-test.sh, docs/testing-v2.md) with the cgroup drivers in CRIUS_VM_DRIVERS
# (default both: cgroupfs, then systemd). CRIUS_VM_NODE_TEST=0 skips the VM. Before the VM, each
# cargo-fuzz target runs for 30 s (hack/fuzz.sh; FUZZ_SECONDS); CRIUS_FUZZ=0 skips that.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The daemon's top-level modules import each other one way (docs/architecture.md, "Layers").
python3 hack/module-cycles.py
bash hack/install-deps.sh
# Gates: formatting and lints of every crate and target (tests, benches and tools included).
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
export CRIUS_BIN="$target_dir/debug/crius"
cargo nextest run --workspace --no-fail-fast "$@"
# The monitor's tests once more, with crius' own OCI runtime under it instead of runc.
if [[ $# -eq 0 ]]; then
  CRIUS_MONITOR_RUNTIME="$CRIUS_BIN oci" cargo nextest run -p crius-monitor --test monitor --no-fail-fast
fi
# Every fuzz target for FUZZ_SECONDS (default 30 here) each (docs/testing.md, "Fuzzing").
if [[ $# -eq 0 && ${CRIUS_FUZZ:-1} != 0 ]]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-30} bash hack/fuzz.sh
fi
# The node test in the VM (needs root: QEMU's 9p share with passthrough, the image build).
if [[ $# -eq 0 && ${CRIUS_VM_NODE_TEST:-1} != 0 ]]; then
  bash hack/vm/node-test.sh --driver "${CRIUS_VM_DRIVERS:-both}"
fi
