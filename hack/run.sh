#!/usr/bin/env bash
# Installs what is missing, builds crius (release) and runs the daemon in the foreground with its
# embedded defaults (socket /run/crius/crius.sock, state in /var/lib/crius and /run/crius).
# Arguments are passed to crius, e.g. `hack/run.sh --log-level debug` or `hack/run.sh config`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash hack/install-deps.sh
cargo build --release --bin crius
exec "${CARGO_TARGET_DIR:-target}/release/crius" "$@"
