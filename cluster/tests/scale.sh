#!/usr/bin/env bash
# The operator at scale on the real control plane (issue 14's target;
# docs/cluster.md, "Scale"): `make cluster-scale`, not part of `make test`.
#
# etcd + kube-apiserver (`cluster.sh up --no-node`), kwok managing N fake
# Nodes (default 1,000), one SriovNetworkNodeState per node with a reported
# status (4 E810 PFs) created by this test, SriovOperatorConfig "default"
# selecting them, one policy. The operator runs as a process (its binary,
# a kubeconfig of its own). Measured: the first full render, then one policy
# change (numVfs 4 -> 8) until every matching node state spec carries it,
# and the API requests of that change (the API server's
# apiserver_request_total deltas; the operator's own metrics).
#
# SRIOV_SCALE_NODES=N       number of fake nodes (default 1000)
# SRIOV_CLUSTER_PROFILE     debug (default) or release build of the operator
# SRIOV_CLUSTER_KEEP=1      leave the control plane up at the end
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
export PATH="$HOME/.cargo/bin:/usr/local/go/bin:$PATH"
N=${SRIOV_SCALE_NODES:-1000}
PROFILE=${SRIOV_CLUSTER_PROFILE:-debug}
STATE=${SRIOV_CLUSTER_DIR:-/var/lib/sriov-rs-cluster}
CACHE=${SRIOV_CACHE_DIR:-/var/cache/sriov-rs}
KWOK_VERSION=v0.8.0
KWOK=$CACHE/kwok-$KWOK_VERSION/bin/kwok
NS=sriov-network-operator
OP_METRICS=127.0.0.1:19090
WORK=$(mktemp -d /tmp/sriov-cluster-scale.XXXXXX)
FAILED=0

say() { printf '[scale %s] %s\n' "$(date +%T)" "$*"; }
fail() { say "FAIL: $*"; FAILED=1; }
K() { "$REPO/scripts/cluster.sh" kubectl "$@"; }
now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }

[ "$(id -u)" = 0 ] || { say "needs root"; exit 1; }
command -v go >/dev/null || { say "needs Go (/usr/local/go/bin/go)"; exit 1; }
# One cluster per machine: wait for a running lane or demo (cluster/tests/lane.sh).
exec 9>/run/lock/sriov-rs-cluster.lock
flock -n 9 || { say "waiting for /run/lock/sriov-rs-cluster.lock"; flock -w 3600 9 || exit 1; }

cleanup() {
  if [ "${SRIOV_CLUSTER_KEEP:-0}" = 1 ]; then say "SRIOV_CLUSTER_KEEP=1: left up"; return; fi
  "$REPO/scripts/cluster.sh" down >"$WORK/down.log" 2>&1 || { say "down failed"; cat "$WORK/down.log"; }
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until SECONDS WHAT CMD…
wait_until() {
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $end ] && { fail "timed out after ${t}s: $what"; return 1; }
    sleep 0.5
  done
}

# ------------------------------------------------------------ binaries ---
if [ ! -x "$KWOK" ]; then
  say "building kwok $KWOK_VERSION from its Go module (cluster/tools/kwok; once per machine)"
  mkdir -p "$(dirname "$KWOK")"
  (cd cluster/tools/kwok && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$KWOK.tmp" sigs.k8s.io/kwok/cmd/kwok) \
    && mv "$KWOK.tmp" "$KWOK" || { say "kwok build failed"; exit 1; }
fi
flag=(); [ "$PROFILE" = release ] && flag=(--release)
cargo build "${flag[@]}" -q -p sriov-network-operator --bins || { say "cargo build failed"; exit 1; }
OPERATOR=${CARGO_TARGET_DIR:-$REPO/target}/$PROFILE/sriov-network-operator

# ------------------------------------------------------------ cluster ---
"$REPO/scripts/cluster.sh" down >/dev/null 2>&1 || true
"$REPO/scripts/cluster.sh" up --no-node | tail -1 || { say "up failed"; exit 1; }
PKI=$STATE/pki
K apply -f deploy/crds/ -f cluster/manifests/network-attachment-definition-crd.yaml >/dev/null
K wait --for condition=Established --timeout=60s -f deploy/crds/ >/dev/null
K create namespace "$NS" >/dev/null

# The operator's own identity (its requests are its own in the audit of
# the API server), bound to its ClusterRole from deploy/operator/rbac.yaml
# when that exists, else cluster-admin.
(
  cd "$PKI"
  openssl ecparam -name prime256v1 -genkey -noout -out operator.key 2>/dev/null
  openssl req -new -key operator.key -subj "/CN=sriov-rs-scale:operator" -out operator.csr 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >operator.ext
  openssl x509 -req -in operator.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -sha256 \
    -extfile operator.ext -out operator.crt 2>/dev/null
)
sed -e "s#client-certificate: .*#client-certificate: $PKI/operator.crt#" \
    -e "s#client-key: .*#client-key: $PKI/operator.key#" "$STATE/kubeconfig" >"$PKI/operator.kubeconfig"
K create clusterrolebinding sriov-rs-scale-operator --clusterrole=cluster-admin --user=sriov-rs-scale:operator >/dev/null

# kwok: keeps the fake nodes Ready (status, leases); only nodes annotated for it.
setsid "$KWOK" --kubeconfig "$STATE/kubeconfig" --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-ip=10.245.0.1 --cidr=10.245.0.0/16 --server-address=127.0.0.1:10247 \
  >"$STATE/logs/kwok.log" 2>&1 </dev/null &
echo $! >"$STATE/pids/kwok.pid"

# --------------------------------------------------------------- objects ---
say "creating $N nodes and $N node states with a reported status"
python3 - "$N" "$WORK" "$NS" <<'PYEOF'
import json, sys
n, work, ns = int(sys.argv[1]), sys.argv[2], sys.argv[3]
nodes, states, status = [], [], []
for i in range(n):
    name = f"kwok-node-{i:04d}"
    nodes.append({"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": name,
        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        "labels": {"type": "kwok", "kubernetes.io/os": "linux", "kubernetes.io/hostname": name,
                   "sriov-rs.io/scale": "true"}},
        "spec": {"taints": [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]}})
    meta = {"name": name, "namespace": ns}
    states.append({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
                   "metadata": meta, "spec": {}})
    ifaces = [{"name": f"ens{b}f{f}", "pciAddress": f"0000:{0x3b + b:02x}:00.{f}", "vendor": "8086",
               "deviceID": "1592", "driver": "ice", "mtu": 1500, "totalvfs": 64, "linkType": "ETH",
               "mac": f"b4:96:91:{i >> 8:02x}:{i & 0xff:02x}:{b * 2 + f:02x}", "linkSpeed": "100000 Mb/s"}
              for b in range(2) for f in range(2)]
    status.append({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
                   "metadata": meta, "status": {"interfaces": ifaces, "syncStatus": "Succeeded"}})
for fname, items in (("nodes", nodes), ("states", states), ("status", status)):
    with open(f"{work}/{fname}.json", "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
PYEOF
s=$(now_ms)
K create -f "$WORK/nodes.json" >/dev/null || fail "creating nodes"
K create -f "$WORK/states.json" >/dev/null || fail "creating node states"
K replace --subresource=status -f "$WORK/status.json" >/dev/null || fail "writing node state statuses"
say "objects created in $(( ($(now_ms) - s) / 1000 )) s"
ready_nodes() { K get nodes --no-headers 2>/dev/null | grep -c ' Ready ' ; }
all_ready() { [ "$(ready_nodes)" = "$N" ]; }
# kwok v0.8 needs its stage configs to report nodes Ready; not required by
# the operator (it selects by labels): reported, not a failure.
end=$((SECONDS + 60)); until all_ready || [ $SECONDS -ge $end ]; do sleep 2; done
say "nodes Ready (kwok): $(ready_nodes) of $N"

K apply -f - >/dev/null <<EOF
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovOperatorConfig
metadata: {name: default, namespace: $NS}
spec:
  configDaemonNodeSelector: {sriov-rs.io/scale: "true"}
  disableDrain: true
  logLevel: 0
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: scale, namespace: $NS}
spec:
  resourceName: scale_netdevice
  nodeSelector: {sriov-rs.io/scale: "true"}
  numVfs: 4
  nicSelector: {vendor: "8086", pfNames: ["ens0f0", "ens1f0"]}
  deviceType: netdevice
EOF

# Node states whose spec has NUMVFS on the policy's PFs.
count_at() {
  K -n "$NS" get sriovnetworknodestates -o json \
    | jq --argjson v "$1" '[.items[] | select([.spec.interfaces[]? | select(.numVfs == $v)] | length == 2)] | length'
}
metric() { # metric FILE NAME-REGEX: sum of the matching samples
  grep -E "^$2" "$1" | awk '{s += $NF} END {printf "%d", s}'
}

# -------------------------------------------------------------- operator ---
s=$(now_ms)
setsid env KUBECONFIG="$PKI/operator.kubeconfig" NAMESPACE="$NS" RESOURCE_PREFIX=openshift.io SRIOV_LOG=info \
  "$OPERATOR" run --no-leader-elect --metrics-addr "$OP_METRICS" >"$STATE/logs/operator.log" 2>&1 </dev/null &
echo $! >"$STATE/pids/operator.pid"
wait_until 60 "operator /readyz" curl -fsS "http://$OP_METRICS/readyz"
initial() { [ "$(count_at 4)" = "$N" ]; }
wait_until 300 "every node state spec rendered (numVfs 4)" initial
say "TIME operator start to $N node state specs rendered = $(( ($(now_ms) - s) )) ms"
sleep 3  # let the first pass's status writes settle

# ------------------------------------------------------ the measured change ---
K get --raw /metrics >"$WORK/api.before"
curl -fsS "http://$OP_METRICS/metrics" >"$WORK/op.before"
# Every node state spec change as it arrives (generation bumps).
mkfifo "$WORK/watch.fifo"
( while read -r name gen; do echo "${EPOCHREALTIME/./} $name $gen"; done <"$WORK/watch.fifo" >"$WORK/watch" ) &
stamper=$!
"$REPO/scripts/cluster.sh" kubectl -n "$NS" get sriovnetworknodestates --watch-only \
  -o jsonpath='{.metadata.name} {.metadata.generation}{"\n"}' >"$WORK/watch.fifo" 2>/dev/null &
watcher=$!
sleep 2
K -n "$NS" patch sriovnetworknodepolicy scale --type merge -p '{"spec":{"numVfs":8}}' -v=6 >"$WORK/patch.log" 2>&1 \
  || fail "policy patch"
line=$(grep -m1 -E 'verb="PATCH" url="[^"]*/sriovnetworknodepolicies/scale[^"]*" status="200' "$WORK/patch.log")
t0=$(date -d "$(date +%F) $(awk '{print $2}' <<<"$line")" +%s%3N)
done_() { [ "$(count_at 8)" = "$N" ]; }
wait_until 120 "every node state spec at numVfs 8" done_
sleep 2
kill "$watcher" 2>/dev/null; wait "$watcher" "$stamper" 2>/dev/null
K get --raw /metrics >"$WORK/api.after"
curl -fsS "http://$OP_METRICS/metrics" >"$WORK/op.after"

changed=$(awk '{print $2}' "$WORK/watch" | sort -u | wc -l)
t_first=$(head -1 "$WORK/watch" | awk '{print substr($1, 1, length($1) - 3)}')
t_last=$(tail -1 "$WORK/watch" | awk '{print substr($1, 1, length($1) - 3)}')
say "node states changed: $changed of $N"
[ "$changed" = "$N" ] || fail "$changed node states changed, want $N"
say "TIME policy patch to first node state spec = $((t_first - t0)) ms"
say "TIME policy patch to every ($N) node state spec = $((t_last - t0)) ms (target < 10000)"
[ $((t_last - t0)) -lt 10000 ] || fail "policy change took $((t_last - t0)) ms to reach every node state (target < 10 s)"

say "API requests of the change (kube-apiserver apiserver_request_total deltas, nodes/leases (kwok) left out):"
for f in api.before api.after; do
  grep -E '^apiserver_request_total\{' "$WORK/$f" \
    | awk '{r = v = ""; if (match($0, /resource="[^"]*"/)) r = substr($0, RSTART + 10, RLENGTH - 11);
            if (match($0, /verb="[^"]*"/)) v = substr($0, RSTART + 6, RLENGTH - 7); print r, v, $NF}' \
    | grep -vE '^(nodes|leases|events) ' | awk '{s[$1" "$2] += $3} END {for (k in s) print k, s[k]}' | sort >"$WORK/$f.sum"
done
join -a2 -e 0 -o 0,1.2,2.2 <(sed 's/ /:/' "$WORK/api.before.sum" | sort) <(sed 's/ /:/' "$WORK/api.after.sum" | sort) \
  | awk '{d = $3 - $2; if (d > 0) {printf "    %-45s %d\n", $1, d; t += d}} END {printf "    %-45s %d\n", "total", t}' | tee "$WORK/requests"
say "the operator's metrics (before -> after):"
for m in $(grep -oE '^sriov[a-z_]*' "$WORK/op.after" | sort -u); do
  echo "    $m $(metric "$WORK/op.before" "$m") -> $(metric "$WORK/op.after" "$m")"
done
rss=$(awk '/VmRSS/ {print $2}' "/proc/$(cat "$STATE/pids/operator.pid")/status" 2>/dev/null)
say "operator RSS with $N node states cached: $((rss / 1024)) MiB"
if [ $FAILED = 0 ]; then say "scale: passed"; else say "scale: FAILED"; tail -20 "$STATE/logs/operator.log"; fi
exit $FAILED
