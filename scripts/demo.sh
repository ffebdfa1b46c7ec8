#!/usr/bin/env bash
# The simulated-node demo (grows as components land).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin/sriov-sim" tree "$tmp" --node mixed
echo "== dpdk-bind status on a simulated 'mixed' node ($tmp)"
"$bin/dpdk-bind" --host-root "$tmp" status
