#!/usr/bin/env bash
# Runs the whole test suite. `make test` calls it after `make setup`.
# Under CI (CI=true) every lane is required: a test that would skip for lack
# of root, FUSE, network namespaces or QEMU fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:/usr/local/go/bin:$PATH"
if [ "${CI:-}" = true ] && [ -z "${SRIOV_REQUIRE_LANES:-}" ]; then
  export SRIOV_REQUIRE_LANES=all
fi

# Disk: a clean run writes about 12 GB (Rust build, Kubernetes built from its
# Go modules, images; docs/testing.md, "Disk"). Each stage prints what is
# left so a full disk is seen for what it is.
disk() { df -Pk . | awk -v s="$1" 'NR==2{printf "   disk after %s: %.1f GB free\n", s, $4/1048576}'; }
if [ "${CI:-}" = true ]; then
  # Incremental compilation caches only help a developer's next edit; in CI
  # they are GBs of dead weight.
  export CARGO_INCREMENTAL=0
fi
# Under CI on a small disk, drop build caches the rest of the run no longer
# needs: what they built is cached by version under /var/cache/sriov-rs.
low_disk() { [ "${CI:-}" = true ] && [ "$(df -Pk . | awk 'NR==2{print int($4/1048576)}')" -lt 20 ]; }
tidy() {
  low_disk || return 0
  echo "   under 20 GB free: dropping the Go build cache and fuzz/target"
  if command -v go >/dev/null; then go clean -cache; fi
  rm -rf fuzz/target
}
disk start

echo "== lint: fmt, clippy, doc"
make --no-print-directory lint

echo "== unit, tree, simulated-node and netns tests"
# Benchmarks are not run here (they print figures: `make bench`); clippy
# --all-targets in lint keeps them compiling.
cargo test --workspace --lib --bins --tests --examples
cargo test --workspace --doc
disk "tests"; tidy

echo "== Helm chart and generated manifests"
# helm lint with the default and the all-on values, and the chart's crds/,
# RBAC templates and deploy/manifests/ must match their sources in deploy/.
scripts/helm.sh lint deploy/helm/sriov-network-operator
scripts/helm.sh lint deploy/helm/sriov-network-operator --set sriovOperatorConfig.deploy=true \
  --set operator.admissionControllers.enabled=true --set operator.admissionControllers.certificates.certManager.enabled=true
python3 scripts/manifests.py check
disk "helm"; tidy

echo "== fuzz smoke"
# Every fuzz target (fuzz/, docs/testing.md) for about 15 s from its
# committed seed corpus; a crash, hang or OOM fails. Ends with
# "fuzz smoke: N targets, N execs, N failed".
bash scripts/fuzz.sh smoke
disk "fuzz smoke"; tidy

echo "== cluster lane (docs/cluster.md)"
# A real kube-apiserver, kubelet, containerd and Multus; our binaries as
# DaemonSets on a simulated node. Ends with "N passed, N failed"; under CI a
# skipped lane fails.
bash cluster/tests/lane.sh
disk "cluster lane"; tidy

if [ -f hw-tests/run-vm.sh ]; then
  echo "== QEMU hardware lane"
  bash hw-tests/run-vm.sh
fi
echo "== docs: mdbook build and link check"
# The generated reference (docs/reference/) must match the binaries' --help
# and deploy/crds; then the book is built and every link checked offline.
# The binaries whose --help the reference shows: what the tests built, brought
# up to date (cargo test does not build every package's binary; this only
# links what is missing or stale).
cargo build --bins
python3 scripts/gen-reference.py check
make --no-print-directory docs
echo "== all tests passed"
