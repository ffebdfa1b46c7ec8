#!/usr/bin/env bash
# Runs the whole test suite. `make test` calls it after `make setup`.
# Under CI (CI=true) every lane is required: a test that would skip for lack
# of root, FUSE, network namespaces or QEMU fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if [ "${CI:-}" = true ] && [ -z "${SRIOV_REQUIRE_LANES:-}" ]; then
  export SRIOV_REQUIRE_LANES=all
fi

echo "== lint: fmt, clippy, doc"
make --no-print-directory lint

echo "== unit, tree, simulated-node and netns tests"
# Benchmarks are not run here (they print figures: `make bench`); clippy
# --all-targets in lint keeps them compiling.
cargo test --workspace --lib --bins --tests --examples
cargo test --workspace --doc

if [ -f hw-tests/run-vm.sh ]; then
  echo "== QEMU hardware lane"
  bash hw-tests/run-vm.sh
fi
echo "== all tests passed"
