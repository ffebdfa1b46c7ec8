#!/usr/bin/env bash
# cargo-fuzz targets in fuzz/ (docs/testing.md, "Fuzzing").
#
#   scripts/fuzz.sh build              build every target (instrumented, release, debug assertions)
#   scripts/fuzz.sh smoke [SECONDS]    every target for SECONDS (default 15, env SRIOV_FUZZ_SECONDS)
#                                      from its committed seed corpus; fails on any crash, hang or OOM
#   scripts/fuzz.sh run TARGET [RUNS]  one long run (default 1000000 executions), final stats printed
#   scripts/fuzz.sh list               the targets
#   scripts/fuzz.sh clippy             clippy -D warnings on the fuzz crate (its own workspace,
#                                      checked in fuzz/target/debug: no instrumented rebuild)
#   (SRIOV_FUZZ_NO_BUILD=1: use the binaries already built)
#
# The machine's toolchain is stable: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass
# its -Z flags (sanitizer coverage) to stable rustc. Limits on every run:
# -rss_limit_mb (unbounded allocation), -timeout (hangs), -max_len per target.
# New inputs found go to target/fuzz/<target>/corpus, crashes to
# target/fuzz/<target>/artifacts; the committed corpus in fuzz/corpus is
# only read.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1

SANITIZER=${SRIOV_FUZZ_SANITIZER:-none}
RSS_MB=${SRIOV_FUZZ_RSS_MB:-1024}
TIMEOUT=${SRIOV_FUZZ_TIMEOUT:-10}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
# cargo fuzz builds where cargo would: CARGO_TARGET_DIR when set.
BIN_DIR=${CARGO_TARGET_DIR:-fuzz/target}/$TRIPLE/release
WORK=target/fuzz

# target:max_len
TARGETS=(
  cni_config:8192
  cni_cache:8192
  dp_config:8192
  crd_yaml:8192
  sysfs_attr:1024
  netlink:4096
  uevent:2048
  admission:16384
)

die() { echo "fuzz: $*" >&2; exit 1; }

need_cargo_fuzz() {
  cargo fuzz --version >/dev/null 2>&1 ||
    die "cargo-fuzz is not installed: run scripts/setup.sh (cargo install cargo-fuzz --locked)"
}

build() {
  if [ "${SRIOV_FUZZ_NO_BUILD:-0}" = 1 ]; then return; fi
  need_cargo_fuzz
  echo "fuzz: building ${#TARGETS[@]} targets (sanitizer $SANITIZER)"
  (cd fuzz && cargo fuzz build --sanitizer "$SANITIZER" --debug-assertions)
}

max_len_of() {
  local t
  for t in "${TARGETS[@]}"; do
    [ "${t%%:*}" = "$1" ] && { echo "${t#*:}"; return; }
  done
  die "unknown target $1 (scripts/fuzz.sh list)"
}

# run_target NAME LOG LIMIT_FLAG: runs one target from its seeds; returns libFuzzer's status.
run_target() {
  local name=$1 log=$2 limit=$3 max_len
  max_len=$(max_len_of "$name")
  mkdir -p "$WORK/$name/corpus" "$WORK/$name/artifacts"
  "$BIN_DIR/$name" "$WORK/$name/corpus" "fuzz/corpus/$name" \
    "$limit" -max_len="$max_len" -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" \
    -timeout="$TIMEOUT" -print_final_stats=1 \
    -artifact_prefix="$WORK/$name/artifacts/" >"$log" 2>&1
}

# stats LOG: "execs exec/s cov"
stats() {
  local execs rate cov
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$1" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$1" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$1" | tail -1 | awk '{print $2}')
  echo "${execs:-0} ${rate:-0} ${cov:-0}"
}

smoke() {
  local secs=${1:-${SRIOV_FUZZ_SECONDS:-15}} failed=() total=0 t name log rc execs rate cov
  build
  for t in "${TARGETS[@]}"; do
    name=${t%%:*}
    log=$WORK/$name/smoke.log
    mkdir -p "$WORK/$name"
    rc=0
    run_target "$name" "$log" -max_total_time="$secs" || rc=$?
    read -r execs rate cov < <(stats "$log")
    total=$((total + execs))
    if [ "$rc" = 0 ]; then
      printf 'fuzz: %-11s ok     %9s execs %7s exec/s  cov %s\n' "$name" "$execs" "$rate" "$cov"
    else
      printf 'fuzz: %-11s FAILED (exit %s) after %s execs; log %s\n' "$name" "$rc" "$execs" "$log"
      grep -E '^(==[0-9]+== ERROR|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)' "$log" | head -8 | sed 's/^/    /'
      failed+=("$name")
    fi
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz smoke: ${#TARGETS[@]} targets, $total execs, ${#failed[@]} failed: ${failed[*]}"
    echo "  reproduce: $BIN_DIR/<target> $WORK/<target>/artifacts/<file>"
    exit 1
  fi
  echo "fuzz smoke: ${#TARGETS[@]} targets, $total execs, 0 failed (${secs} s each)"
}

long_run() {
  local name=${1:?target} runs=${2:-1000000} log rc=0 execs rate cov start end
  max_len_of "$name" >/dev/null
  build
  log=$WORK/$name/run.log
  mkdir -p "$WORK/$name"
  start=$(date +%s)
  run_target "$name" "$log" -runs="$runs" || rc=$?
  end=$(date +%s)
  read -r execs rate cov < <(stats "$log")
  echo "fuzz run: $name exit $rc, $execs execs in $((end - start)) s, $rate exec/s, cov $cov, corpus $(ls "$WORK/$name/corpus" | wc -l) new inputs; log $log"
  [ "$rc" = 0 ]
}

case "${1:-}" in
  build) build ;;
  smoke) smoke "${2:-}" ;;
  run) long_run "${2:-}" "${3:-}" ;;
  list) for t in "${TARGETS[@]}"; do echo "${t%%:*}"; done ;;
  clippy) (cd fuzz && cargo clippy --all-targets -- -D warnings) ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
