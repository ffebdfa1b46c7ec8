#!/usr/bin/env bash
# The Kubernetes demo of `make demo` (scripts/demo.sh runs it where the local
# cluster can run; docs/quickstart.md walks through its output). As root:
#
#   1  Kubernetes binaries, built from their Go modules (scripts/cluster.sh
#      build; cached under /var/cache/sriov-rs, the first time ~15 min)
#   2  the image ghcr.io/sriov-rs/sriov-rs:<version> (images/build.sh)
#   3  a single-node Kubernetes on this machine (scripts/cluster.sh up)
#   4  the simulated SR-IOV node (sriov-sim mount cluster/demo/node.yaml --veth)
#   5  the Helm chart (cluster/demo/values.yaml): the operator deploys the
#      config daemon and the CNI installer
#   6  the node labelled a worker: its config daemon reports its NICs
#   7  a SriovNetworkNodePolicy (cluster/demo/policy.yaml): the node state
#      reaches Succeeded with 4 VFs
#   8  the device plugin: the node advertises openshift.io/intel_netdevice
#   9  a SriovNetwork (cluster/demo/network.yaml): the NAD default/sriov-net
#   10 a pod with a VF (cluster/demo/pod.yaml): the VF's netdev is its net1
#   11 the pod deleted: the VF is back on the host as it was
#
# then tears everything down (scripts/cluster.sh down), also on failure or
# Ctrl-C, and prints each step's time.
#
#   DEMO_KEEP=1   on success, leave the cluster and the pod up and print
#                 KUBECONFIG and kubectl commands to explore
#   SRIOV_DEMO_PROFILE=debug   the debug build in the image (iterating on the
#                 demo without a release build; default release)
#
# Exit status 3: the cluster could not start on this machine (said why,
# removed what it started); scripts/demo.sh then runs the simulated-node demo.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
export PATH="$HOME/.cargo/bin:/usr/local/go/bin:$PATH"

STATE=${SRIOV_CLUSTER_DIR:-/var/lib/sriov-rs-cluster}
CACHE=${SRIOV_CACHE_DIR:-/var/cache/sriov-rs}
SIM=$STATE/sim
NODE=${SRIOV_CLUSTER_NODE:-sriov-rs-node}
NS=sriov-network-operator
RES=openshift.io/intel_netdevice
PROFILE=${SRIOV_DEMO_PROFILE:-release}
BIN=${CARGO_TARGET_DIR:-target}/$PROFILE
KEEP=${DEMO_KEEP:-0}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
IMAGE=ghcr.io/sriov-rs/sriov-rs:$VERSION
WORK=$(mktemp -d /tmp/sriov-demo.XXXXXX)
export KUBECONFIG=$STATE/kubeconfig

# What the user would type: `kubectl …` and `helm …` against this cluster.
kubectl() { "$REPO/scripts/cluster.sh" kubectl "$@"; }
helm() { "$REPO/scripts/helm.sh" "$@"; }

if [ -t 1 ]; then B=$'\033[1m' G=$'\033[32m' R=$'\033[31m' N=$'\033[0m'; else B='' G='' R='' N=''; fi
T0=$EPOCHREALTIME
STEP=0 STEPS=11 STEP_T=$EPOCHREALTIME
NAMES=() TIMES=() RESULTS=()
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
# step NAME DETAIL: a numbered step; the summary lists NAME and its time.
step() { STEP=$((STEP + 1)); STEP_T=$EPOCHREALTIME; NAMES+=("$1"); printf '\n%s== [%d/%d] %s%s: %s\n' "$B" "$STEP" "$STEPS" "$1" "$N" "$2"; }
# result WHAT: the step's outcome, with its time.
result() {
  local dt; dt=$(since "$STEP_T")
  TIMES+=("$dt"); RESULTS+=("$*")
  printf '   %s-> %s%s (%s s)\n' "$G" "$*" "$N" "$dt"
}
say() { printf '   %s\n' "$*"; }
indent() { sed -u 's/^/     /'; }
# table: tab-separated columns, aligned (coreutils only).
table() { awk -F'\t' '{ for (i = 1; i <= NF; i++) { if (length($i) > w[i]) w[i] = length($i); c[NR, i] = $i } n = NR; if (NF > m) m = NF }
  END { for (r = 1; r <= n; r++) { l = ""; for (i = 1; i <= m; i++) l = l sprintf("%-" (w[i] + 2) "s", c[r, i]); sub(/ +$/, "", l); print l } }'; }
# run CMD…: print the command as typed (quoted as a shell needs it), run it,
# its output indented.
quoted() { local a out=(); for a in "$@"; do if [[ $a =~ ^[A-Za-z0-9_./:=,@+%-]+$ ]]; then out+=("$a"); else out+=("'${a//\'/\'\\\'\'}'"); fi; done; echo "${out[*]}"; }
run() { printf '   $ %s\n' "$(quoted "$@")"; "$@" 2>&1 | indent; return "${PIPESTATUS[0]}"; }
# wait_until SECONDS WHAT CMD…: poll CMD every 0.2 s.
wait_until() {
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || { printf '   %stimed out after %ss waiting for %s%s\n' "$R" "$t" "$what" "$N"; return 1; }
    sleep 0.2
  done
}

# ---------------------------------------------------------------- cleanup ---

UP=0 OK=0 CANNOT=''
BG=()
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM ERR
  for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ $UP = 1 ]; then
    if [ $OK = 1 ] && [ "$KEEP" = 1 ]; then
      keep_message
    else
      if [ $OK != 1 ] && [ -z "$CANNOT" ]; then
        printf '\n%sThe demo failed (exit %s).%s What the cluster shows:\n' "$R" "$rc" "$N"
        debug_dump
      fi
      STEPS=$((STEP + 1))
      step "Tear down" "every process, mount, veth and iptables rule of the cluster (scripts/cluster.sh down)"
      # The operator first: it would recreate the DaemonSets that `down`
      # deletes (their pods go first, so CNI DEL gives VFs back). It exits on
      # SIGTERM at once; the short grace period only bounds an image built
      # before it did.
      if [ -z "$CANNOT" ] && kubectl -n "$NS" get deploy sriov-network-operator >/dev/null 2>&1; then
        run kubectl -n "$NS" scale deploy/sriov-network-operator --replicas=0 || true
        kubectl -n "$NS" delete pod -l name=sriov-network-operator --grace-period=1 --wait=true --timeout=30s >/dev/null 2>&1 || true
      fi
      say "$ scripts/cluster.sh down"
      if ! bash scripts/cluster.sh down >"$STATE/logs/down.log" 2>&1; then
        tail -20 "$STATE/logs/down.log" | indent
      fi
      result "nothing of the demo is left on this machine (logs kept in $STATE/logs until the next up)"
    fi
  fi
  summary
  rm -rf "$WORK"
  [ -n "$CANNOT" ] && exit 3
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'printf "   %sfailed at line %s: %s%s\n" "$R" "$LINENO" "$BASH_COMMAND" "$N"' ERR

# cannot REASON: the cluster cannot run here; demo.sh falls back.
cannot() { CANNOT=$*; printf '   %sthe cluster cannot run on this machine: %s%s\n' "$R" "$*" "$N"; exit 3; }

summary() {
  [ ${#TIMES[@]} -gt 0 ] || return 0
  printf '\n%s== Summary%s\n' "$B" "$N"
  local i
  for i in "${!TIMES[@]}"; do
    printf '   %6s s  %s\n' "${TIMES[$i]}" "${NAMES[$i]}"
  done
  printf '   %6s s  total\n' "$(since "$T0")"
}

debug_dump() {
  kubectl get pods -A -o wide 2>&1 | indent || true
  kubectl -n "$NS" get sriovnetworknodestates -o wide 2>&1 | indent || true
  kubectl get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -15 | indent || true
  local f
  for f in /var/log/pods/*/*/*.log; do [ -f "$f" ] && { echo "     --- $f"; tail -8 "$f" | indent; }; done 2>/dev/null || true
  say "logs: $STATE/logs/ (kubelet.log, containerd.log, multus.log, sriov-cni.log, sriov-sim.log…)"
}

keep_message() {
  printf '\n%s== The cluster stays up (DEMO_KEEP=1)%s\n' "$B" "$N"
  cat <<EOF
   export KUBECONFIG=$KUBECONFIG
   alias kubectl='$REPO/scripts/cluster.sh kubectl'   # the cluster's own kubectl
   kubectl get pods -A -o wide
   kubectl -n $NS get sriovnetworknodestates $NODE -o yaml
   kubectl -n $NS get sriovnetworknodepolicies,sriovnetworks,sriovoperatorconfigs
   kubectl get node $NODE -o jsonpath='{.status.allocatable}'
   kubectl get network-attachment-definitions -o yaml
   kubectl exec sriov-pod -- ip addr show net1
   kubectl -n $NS logs ds/sriov-network-config-daemon
   kubectl -n $NS patch sriovnetworknodepolicy intel-netdevice --type merge -p '{"spec":{"numVfs":2}}'
   cat $SIM/sys/bus/pci/devices/0000:3b:00.0/sriov_numvfs   # the simulated node's sysfs
   ls $STATE/logs/                                   # every component's log
   make cluster-down                                            # remove it all
EOF
  say "(the next cluster lane run or \`make demo\` takes this cluster down first)"
}

# ------------------------------------------------------------------ lock ---

# One cluster per machine: wait for the cluster lane or another demo.
mkdir -p /run/lock
exec 9>/run/lock/sriov-rs-cluster.lock
if ! flock -n 9; then
  say "another user of the local cluster (the cluster lane, a scale run, a demo) holds"
  say "/run/lock/sriov-rs-cluster.lock; waiting for it (up to 60 min)"
  flock -w 3600 9 || { say "gave up waiting for the cluster lock"; exit 1; }
  say "got the lock after $(since "$T0") s"
  T0=$EPOCHREALTIME
fi

printf '%ssriov-rs on Kubernetes: the operator, config daemon, device plugin and CNI on a\n' "$B"
printf 'single-node cluster on this machine whose node is a simulated SR-IOV node.%s\n' "$N"

# ------------------------------------------------------------------ steps ---

step "Kubernetes binaries" "etcd, kube-apiserver, kubelet…, Multus and Helm, built from their Go modules (scripts/cluster.sh build)"
if compgen -G "$CACHE/k8s-*/bin/kubelet" >/dev/null; then
  say "cached under $CACHE: $(cd "$CACHE" && ls -d k8s-* etcd-* multus-* helm-* 2>/dev/null | tr '\n' ' ')"
else
  say "not built yet on this machine: building them once (about 15 min on 2 cores), cached under $CACHE"
fi
bash scripts/cluster.sh build 2>&1 | indent || cannot "building Kubernetes from its Go modules failed (see above)"
bash scripts/helm.sh --path >/dev/null || cannot "building Helm from its Go module failed (see above)"
result "$(basename "$(ls -d "$CACHE"/k8s-* | head -1)"), $(basename "$(ls -d "$CACHE"/etcd-* | head -1)"), $(basename "$(ls -d "$CACHE"/multus-* | head -1)"), helm $(helm version --short 2>/dev/null)"

step "Image" "$IMAGE from the $PROFILE binaries, plus the pause and busybox images (images/build.sh)"
for b in sriov-sim sriov-network-operator sriov-config-daemon sriov-device-plugin sriov; do
  [ -x "$BIN/$b" ] || { say "$BIN/$b is missing: run 'make build' (or 'make demo', which builds first)"; exit 1; }
done
# images/build.sh rebuilds an image older than its inputs; a tar the
# cluster lane packed from its debug build can be newer than our release
# binaries, so one of another profile (its label) goes first.
image_profile() {
  local t=$CACHE/images/sriov-rs.tar cfg
  [ -f "$t" ] || return 0
  cfg=$(tar -xOf "$t" manifest.json | jq -r '.[0].Config') && tar -xOf "$t" "$cfg" | jq -r '.config.Labels["io.sriov-rs.profile"] // ""'
}
if [ -f "$CACHE/images/sriov-rs.tar" ] && [ "$(image_profile)" != "$PROFILE" ]; then
  say "the cached image holds the $(image_profile) build: packing the $PROFILE build"
  rm -f "$CACHE/images/sriov-rs.tar"
fi
bash images/build.sh --profile "$PROFILE" all 2>&1 | indent
run ls -lh "$CACHE/images/"
result "$IMAGE: $(du -h "$CACHE/images/sriov-rs.tar" | cut -f1) docker-archive, imported into containerd at 'up'"

step "Kubernetes up" "etcd, API server, controller manager, scheduler, containerd, kubelet, Multus (scripts/cluster.sh up)"
if bash scripts/cluster.sh status 2>/dev/null | grep -q '^kube-apiserver: running'; then
  say "a cluster from an earlier run is up: taking it down first"
fi
bash scripts/cluster.sh down >"$WORK/down0.log" 2>&1 || true
UP=1
# The cluster's processes must not inherit the lock (fd 9): with DEMO_KEEP=1
# they outlive this script, and the next lane run takes them down instead of
# waiting for them.
if ! bash scripts/cluster.sh up 9>&- 2>&1 | tee "$WORK/up.out" | indent; then
  cannot "scripts/cluster.sh up failed: $(grep -E 'error|failed' "$WORK/up.out" | tail -2 | tr '\n' ' ')(logs in $STATE/logs)"
fi
tail -1 "$WORK/up.out" | grep -q '^KUBECONFIG=' || cannot "scripts/cluster.sh up did not finish"
run kubectl get nodes -o wide
result "node $NODE Ready: Kubernetes $(kubectl version -o json 2>/dev/null | jq -r .serverVersion.gitVersion)"

step "Simulated SR-IOV node" "an E810 with two ports and no VFs yet, through FUSE (sriov-sim mount cluster/demo/node.yaml --veth)"
mkdir -p "$SIM"
# Started as a process of the cluster (its pid file), so `cluster.sh down` stops it.
setsid "$BIN/sriov-sim" mount "$SIM" --node cluster/demo/node.yaml --veth \
  >"$STATE/logs/sriov-sim.out" 2>"$STATE/logs/sriov-sim.log" </dev/null 9>&- &
echo $! >"$STATE/pids/sriov-sim.pid"
wait_until 30 "sriov-sim ready" grep -qx ready "$STATE/logs/sriov-sim.out" || { tail -5 "$STATE/logs/sriov-sim.log" | indent; exit 1; }
# Mount points the DaemonSets nest under the node's root (/host in their pods).
mkdir -p "$SIM/var/lib/kubelet/device-plugins" "$SIM/var/run/k8s.cni.cncf.io/devinfo/dp" "$STATE/config-daemon"
say "the node's root for the DaemonSets (their /host): $SIM"
printf '     %-14s %-10s %-7s %-10s %s\n' "PCI address" "vendor" "device" "driver" "sriov_totalvfs / numvfs"
for d in "$SIM"/sys/bus/pci/devices/*; do
  printf '     %-14s %-10s %-7s %-10s %s\n' "$(basename "$d")" "$(cat "$d/vendor")" "$(cat "$d/device")" \
    "$(basename "$(readlink "$d/driver")")" "$(cat "$d/sriov_totalvfs" 2>/dev/null || echo -) / $(cat "$d/sriov_numvfs" 2>/dev/null || echo -)"
done
result "$(ls "$SIM/sys/bus/pci/devices" | wc -l) PCI functions, $(cat "$SIM"/sys/bus/pci/devices/*/sriov_totalvfs 2>/dev/null | awk '{ s += $1 } END { print s + 0 }') VFs possible, none enabled"

step "Helm chart" "CRDs, RBAC and the operator of deploy/helm/sriov-network-operator; the operator deploys the DaemonSets (helm install)"
set_args=()
if [ "$STATE" != /var/lib/sriov-rs-cluster ]; then
  set_args+=(--set-string "operator.cniBinPath=$STATE/cni/bin"
    --set-string "operator.extraEnv.SRIOV_HOST_ROOT_PATH=$SIM"
    --set-string "operator.extraEnv.SRIOV_CONFIG_DAEMON_STATE_PATH=$STATE/config-daemon")
fi
chart_image=$(sed -n 's/^  operator: *//p' deploy/helm/sriov-network-operator/values.yaml | head -1)
if [ "$chart_image" != "$IMAGE" ]; then
  set_args+=(--set-string "images.operator=$IMAGE,images.sriovConfigDaemon=$IMAGE,images.sriovCni=$IMAGE,images.sriovDevicePlugin=$IMAGE")
fi
run helm install sriov-network-operator deploy/helm/sriov-network-operator \
  --namespace "$NS" --create-namespace -f cluster/demo/values.yaml "${set_args[@]}" --wait --timeout 2m
wait_until 60 "the operator's DaemonSet sriov-network-config-daemon" kubectl -n "$NS" get ds sriov-network-config-daemon
wait_until 60 "the operator's DaemonSet sriov-cni" kubectl -n "$NS" get ds sriov-cni
cfg_ready() { [ "$(kubectl -n "$NS" get sriovoperatorconfig default -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
wait_until 60 "SriovOperatorConfig default Ready" cfg_ready
run kubectl -n "$NS" get deploy,ds
result "operator running; it created the DaemonSets sriov-network-config-daemon and sriov-cni from SriovOperatorConfig default"

step "Node selected" "labelled a worker, the node gets the config daemon, which reports its NICs (kubectl label node)"
say "the config daemon runs on Linux workers (upstream's default configDaemonNodeSelector), as on any cluster:"
run kubectl label node "$NODE" node-role.kubernetes.io/worker= --overwrite
run kubectl -n "$NS" rollout status ds/sriov-network-config-daemon --timeout=120s
run kubectl -n "$NS" rollout status ds/sriov-cni --timeout=120s
state_json() { kubectl -n "$NS" get sriovnetworknodestate "$NODE" -o json; }
nics_reported() { [ "$(state_json | jq '.status.interfaces | length')" -ge 2 ]; }
wait_until 60 "SriovNetworkNodeState $NODE with the node's NICs" nics_reported
run kubectl -n "$NS" get sriovnetworknodestates
say "its status, written by the config daemon (status.interfaces):"
state_json | jq -r '.status.interfaces[] | "\(.name)\t\(.pciAddress)\t\(.vendor):\(.deviceID)\t\(.driver)\ttotalvfs \(.totalvfs // 0)\tnumVfs \(.numVfs // 0)"' | table | indent
run ls -l "$STATE/cni/bin/sriov"
result "node state $NODE: $(state_json | jq '.status.interfaces | length') NICs, syncStatus $(state_json | jq -r .status.syncStatus); the CNI installer put sriov in the node's CNI bin dir"

step "Policy" "a SriovNetworkNodePolicy for 4 netdevice VFs on demo0 (kubectl apply -f cluster/demo/policy.yaml)"
sed -n '/^apiVersion/,$p' cluster/demo/policy.yaml | indent
gen0=$(kubectl -n "$NS" get sriovnetworknodestate "$NODE" -o jsonpath='{.metadata.generation}')
# Every change of the node state as it arrives, time-stamped (two processes
# of ours, killed by pid).
mkfifo "$WORK/state.fifo"
( while read -r line; do echo "$EPOCHREALTIME $line"; done <"$WORK/state.fifo" >"$WORK/state.watch" ) &
BG+=($!); stamper=$!
"$REPO/scripts/cluster.sh" kubectl -n "$NS" get sriovnetworknodestate "$NODE" --watch \
  -o jsonpath='{.metadata.generation} {.status.syncStatus} {.status.conditions[?(@.type=="Ready")].observedGeneration}{"\n"}' \
  >"$WORK/state.fifo" 2>/dev/null &
BG+=($!); watcher=$!
sleep 0.5
t_apply=$EPOCHREALTIME
run kubectl apply -f cluster/demo/policy.yaml
synced() {
  local j; j=$(state_json)
  [ "$(jq -r .status.syncStatus <<<"$j")" = Succeeded ] &&
  [ "$(jq -r .metadata.generation <<<"$j")" -gt "$gen0" ] &&
  [ "$(jq -r '.status.conditions[]? | select(.type=="Ready") | .observedGeneration' <<<"$j")" = "$(jq -r .metadata.generation <<<"$j")" ]
}
wait_until 120 "syncStatus Succeeded for the policy" synced
sleep 0.3; kill "$watcher" 2>/dev/null || true; wait "$watcher" "$stamper" 2>/dev/null || true
say "the node state as it changed (watch; time after the apply):"
awk -v t="$t_apply" -v g="$gen0" '$2 > g { printf "+%.3f s  generation %s  syncStatus %-10s  observedGeneration %s\n", $1 - t, $2, ($3 == "" ? "-" : $3), $4 }' "$WORK/state.watch" | indent
say "the VFs in its status:"
state_json | jq -r '.status.interfaces[] | select(.name=="demo0") | .Vfs[]? | "\(.name)\t\(.pciAddress)\t\(.driver)\tmac \(.mac)\tmtu \(.mtu)"' | table | indent
run cat "$SIM/sys/bus/pci/devices/0000:3b:00.0/sriov_numvfs"
say "$ ip -br link show type veth   # the VF netdevs on the host (veths on the simulated node)"
ip -br link show type veth | grep -E '^demo0v' | indent || true
result "node state Succeeded $(awk -v t="$t_apply" -v g="$gen0" '$2 > g && $3 == "Succeeded" && $4 == $2 { printf "%.2f s", $1 - t; exit }' "$WORK/state.watch") after the apply; demo0 has $(cat "$SIM/sys/bus/pci/devices/0000:3b:00.0/sriov_numvfs") VFs"

step "Device plugin" "the operator labels the node and runs the plugin there; the node advertises $RES"
dp_label() { [ "$(kubectl get node "$NODE" -o jsonpath='{.metadata.labels.sriovnetwork\.openshift\.io/device-plugin}')" = Enabled ]; }
wait_until 60 "node label sriovnetwork.openshift.io/device-plugin=Enabled" dp_label
say "the pool config the operator rendered for the node (ConfigMap device-plugin-config):"
kubectl -n "$NS" get cm device-plugin-config -o json | jq -r --arg n "$NODE" '.data[$n]' | jq -c '.resourceList[]' | indent
dp_scheduled() { [ -n "$(kubectl -n "$NS" get pods -l app=sriov-device-plugin -o name)" ]; }
wait_until 60 "device plugin pod scheduled" dp_scheduled
run kubectl -n "$NS" rollout status ds/sriov-device-plugin --timeout=120s
advertised() { [ "$(kubectl get node "$NODE" -o jsonpath='{.status.allocatable.openshift\.io/intel_netdevice}')" = 4 ]; }
wait_until 60 "allocatable $RES = 4" advertised
run kubectl get node "$NODE" -o jsonpath='{.status.allocatable}'; echo
result "node $NODE allocatable $RES: $(kubectl get node "$NODE" -o jsonpath='{.status.allocatable.openshift\.io/intel_netdevice}')"

step "Network" "a SriovNetwork, which the operator turns into a NetworkAttachmentDefinition (kubectl apply -f cluster/demo/network.yaml)"
net_file=cluster/demo/network.yaml
if [ "$STATE" != /var/lib/sriov-rs-cluster ]; then
  sed "s#/var/lib/sriov-rs-cluster#$STATE#" cluster/demo/network.yaml >"$WORK/network.yaml"; net_file=$WORK/network.yaml
fi
sed -n '/^apiVersion/,$p' "$net_file" | indent
run kubectl apply -f "$net_file"
wait_until 30 "NAD default/sriov-net" kubectl get network-attachment-definitions.k8s.cni.cncf.io sriov-net
net_ready() { [ "$(kubectl -n "$NS" get sriovnetwork sriov-net -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
wait_until 30 "SriovNetwork sriov-net Ready" net_ready
run kubectl get network-attachment-definitions
say "its annotation and CNI config:"
kubectl get network-attachment-definitions.k8s.cni.cncf.io sriov-net -o json >"$WORK/nad.json"
jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/resourceName"] | "k8s.v1.cni.cncf.io/resourceName: \(.)"' "$WORK/nad.json" | indent
jq -r '.spec.config' "$WORK/nad.json" | jq . | indent
t_nad=$(since "$STEP_T")
say "On a simulated node the PF is not a netdev, so the PF-side VF setting \"vlan\": 0 (always"
say "rendered, as by the Go operator) cannot be applied: the pod uses sriov-net-sim, this NAD"
say "without \"vlan\"/\"vlanQoS\" (on a real node the pod names sriov-net itself)."
cfg=$(jq -c '.spec.config | fromjson | del(.vlan, .vlanQoS) + {name: "sriov-net-sim"}' "$WORK/nad.json")
kubectl apply -f - <<EOF | indent
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: sriov-net-sim
  namespace: default
  annotations:
    k8s.v1.cni.cncf.io/resourceName: $RES
spec:
  config: '$cfg'
EOF
result "NAD default/sriov-net written by the operator, network Ready (${t_nad} s after the apply)"

step "Pod with a VF" "the device plugin allocates a VF, Multus and the sriov CNI move its netdev into the pod (kubectl apply -f cluster/demo/pod.yaml)"
# The VF netdevs on the host before: PCI address, name, MAC, MTU.
: >"$WORK/vfs.before"
for vf in "$SIM"/sys/bus/pci/devices/*/physfn; do
  vf=$(dirname "$vf")
  for name in $(ls "$vf/net" 2>/dev/null); do
    echo "$(basename "$vf") $name $(cat "/sys/class/net/$name/address") $(cat "/sys/class/net/$name/mtu")" >>"$WORK/vfs.before"
  done
done
t_pod=$EPOCHREALTIME
run kubectl apply -f cluster/demo/pod.yaml
run kubectl wait --for=condition=Ready pod/sriov-pod --timeout=120s
pod_s=$(since "$t_pod")
run kubectl get pod sriov-pod -o wide
run kubectl exec sriov-pod -- ip link
run kubectl exec sriov-pod -- ip addr show net1
run kubectl exec sriov-pod -- sh -c 'env | grep ^PCIDEVICE_'
pci=$(kubectl exec sriov-pod -- env | sed -n 's/^PCIDEVICE_OPENSHIFT_IO_INTEL_NETDEVICE=//p')
read -r _ host_name host_mac host_mtu < <(awk -v p="$pci" '$1 == p' "$WORK/vfs.before")
pod_mac=$(kubectl exec sriov-pod -- cat /sys/class/net/net1/address)
pod_mtu=$(kubectl exec sriov-pod -- cat /sys/class/net/net1/mtu)
pod_ip=$(kubectl exec sriov-pod -- ip -o -4 addr show dev net1 | awk '{print $4}')
say "the VF: PCI $pci (on the host it was $host_name, MAC $host_mac, MTU $host_mtu);"
say "in the pod: net1, MAC $pod_mac, MTU $pod_mtu, address $pod_ip"
say "the device-info file the device plugin wrote for it:"
jq -c . "/var/run/k8s.cni.cncf.io/devinfo/dp/openshift.io-intel_netdevice-$pci-device.json" 2>&1 | indent || true
say "Multus' network-status annotation on the pod:"
kubectl get pod sriov-pod -o jsonpath='{.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}' | jq -c '.[]' | indent
if ip link show "$host_name" >/dev/null 2>&1; then say "${R}$host_name is still in the host's namespace${N}"; exit 1; fi
say "on the host: $host_name is gone (in the pod's network namespace as net1):"
ip -br link show type veth | grep -E '^demo0v' | indent || true
result "sriov-pod Running ${pod_s} s after the apply, with VF $pci as net1 ($pod_ip)"

if [ "$KEEP" = 1 ]; then
  STEPS=$((STEPS - 1))
else
  step "Pod deleted" "the sriov CNI gives the VF back to the host as it was (kubectl delete pod)"
  run kubectl delete pod sriov-pod --wait=true --timeout=60s
  wait_until 30 "$host_name back on the host" ip link show "$host_name"
  run ip -br link show "$host_name"
  now_mac=$(cat "/sys/class/net/$host_name/address") now_mtu=$(cat "/sys/class/net/$host_name/mtu")
  [ "$now_mac" = "$host_mac" ] && [ "$now_mtu" = "$host_mtu" ] || { say "${R}$host_name came back as $now_mac/$now_mtu, not $host_mac/$host_mtu${N}"; exit 1; }
  run kubectl get node "$NODE" -o jsonpath='{.status.allocatable.openshift\.io/intel_netdevice}'; echo
  result "$host_name back on the host with MAC $now_mac and MTU $now_mtu"
fi
OK=1
