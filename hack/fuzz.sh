#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for FUZZ_SECONDS (default 60) seconds,
# starting from its in-tree seed corpus (fuzz/corpus/<target>/, read only: new inputs go to a
# scratch directory). Fails when any target crashes, hangs or leaks, and says where the input
# that did it is (fuzz/artifacts/<target>/) and how to replay it. docs/testing.md, "Fuzzing".
#
#   hack/fuzz.sh                      # every target, 60 s each
#   FUZZ_SECONDS=1800 hack/fuzz.sh unpack_layer spdy_session
#
# CRIUS_FUZZ_TARGET_DIR: where the instrumented build goes (default ~/.cache/crius/fuzz-target).
#
# The toolchain is stable; RUSTC_BOOTSTRAP=1 lets cargo fuzz pass its -Z flags (sanitizer,
# coverage instrumentation) to it. The unpack target creates device nodes, whiteouts and
# trusted.* xattrs, so it needs root, as the daemon does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${FUZZ_SECONDS:-60}
export RUSTC_BOOTSTRAP=1
# Outside the checkout by default: the instrumented build of every dependency takes ~15 minutes
# of CPU and CI starts from a clean clone; kept here, later runs rebuild only what changed.
target_dir=${CRIUS_FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/crius/fuzz-target}
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is missing; hack/install-deps.sh installs it" >&2
  exit 1
fi

if (($#)); then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

started=$SECONDS
cargo fuzz build --target-dir "$target_dir"
echo "fuzz: built ${#targets[@]} targets in $((SECONDS - started)) s" >&2

work=$(mktemp -d /tmp/crius-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The unpack target's scratch directories (dest and the bait around it) live here.
export TMPDIR=$work/tmp
mkdir -p "$TMPDIR"

failed=()
for target in "${targets[@]}"; do
  mkdir -p "$work/corpus/$target" "fuzz/artifacts/$target"
  log=$work/$target.log
  echo "fuzz: $target for ${seconds} s" >&2
  status=0
  cargo fuzz run --target-dir "$target_dir" "$target" "$work/corpus/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  # The last status line: executions, coverage (edges), features, corpus size.
  summary=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  echo "fuzz: $target: ${execs:-?} executions; ${summary:-no status line}" >&2
  if ((status != 0)); then
    failed+=("$target")
    tail -n 60 "$log" >&2
    crash=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -n 1 | sed 's/Test unit written to //' || true)
    if [[ -n $crash ]]; then
      echo "fuzz: $target FAILED; the input is $crash" >&2
      echo "fuzz: replay it with: RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir $target_dir $target $crash" >&2
    else
      echo "fuzz: $target FAILED (exit $status) without writing an input; the log is above" >&2
    fi
  fi
done

echo "fuzz: ${#targets[@]} targets, $seconds s each, $((SECONDS - started)) s in all" >&2
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
