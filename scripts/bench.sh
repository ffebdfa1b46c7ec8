#!/usr/bin/env bash
# Runs every benchmark; each prints its figures. Targets are in docs/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo bench --workspace
for b in bench/*.sh; do
  [ -e "$b" ] || continue
  echo "== $b"
  bash "$b"
done
