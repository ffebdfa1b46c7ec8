#!/usr/bin/env bash
# Installs what sriov-rs needs to build, run the demo and run every test lane
# on a Debian (bookworm or later) machine, as root. Safe to run again: it only
# installs what is missing.
set -euo pipefail

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "setup: run as root (it installs Debian packages)" >&2
    exit 1
  fi
}

# Debian packages the build and the test lanes use:
#   fuse3                       fusermount3 for the simulated node (sriov-sim mount)
#   iproute2                    ip, for network namespaces and veths
#   containernetworking-plugins host-local/static/host-device for CNI tests
#   strace                      captures iproute2's netlink bytes in tests
#   build-essential pkg-config  C toolchain for -sys crates
#   curl ca-certificates        rustup, when no Rust toolchain is present
PACKAGES=(fuse3 iproute2 containernetworking-plugins strace build-essential pkg-config curl ca-certificates kmod)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  need_root
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The QEMU hardware lane has its own packages (qemu from backports, a Debian
# kernel, busybox); see hw-tests/setup.sh.
if [ -x hw-tests/setup.sh ] && [ "${SRIOV_SKIP_HW_SETUP:-0}" != 1 ]; then
  hw-tests/setup.sh
fi

# The cluster lane (scripts/cluster.sh, docs/cluster.md) has its own packages
# (containerd, runc, conntrack, openssl, busybox-static…); see cluster/setup.sh.
if [ -x cluster/setup.sh ] && [ "${SRIOV_SKIP_CLUSTER_SETUP:-0}" != 1 ]; then
  cluster/setup.sh
fi

# Rust: edition 2024 needs a toolchain newer than Debian's; use rustup.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: installing the Rust toolchain with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
fi
# The manual (`make docs`, docs/README.md): mdBook from crates.io, and
# PyYAML for scripts/gen-reference.py. Skipped when present.
if ! command -v mdbook >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/mdbook" ]; then
  echo "setup: installing mdbook 0.5.4 (cargo install)"
  PATH="$HOME/.cargo/bin:$PATH" cargo install mdbook --version 0.5.4 --locked
fi
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  need_root
  apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null
fi

# cargo-fuzz for the fuzz targets in fuzz/ (scripts/fuzz.sh; the smoke run is
# part of `make test`). It runs on stable with RUSTC_BOOTSTRAP=1.
if command -v cargo >/dev/null 2>&1 && ! cargo fuzz --version >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
echo "setup: ok"
