#!/usr/bin/env bash
# Installs what is missing, builds crius (release) and runs the daemon in the foreground with its
# embedded defaults (socket /run/crius/crius.sock, state in /var/lib/crius and /run/crius).
# Arguments are passed to crius, e.g. `hack/run.sh --log-level debug` or `hack/run.sh config`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash hack/install-deps.sh
# A node without any CNI network gets crius' default bridge network (10.85.0.0/16 on crius0).
cni_dir=/etc/cni/net.d
if ! ls "$cni_dir"/*.conflist "$cni_dir"/*.conf "$cni_dir"/*.json >/dev/null 2>&1; then
    install -D -m 0644 config/cni/10-crius-bridge.conflist "$cni_dir/10-crius-bridge.conflist"
fi
cargo build --release -p crius -p crius-monitor
exec "${CARGO_TARGET_DIR:-target}/release/crius" "$@"
