#!/usr/bin/env bash
# The simulated-node demo without Kubernetes: a simulated `mixed` node
# (FUSE), the config daemon's standalone apply with deploy/examples/
# policies, the node's PFs and VFs before and after, and the device plugin
# config it wrote. Without root + FUSE it falls back to a static tree and a
# dry run. `make demo` (scripts/demo.sh) runs it where the local cluster
# cannot run (scripts/demo-cluster.sh), or with SRIOV_DEMO_SIM=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release}
for b in sriov-sim sriov-config-daemon; do
    [[ -x "$bin/$b" ]] || { echo "demo: $bin/$b is missing; run 'make build' first" >&2; exit 1; }
done
policies=deploy/examples/sriovnetworknodepolicies.yaml
labels=feature.node.kubernetes.io/network-sriov.capable=true
tmp=$(mktemp -d /tmp/sriov-demo.XXXXXX)
root=$tmp/node
mkdir -p "$root"
sim_pid=
cleanup() {
    if [[ -n "$sim_pid" ]] && kill -0 "$sim_pid" 2>/dev/null; then
        kill -TERM "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
    # The simulator unmounts on SIGTERM; make sure nothing is left.
    for m in "$root/sys" "$root/dev/vfio"; do
        if mountpoint -q "$m" 2>/dev/null; then fusermount3 -u "$m" 2>/dev/null || umount -l "$m" || true; fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

daemon() { "$bin/sriov-config-daemon" "$@" --host-root "$root"; }
section() { printf '\n== %s\n' "$*"; }

mode=fuse
why=
if [[ -n "${SRIOV_DEMO_NO_FUSE:-}" ]]; then why="SRIOV_DEMO_NO_FUSE is set"
elif [[ $(id -u) -ne 0 ]]; then why="not running as root"
elif [[ ! -e /dev/fuse ]]; then why="/dev/fuse is missing"
elif ! command -v fusermount3 >/dev/null; then why="fusermount3 is not installed (apt-get install fuse3)"
fi
if [[ -z "$why" ]]; then
    "$bin/sriov-sim" mount "$root" --node mixed >"$tmp/sim.out" 2>"$tmp/sim.err" &
    sim_pid=$!
    for _ in $(seq 100); do
        grep -q '^ready' "$tmp/sim.out" 2>/dev/null && break
        kill -0 "$sim_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^ready' "$tmp/sim.out" 2>/dev/null; then
        why="sriov-sim mount failed: $(tail -n 3 "$tmp/sim.err" | tr '\n' ' ')"
        kill -TERM "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; sim_pid=
        rm -rf "$root"; mkdir -p "$root"
    fi
fi
if [[ -n "$why" ]]; then
    mode=static
    echo "NOTE: FUSE is unavailable ($why)."
    echo "      Falling back to a static sysfs tree (sriov-sim tree) and a --dry-run: nothing is applied."
    "$bin/sriov-sim" tree "$root" --node mixed
fi

section "simulated node 'mixed' at $root ($mode): PFs and VFs before"
daemon show

section "the plan for $policies (sriov-config-daemon apply --dry-run)"
daemon apply -p "$policies" --node-labels "$labels" --state-dir "$tmp/state" --dry-run

if [[ $mode == static ]]; then
    section "dry run only (static tree): the node is unchanged"
    exit 0
fi

section "apply"
start=$(date +%s.%N)
status=0
daemon apply -p "$policies" --node-labels "$labels" --node-name demo-node \
    --state-dir "$tmp/state" --device-plugin-config "$tmp/device-plugin/config.json" \
    >"$tmp/state.yaml" || status=$?
end=$(date +%s.%N)
printf 'exit status %d in %.2f s; node state: %s\n' "$status" "$(echo "$end - $start" | bc)" \
    "$(grep -E '^\s*syncStatus:' "$tmp/state.yaml" | awk '{print $2}')"
grep -E '^\s*lastSyncError:' "$tmp/state.yaml" || true

section "PFs and VFs after"
daemon show

section "device plugin config written to device-plugin/config.json"
cat "$tmp/device-plugin/config.json"; echo

section "SriovNetworkNodeState spec (first lines of the YAML printed by apply)"
sed -n '/^spec:/,/^status:/p' "$tmp/state.yaml" | head -n 40

section "second run (idempotent): the plan"
daemon apply -p "$policies" --node-labels "$labels" --state-dir "$tmp/state" --dry-run
exit "$status"
