# The Go sriov-network-operator v1.6.0 side by side with ours on the lane's
# control plane (issue 16; docs/testing.md "Go peers", docs/differences.md).
# Sourced by cluster/tests/lane.sh (helm only), whose helpers (t, K, say,
# fail, wait_until, timing, now_ms, klog_ms, state_json, numvfs) and
# variables (REPO, STATE, SIM, NODE, NS_OP, WORK) it uses. Steps:
#   go_op_ours_timed   baseline of what ours wrote; the lane policy gets the
#                      priority upstream's webhook stores (99); policy
#                      go-peer-a applied with ours running -> node state
#                      spec (timed), deleted
#   go_op_runs         ours scaled to 0; upstream's own manager binary
#                      (cluster/go-peer.sh build) started as a host process
#                      against the API server, as a restricted user (below);
#                      it recreates the NADs it finds missing
#   go_op_go_timed     the same policy applied with the Go operator running
#                      -> node state spec (timed); then the dedicated set
#                      (two more policies, SriovNetworks, SriovIBNetwork,
#                      OVSNetwork); what it wrote is recorded
#   go_op_stopped      the Go operator stopped (SIGTERM); nothing it may not
#                      write was written; its RBAC, the supported-nic-ids
#                      ConfigMap and the empty bridges/system it leaves in
#                      the node-state spec removed; ours scaled back, writes
#                      its own NADs and ConfigMap, converges
#   go_op_same_output  node-state specs, device-plugin ConfigMap, node label
#                      and NAD configs of both compared through
#                      go-operator-render canon with the documented
#                      normalizations only (operator/tests/go_differential.rs)
#   go_op_restored     the dedicated set deleted and the lane policy's
#                      priority removed with ours running: node state,
#                      ConfigMap, label, lane NAD, operator config and
#                      DaemonSets as before the steps
#
# Why a restricted user: v1.6.0's SriovOperatorConfig controller always
# renders and applies its config daemon and device plugin DaemonSets
# (configDaemonNodeSelector only narrows their nodes, and the policy
# controller selects nodes with the same selector, so a node without the
# label gets no node state either; enableInjector/enableOperatorWebhook
# only switch the webhooks). Those DaemonSets carry our DaemonSets' names,
# tolerate every taint and mount the node's real root at /host: applied on
# the lane they would replace our config daemon by one acting on the host.
# So the Go operator runs as user sriov-rs-go-peer (the admin kubeconfig
# impersonating it) whose ClusterRole reads everything and writes only what
# the policy, network and drain controllers write (node states, the
# ConfigMaps, node labels/annotations, network CR finalizers/annotations,
# NADs, events): its SriovOperatorConfig controller stops at its first write
# (the finalizer patch, Forbidden) and never reaches the DaemonSets or the
# webhook objects. go_op_stopped checks that nothing else carries its writes.

GO_OP_USER=sriov-rs-go-peer
GO_OP_DEPLOY=sriov-network-operator # deploy/helm: the fullname of the chart
GO_OP_LOG=$STATE/logs/go-operator.log
GO_OP_PID=$STATE/pids/go-operator.pid # `cluster.sh down` stops it too
GO_OP_NICIDS=supported-nic-ids
# The snapshots and reports of both operators are copied here, beside the
# Go operator's log (`cluster.sh down` keeps the logs directory).
GO_OP_ARTIFACTS=${SRIOV_GO_OP_ARTIFACTS:-$STATE/logs/go-operator}
go_op_keep() { mkdir -p "$GO_OP_ARTIFACTS" && cp "$@" "$GO_OP_ARTIFACTS/" 2>/dev/null || true; }
# The documented differences (operator/tests/go_differential.rs NORMALIZE,
# docs/differences.md "Go peers").
GO_OP_NORMALIZE=(--sort-interfaces --drop-nad-annotation sriovnetwork.openshift.io/owner-ref)
# One more, documented there too: a PF's vfGroups, ours by range start,
# v1.6.0 in merge order (mergeConfigs puts the later policy's group first).
# Both config daemons find a VF's group by its range.
GO_OP_JQ_NORMALIZE='.nodeStates[].spec.interfaces[]?.vfGroups |= ((. // []) | sort_by((.vfRange // "") | split("-")[0] | (tonumber? // 1000000)))'

go_op_render() { bash "$REPO/cluster/go-peer.sh" path; }
go_op_manager() { bash "$REPO/cluster/go-peer.sh" manager-path; }

# The timed policy: the same object for both operators.
go_op_policy_a() {
  cat <<EOF
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: go-peer-a, namespace: $NS_OP}
spec:
  resourceName: go_peer_a
  nodeSelector: {sriov-rs.io/lane: "true"}
  priority: 50
  numVfs: 4
  nicSelector: {pfNames: ["lng0#0-1"]}
  deviceType: netdevice
EOF
}

# The rest of the dedicated set: a second range of the same PF (merged with
# a at equal priority), vendor/deviceID/rootDevices (the VF id from the
# supported NIC list), and one network of each kind with most of its fields.
go_op_set() {
  cat <<EOF
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: go-peer-b, namespace: $NS_OP}
spec:
  resourceName: go_peer_b
  nodeSelector: {sriov-rs.io/lane: "true"}
  priority: 50
  numVfs: 4
  nicSelector: {pfNames: ["lng0#2-3"]}
  deviceType: netdevice
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: go-peer-c, namespace: $NS_OP}
spec:
  resourceName: go_peer_c
  nodeSelector: {sriov-rs.io/lane: "true"}
  priority: 20
  numVfs: 2
  nicSelector: {vendor: "8086", deviceID: "159b", rootDevices: ["0000:64:00.0"]}
  deviceType: netdevice
  excludeTopology: true
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetwork
metadata: {name: go-peer-net, namespace: $NS_OP}
spec:
  resourceName: go_peer_a
  networkNamespace: lane
  vlan: 100
  vlanQoS: 2
  spoofChk: "on"
  trust: "off"
  linkState: auto
  minTxRate: 10
  maxTxRate: 100
  capabilities: '{"mac": true, "ips": true}'
  logLevel: info
  ipam: |
    { "type": "static",
      "addresses": [ {"address": "10.56.218.2/24"} ] }
  metaPlugins: |
    { "type": "tuning", "sysctl": { "net.ipv4.conf.IFNAME.arp_notify": "1" } }
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetwork
metadata: {name: go-peer-net2, namespace: $NS_OP}
spec:
  resourceName: go_peer_c
  ipam: '{}'
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovIBNetwork
metadata: {name: go-peer-ib, namespace: $NS_OP}
spec:
  resourceName: go_peer_b
  networkNamespace: lane
  linkState: enable
  capabilities: '{"infinibandGUID": true}'
  ipam: '{"type": "host-local", "subnet": "10.56.219.0/24"}'
---
apiVersion: sriovnetwork.openshift.io/v1
kind: OVSNetwork
metadata: {name: go-peer-ovs, namespace: $NS_OP}
spec:
  resourceName: go_peer_b
  networkNamespace: lane
  bridge: br-go-peer
  vlan: 10
  mtu: 1500
  ipam: '{"type": "host-local", "subnet": "10.56.220.0/24"}'
EOF
}

# "NAMESPACE NAME" of the NAD each network of the operator namespace renders.
go_op_nads() {
  local kind
  for kind in sriovnetworks sriovibnetworks ovsnetworks; do
    K -n "$NS_OP" get "$kind" -o json |
      jq -r --arg d "$NS_OP" '.items[] | "\(if (.spec.networkNamespace // "") == "" then $d else .spec.networkNamespace end) \(.metadata.name)"'
  done
}
go_op_nad() { K -n "$1" get network-attachment-definitions.k8s.cni.cncf.io "$2" -o json --show-managed-fields; }
# Does field manager $3 hold the NAD $1/$2?
go_op_nad_by() { go_op_nad "$1" "$2" 2>/dev/null | jq -e --arg m "$3" '[.metadata.managedFields[]? | select(.manager == $m)] | length > 0' >/dev/null; }

# go_op_snapshot FILE: the objects both operators write for the node, as one
# List (the input of go-operator-render canon).
go_op_snapshot() {
  local ns name
  {
    K -n "$NS_OP" get sriovnetworknodestate "$NODE" -o json
    K -n "$NS_OP" get cm device-plugin-config -o json
    K get node "$NODE" -o json
    go_op_nads | while read -r ns name; do go_op_nad "$ns" "$name"; done
  } | jq -s '{apiVersion: "v1", kind: "List", items: .}' >"$1"
}
# go_op_report FILE OUT: the canonical report of a snapshot.
go_op_report() {
  NAMESPACE=$NS_OP "$(go_op_render)" canon "${GO_OP_NORMALIZE[@]}" "$1" | jq "$GO_OP_JQ_NORMALIZE" >"$2"
}
# go_op_steady FILE: snapshot until two in a row (1 s apart) give the same report.
go_op_steady() {
  local i
  go_op_snapshot "$1.a"; go_op_report "$1.a" "$1.ra"
  for i in $(seq 20); do
    sleep 1
    go_op_snapshot "$1"; go_op_report "$1" "$1.r"
    cmp -s "$1.r" "$1.ra" && return 0
    mv "$1.r" "$1.ra"
  done
  fail "objects still changing after 20 s"
}

# What must be as before the steps: node-state spec, ConfigMap data, the
# device-plugin label, the lane NAD's config, SriovOperatorConfig spec and
# finalizers, the DaemonSets' specs.
go_op_fingerprint() {
  state_json | jq -c '{spec}'
  K -n "$NS_OP" get cm device-plugin-config -o json | jq -c '.data'
  K get node "$NODE" -o json | jq -c '.metadata.labels["sriovnetwork.openshift.io/device-plugin"]'
  go_op_nad lane sriov-net | jq -c '{config: .spec.config, annotations: .metadata.annotations}'
  K -n "$NS_OP" get sriovoperatorconfig default -o json | jq -c '{spec, finalizers: .metadata.finalizers}'
  K -n "$NS_OP" get ds -o json | jq -c '[.items[] | {name: .metadata.name, spec: .spec}]'
}

# go_op_time_policy NAME: apply policy go-peer-a with kubectl, time until the
# node state's spec changes (as policy_converges: kubectl's POST/PATCH
# response -> the watch event of the new generation).
go_op_time_policy() {
  local gen0 stamper watcher rc=0 t0 t_spec
  gen0=$(K -n "$NS_OP" get sriovnetworknodestate "$NODE" -o jsonpath='{.metadata.generation}')
  rm -f "$WORK/go-op-state.fifo"; mkfifo "$WORK/go-op-state.fifo"
  ( while read -r g; do echo "${EPOCHREALTIME/./} $g"; done <"$WORK/go-op-state.fifo" >"$WORK/go-op-state.watch" ) &
  stamper=$!
  "$REPO/scripts/cluster.sh" kubectl -n "$NS_OP" get sriovnetworknodestate "$NODE" --watch \
    -o jsonpath='{.metadata.generation}{"\n"}' >"$WORK/go-op-state.fifo" 2>/dev/null &
  watcher=$!
  sleep 1
  go_op_policy_a | K apply -v=6 -f - >"$WORK/go-op-policy.apply" 2>&1 || rc=$?
  [ $rc = 0 ] || { cat "$WORK/go-op-policy.apply"; kill "$watcher"; fail "policy go-peer-a refused"; return 1; }
  t0=$(klog_ms "$WORK/go-op-policy.apply" 'verb="(POST|PATCH)" url="[^"]*/sriovnetworknodepolicies[^"]*" status="20[01]') \
    || { kill "$watcher"; fail "no POST/PATCH of the policy in kubectl's log"; return 1; }
  has_lng0() { [ "$(state_json | jq '[.spec.interfaces[]? | select(.name=="lng0")] | length')" = 1 ]; }
  wait_until 30 "lng0 in the node state's spec ($1)" has_lng0 || { kill "$watcher"; return 1; }
  sleep 0.5; kill "$watcher" 2>/dev/null; wait "$watcher" "$stamper" 2>/dev/null
  t_spec=$(awk -v g="$gen0" '$2 > g {print substr($1, 1, length($1) - 3); exit}' "$WORK/go-op-state.watch")
  [ -n "$t_spec" ] || { cat "$WORK/go-op-state.watch"; fail "no new generation in the watch"; return 1; }
  timing "${1}_policy_apply_to_node_state_spec_ms" "$((t_spec - t0))"
}

go_op_ours_pods() {
  local sel; sel=$(K -n "$NS_OP" get deploy "$GO_OP_DEPLOY" -o json |
    jq -r '.spec.selector.matchLabels | to_entries | map("\(.key)=\(.value)") | join(",")')
  K -n "$NS_OP" get pods -l "$sel" -o name
}

go_op_ours_timed() {
  bash "$REPO/cluster/go-peer.sh" build
  [ -x "$(go_op_manager)" ] && [ -x "$(go_op_render)" ] || { fail "Go peers not built"; return 1; }
  go_op_fingerprint >"$WORK/go-op-before"
  # Inputs as upstream's mutating webhook stores them (as in
  # go_differential.rs): the lane's policy was applied with the webhooks off,
  # so it has no priority; upstream's webhook adds 99, which ours takes for
  # an unset priority while v1.6.0 takes 0 (docs/differences.md). Removed
  # again in go_op_restored.
  if [ -z "$(K -n "$NS_OP" get sriovnetworknodepolicy lane -o jsonpath='{.spec.priority}')" ]; then
    K -n "$NS_OP" patch sriovnetworknodepolicy lane --type json -p '[{"op":"add","path":"/spec/priority","value":99}]'
    echo added >"$WORK/go-op-priority.added"
  fi
  go_op_time_policy ours
  # Back to the state before, VFs reset by the config daemon.
  K -n "$NS_OP" delete sriovnetworknodepolicy go-peer-a --wait=false
  no_lng0() { [ "$(state_json | jq '[.spec.interfaces[]? | select(.name=="lng0")] | length')" = 0 ]; }
  wait_until 30 "lng0 gone from the node state's spec" no_lng0
  zero() { [ "$(numvfs 0000:54:00.0)" = 0 ]; }
  wait_until 90 "lng0 sriov_numvfs back to 0" zero
}

go_op_runs() {
  local manager env image
  manager=$(go_op_manager)
  # Ours down.
  K -n "$NS_OP" scale deploy "$GO_OP_DEPLOY" --replicas=0
  ours_gone() { [ -z "$(go_op_ours_pods)" ]; }
  wait_until 60 "our operator's pods gone" ours_gone
  # Upstream's chart creates supported-nic-ids; its manager exits without
  # it. The same list ours compiles in (data/supported-nic-ids.tsv).
  if ! K -n "$NS_OP" get cm "$GO_OP_NICIDS" >/dev/null 2>&1; then
    awk -F'\t' '!/^#/ && $1 != "model_key" && NF >= 4 {printf "  %s: \"%s %s %s\"\n", $1, $2, $3, $4}' \
      "$REPO/data/supported-nic-ids.tsv" >"$WORK/go-op-nicids"
    { printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: %s}\ndata:\n' "$GO_OP_NICIDS" "$NS_OP"
      cat "$WORK/go-op-nicids"; } | K apply -f -
    echo created >"$WORK/go-op-nicids.created"
  fi
  # The restricted user (see the top of this file).
  K apply -f - <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: $GO_OP_USER}
rules:
- {apiGroups: ["*"], resources: ["*"], verbs: [get, list, watch]}
- {apiGroups: [""], resources: [nodes], verbs: [patch, update]}
- {apiGroups: [""], resources: [configmaps], verbs: [create, update, patch]}
- {apiGroups: ["", events.k8s.io], resources: [events], verbs: [create, update, patch]}
- {apiGroups: [sriovnetwork.openshift.io], resources: [sriovnetworknodestates], verbs: [create, update, patch, delete]}
- {apiGroups: [sriovnetwork.openshift.io], resources: [sriovnetworks, sriovibnetworks, ovsnetworks, sriovnetworkpoolconfigs], verbs: [update, patch]}
# Owner references to SriovOperatorConfig default with blockOwnerDeletion
# (node states, the ConfigMap); not the object itself.
- {apiGroups: [sriovnetwork.openshift.io], resources: [sriovoperatorconfigs/finalizers], verbs: [update]}
- {apiGroups: [k8s.cni.cncf.io], resources: [network-attachment-definitions], verbs: [create, update, patch, delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: $GO_OP_USER}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: $GO_OP_USER}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: $GO_OP_USER}]
EOF
  K config view --raw -o json | jq --arg u "$GO_OP_USER" '.users[].user.as = $u' >"$WORK/go-operator.kubeconfig"
  chmod 600 "$WORK/go-operator.kubeconfig"
  K --kubeconfig "$WORK/go-operator.kubeconfig" auth can-i patch sriovoperatorconfigs -n "$NS_OP" && { fail "the Go operator's user may patch SriovOperatorConfig"; return 1; }
  K --kubeconfig "$WORK/go-operator.kubeconfig" auth can-i create daemonsets -n "$NS_OP" && { fail "the Go operator's user may create DaemonSets"; return 1; }
  # The NADs ours wrote go, so the Go operator writes its own.
  local ns name
  go_op_nads | while read -r ns name; do
    K -n "$ns" delete network-attachment-definitions.k8s.cni.cncf.io "$name" --ignore-not-found
  done
  # Our Deployment's literal env (upstream's names: RESOURCE_PREFIX, images,
  # SRIOV_CNI_BIN_PATH, CLUSTER_TYPE, …) plus NAMESPACE; the images are the
  # lane's, though the DaemonSets are never rendered (above).
  env=$(K -n "$NS_OP" get deploy "$GO_OP_DEPLOY" -o json |
    jq -r '.spec.template.spec.containers[0].env[] | select(.value != null) | "\(.name)=\(.value)"')
  image=$(K -n "$NS_OP" get deploy "$GO_OP_DEPLOY" -o jsonpath='{.spec.template.spec.containers[0].image}')
  grep -q '^RESOURCE_PREFIX=' <<<"$env" || { fail "no RESOURCE_PREFIX in our Deployment"; return 1; }
  : >"$GO_OP_LOG"
  # Working dir: the build's, for ./bindata/manifests (upstream's image: /bindata).
  ( cd "$(dirname "$(dirname "$manager")")" &&
    mapfile -t vars <<<"$env" &&
    exec setsid env "${vars[@]}" NAMESPACE="$NS_OP" OPERATOR_NAME=sriov-network-operator \
      KUBECONFIG="$WORK/go-operator.kubeconfig" RELEASEVERSION=v1.6.0 \
      SRIOV_NETWORK_CONFIG_DAEMON_IMAGE="$image" SRIOV_CNI_IMAGE="$image" SRIOV_INFINIBAND_CNI_IMAGE="$image" \
      SRIOV_DEVICE_PLUGIN_IMAGE="$image" NETWORK_RESOURCES_INJECTOR_IMAGE="$image" SRIOV_NETWORK_WEBHOOK_IMAGE="$image" \
      "$manager" --metrics-bind-address=0 --health-probe-bind-address=0
  ) >>"$GO_OP_LOG" 2>&1 </dev/null 9>&- &
  echo $! >"$GO_OP_PID"
  say "Go operator v1.6.0 pid $(cat "$GO_OP_PID"), log $GO_OP_LOG"
  alive() { kill -0 "$(cat "$GO_OP_PID")"; }
  synced() { grep -qE 'Reconciling.*sriovnetworknodepolicy|sriovnetworknodepolicy.*Reconciling' "$GO_OP_LOG"; }
  wait_until 60 "the Go operator's policy controller reconciled" synced || { tail -30 "$GO_OP_LOG"; return 1; }
  alive || { tail -30 "$GO_OP_LOG"; fail "the Go operator exited"; return 1; }
  go_op_nads | while read -r ns name; do
    wait_until 30 "NAD $ns/$name written by the Go operator" go_op_nad_by "$ns" "$name" manager || exit 1
  done
  # The config controller stopped at its first write (the finalizer patch),
  # as intended.
  forbidden() { grep -qiE 'sriovoperatorconfig.*forbidden|forbidden.*sriovoperatorconfig' "$GO_OP_LOG"; }
  wait_until 30 "the Go SriovOperatorConfig controller refused (Forbidden)" forbidden || { tail -30 "$GO_OP_LOG"; return 1; }
  grep -m3 -iE 'forbidden' "$GO_OP_LOG" | cut -c1-400
  sleep 2 # past the policy controller's 1 s debounce
}

go_op_go_timed() {
  alive() { kill -0 "$(cat "$GO_OP_PID")"; }
  alive || { fail "the Go operator is not running"; return 1; }
  go_op_time_policy go
  go_op_set | K apply -f -
  local ns name
  go_op_nads | while read -r ns name; do
    wait_until 30 "NAD $ns/$name written by the Go operator" go_op_nad_by "$ns" "$name" manager || exit 1
  done
  cm_has() { K -n "$NS_OP" get cm device-plugin-config -o json | jq -r --arg n "$NODE" '.data[$n]' | grep -q go_peer_c; }
  wait_until 30 "go_peer_c in the device-plugin ConfigMap (Go)" cm_has
  go_op_steady "$WORK/go-op-go.json"
  alive || { tail -30 "$GO_OP_LOG"; fail "the Go operator exited"; return 1; }
  # The node state was the Go operator's write.
  K -n "$NS_OP" get sriovnetworknodestate "$NODE" -o json --show-managed-fields |
    jq -e '[.metadata.managedFields[] | select(.manager == "manager" and .operation == "Update")] | length > 0' >/dev/null \
    || { fail "no write of the Go operator (field manager \"manager\") on the node state"; return 1; }
  jq -c '.nodeStates[].spec.interfaces' "$WORK/go-op-go.json.r"
}

go_op_stopped() {
  local pid; pid=$(cat "$GO_OP_PID" 2>/dev/null) || true
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    stopped() { ! kill -0 "$pid"; }
    wait_until 30 "the Go operator exited on SIGTERM" stopped || kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$GO_OP_PID"
  go_op_keep "$GO_OP_LOG"
  grep -E 'Stop signal|clearing finalizers' "$GO_OP_LOG" | tail -3 || true
  # Nothing the restricted user may not write carries its writes (field
  # manager "manager"): DaemonSets, Deployments, Services, RBAC, webhooks,
  # leases, SriovOperatorConfig. Checked at the end, after ours is back.
  local touched
  touched=$(K get daemonsets,deployments,services,serviceaccounts,roles,rolebindings,leases,secrets,sriovoperatorconfigs -A -o json --show-managed-fields |
    jq -r '.items[] | select([.metadata.managedFields[]? | select(.manager == "manager")] | length > 0) | "\(.kind) \(.metadata.namespace)/\(.metadata.name)"')
  touched+=$(K get clusterroles,clusterrolebindings,mutatingwebhookconfigurations,validatingwebhookconfigurations -o json --show-managed-fields |
    jq -r '.items[] | select([.metadata.managedFields[]? | select(.manager == "manager")] | length > 0) | "\(.kind) \(.metadata.name)"')
  # What this file created for it.
  K delete clusterrolebinding "$GO_OP_USER" --ignore-not-found
  K delete clusterrole "$GO_OP_USER" --ignore-not-found
  rm -f "$WORK/go-operator.kubeconfig"
  [ -f "$WORK/go-op-nicids.created" ] && K -n "$NS_OP" delete cm "$GO_OP_NICIDS" --ignore-not-found
  # What it wrote and ours writes only when its own rendering differs goes,
  # so the comparison sees ours: the NADs and the device-plugin ConfigMap
  # (the device plugin keeps its mounted copy meanwhile). The node state
  # stays (its spec is the config daemon's work list): ours rewrites it when
  # its rendering differs, and it has rendered it once the policies carry
  # its status (below).
  local ns name
  go_op_nads | while read -r ns name; do
    K -n "$ns" delete network-attachment-definitions.k8s.cni.cncf.io "$name" --ignore-not-found
  done
  K -n "$NS_OP" delete cm device-plugin-config
  # v1.6.0's Update writes its spec struct whole: empty "bridges" and
  # "system" objects ours never writes (nor removes: it applies only its
  # own fields). They mean nothing; they go.
  local f
  for f in bridges system; do
    if state_json | jq -e --arg f "$f" '.spec[$f] == {}' >/dev/null; then
      K -n "$NS_OP" patch sriovnetworknodestate "$NODE" --type json \
        -p "[{\"op\":\"test\",\"path\":\"/spec/$f\",\"value\":{}},{\"op\":\"remove\",\"path\":\"/spec/$f\"}]"
    fi
  done
  K -n "$NS_OP" scale deploy "$GO_OP_DEPLOY" --replicas=1
  K -n "$NS_OP" rollout status deploy "$GO_OP_DEPLOY" --timeout=120s
  go_op_nads | while read -r ns name; do
    wait_until 30 "NAD $ns/$name written by ours" go_op_nad_by "$ns" "$name" sriov-network-operator || exit 1
  done
  # Ours processed the policies it never saw (their status is ours alone:
  # v1.6.0 writes none).
  matched() { [ "$(K -n "$NS_OP" get sriovnetworknodepolicy "$1" -o jsonpath='{.status.matchedNodes}')" = 1 ]; }
  local p
  for p in go-peer-a go-peer-b go-peer-c; do wait_until 30 "policy $p status written by ours" matched "$p" || return 1; done
  # The config daemon (ours throughout) applied the spec.
  synced() {
    local j; j=$(state_json)
    [ "$(jq -r .status.syncStatus <<<"$j")" = Succeeded ] &&
    [ "$(jq -r '.status.conditions[]? | select(.type=="Ready") | .observedGeneration' <<<"$j")" = "$(jq -r .metadata.generation <<<"$j")" ]
  }
  wait_until 90 "node state Succeeded for the current generation" synced
  [ "$(numvfs 0000:54:00.0)" = 4 ] || fail "lng0 sriov_numvfs is $(numvfs 0000:54:00.0), want 4"
  [ "$(numvfs 0000:64:00.0)" = 2 ] || fail "lng1 sriov_numvfs is $(numvfs 0000:64:00.0), want 2"
  cm_by_ours() { K -n "$NS_OP" get cm device-plugin-config -o json --show-managed-fields | jq -e '[.metadata.managedFields[]? | select(.manager == "sriov-network-operator")] | length > 0'; }
  wait_until 30 "device-plugin ConfigMap written by ours" cm_by_ours
  go_op_steady "$WORK/go-op-ours.json"
  [ -z "$touched" ] || { echo "$touched"; fail "written by the Go operator (outside its user's rights?)"; return 1; }
}

go_op_same_output() {
  go_op_keep "$WORK"/go-op-go.json* "$WORK"/go-op-ours.json* "$WORK/go-op-before"
  [ -f "$WORK/go-op-go.json.r" ] && [ -f "$WORK/go-op-ours.json.r" ] || { fail "no reports to compare"; return 1; }
  say "normalized (docs/differences.md): ${GO_OP_NORMALIZE[*]}"
  say "$(jq -r '"\(.nodeStates | length) node state(s), \(.nodeStates[0].spec.interfaces | length) interfaces, ConfigMap keys \(.deviceConfigMap.data | length), \(.nads | length) NADs"' "$WORK/go-op-go.json.r")"
  if diff -u --label "Go operator v1.6.0" --label "sriov-rs" "$WORK/go-op-go.json.r" "$WORK/go-op-ours.json.r"; then
    say "identical to the Go operator ($(wc -l <"$WORK/go-op-go.json.r") report lines)"
  else
    fail "the Go operator and ours wrote different objects for the same input"
  fi
}

go_op_restored() {
  go_op_policy_a | K delete -f - --ignore-not-found --wait=false
  go_op_set | K delete -f - --ignore-not-found --wait=false
  gone() {
    ! K -n "$NS_OP" get sriovnetworks,sriovibnetworks,ovsnetworks -o name | grep -q go-peer &&
    [ "$(state_json | jq '[.spec.interfaces[]? | select(.name=="lng0" or .name=="lng1")] | length')" = 0 ]
  }
  wait_until 30 "the dedicated set gone from the node state's spec and the networks" gone
  zero() { [ "$(numvfs 0000:54:00.0)" = 0 ] && [ "$(numvfs 0000:64:00.0)" = 0 ]; }
  wait_until 90 "lng0/lng1 sriov_numvfs back to 0" zero
  local ns
  for ns in lane "$NS_OP"; do
    ! K -n "$ns" get network-attachment-definitions.k8s.cni.cncf.io -o name | grep -q go-peer || { fail "NADs of the set left in $ns"; return 1; }
  done
  if [ -f "$WORK/go-op-priority.added" ]; then
    K -n "$NS_OP" patch sriovnetworknodepolicy lane --type json -p '[{"op":"remove","path":"/spec/priority"}]'
  fi
  same() { go_op_fingerprint >"$WORK/go-op-after" && cmp -s "$WORK/go-op-before" "$WORK/go-op-after"; }
  wait_until 30 "node state spec, ConfigMap, label, lane NAD, operator config and DaemonSets as before" same ||
    { diff "$WORK/go-op-before" "$WORK/go-op-after"; return 1; }
  synced() { [ "$(state_json | jq -r .status.syncStatus)" = Succeeded ]; }
  wait_until 60 "node state Succeeded" synced
}
