#!/usr/bin/env bash
# Runs a throw-away plain-HTTP registry on 127.0.0.1 in the foreground, for trying crius by hand
# (configure it with `[image.registries."127.0.0.1:PORT"] insecure = true`).
# Usage: hack/registry.sh [PORT]   (default 5000; storage in a temporary directory)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

port=${1:-5000}
bash hack/install-deps.sh
dir=$(mktemp -d -t crius-registry-XXXXXX)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
echo "registry: http://127.0.0.1:$port (storage $dir/storage; Ctrl-C stops it)" >&2
docker-registry serve "$dir/config.yml"
