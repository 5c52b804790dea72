#!/usr/bin/env bash
# Installs what building crius and running its tests need, on Debian 12. Idempotent: when every
# package is already there it neither updates apt's lists nor installs anything.
set -euo pipefail

packages=(
  build-essential          # cc for crates with C parts (zstd, aws-lc)
  pkg-config
  ca-certificates
  protobuf-compiler        # protoc: the CRI API is generated at build time
  docker-registry          # CNCF distribution: the e2e tests' throw-away registries
  busybox-static           # /bin/busybox: the e2e test images are built from it
  runc                     # the monitor tests drive it (and compare crius oci with it)
  containernetworking-plugins
  openssl                  # TLS material for the e2e registries
  iproute2
  iptables
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]})); then
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# grpcio (gRPC's C core, for Python): e2e/tests/grpc_clients.rs calls crius with it.
if ! python3 -c 'import grpc' >/dev/null 2>&1; then
  echo "install-deps: installing grpcio (PyPI)" >&2
  pip=(python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore)
  # A Debian python3 refuses pip installs into its own tree (PEP 668) unless told otherwise.
  "${pip[@]}" grpcio || "${pip[@]}" --break-system-packages grpcio
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found: install a Rust toolchain (rustup) first" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "install-deps: installing cargo-nextest" >&2
  cargo install cargo-nextest --locked
fi
# hack/fuzz.sh's driver (docs/testing.md, "Fuzzing"); about a minute to build on a fresh machine.
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "install-deps: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
