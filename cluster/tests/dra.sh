# The DRA driver in the cluster lane (docs/dra.md, docs/cluster.md "DRA
# driver"): sourced by cluster/tests/lane.sh, whose helpers (t, K, say,
# fail, wait_until, timing, now_ms, overlay) and variables (REPO, STATE,
# SIM, NODE, NS_OP, WORK) it uses. Steps:
#   dra_pool_policy       the pool dra_vfs from a policy on lnp0: the operator
#                         tells the device plugin to leave it (--dra-resources)
#   dra_deployed          the chart's DRA objects (draDriver.enabled) applied
#                         with the lane's sysfs; driver start -> ResourceSlices
#   dra_node_restricted   the admission policy keeps the driver's account to
#                         its node's slices
#   dra_claim_prepared    a claim from a template allocated by the scheduler,
#                         prepared by the driver for the kubelet, pod running
#   dra_claim_released    the pod deleted: unprepared, CDI spec and checkpoint
#                         entry gone
#   dra_health            the kubelet's health watch: a VF unbound in the
#                         simulated sysfs -> the pod's allocatedResourcesStatus
#                         Unhealthy, bound again -> Healthy
#   dra_vfio_config       a claim whose opaque VfConfig asks for vfio-pci: the
#                         VF rebound in the simulated sysfs while the pod
#                         runs with the VFIO group device from the CDI spec;
#                         the pod deleted: the VF back on iavf
#   dra_multus_attach     a pod with a claim and a Multus network: Multus
#                         (v4.2, PodResources) hands the claim's VF to the
#                         NAD's sriov CNI, the VF's netdev is the pod's net1
#                         with its IPAM address; deleted: back on the host
#   dra_restart_mid_claim the driver killed (SIGKILL) after prepare: the
#                         restarted driver re-registers and unprepares
#   dra_rolling_update    `rollout restart` (maxSurge 1): the new pod serves
#                         on sockets of its own beside the old one, is
#                         registered before the old one stops, and unprepares
#                         the old one's claim
#   dra_pcie_root_pairing a VF and a GPU of a second (fake) driver under
#                         matchAttribute resource.kubernetes.io/pcieRoot
#   dra_removed           the DaemonSet deleted: sockets gone
#   dra_pool_policy_removed  the policy and the operator's variable gone
#
# The device plugin advertises the VFs of the lane's policy PF (lnp1). The
# DRA driver's pool, dra_vfs, is the policy dra-vfs on lnp0 (dra_pool_policy:
# the chart's draDriver.resources), so no VF is offered twice.
DRV=sriovnetwork.k8snetworkplumbingwg.io
DRA_PF=lnp0
DRA_PF_ADDR=0000:3b:00.0
DRA_NS=$NS_OP
DRA_PLUGIN_DIR=/var/lib/kubelet/plugins/$DRV
DRA_REGISTRY=/var/lib/kubelet/plugins_registry
# The driver's sockets are named after its pod's UID (POD_UID, rolling
# updates): <registry>/<driver>-<id>-reg.sock and <plugin dir>/dra-<id>.sock.
# <id>: the UID's first 12 hex digits (plugin::instance_tag; a unix socket
# path has at most 107 bytes).
dra_tag() { tr -d - <<<"$1" | cut -c1-12; }
dra_reg_sock() { echo "$DRA_REGISTRY/$DRV-$(dra_tag "$1")-reg.sock"; }
dra_sock() { echo "$DRA_PLUGIN_DIR/dra-$(dra_tag "$1").sock"; }
dra_pod() { K -n "$DRA_NS" get pods -l app=sriov-dra-driver -o jsonpath='{.items[0].metadata.name}'; }
dra_pod_uid() { K -n "$DRA_NS" get pod "$1" -o jsonpath='{.metadata.uid}'; }
# The registration sockets of every instance of the driver.
dra_reg_socks() { ls "$DRA_REGISTRY/$DRV"-*-reg.sock 2>/dev/null; }
CDI_DIR=/var/run/cdi

# The driver's log (every container of its pod, previous ones too), without colours.
dra_log() {
  local pod; pod=$(K -n "$DRA_NS" get pods -l app=sriov-dra-driver -o jsonpath='{.items[0].metadata.name}') || return 1
  { K -n "$DRA_NS" logs "$pod" --previous 2>/dev/null || true; K -n "$DRA_NS" logs "$pod"; } | sed 's/\x1b\[[0-9;]*m//g'
}
# RFC 3339 time at the start of a log line -> epoch ms.
log_ms() { date -d "$(awk '{print $1}' <<<"$1")" +%s%3N; }
dra_slices() { K get resourceslices --field-selector "spec.nodeName=$NODE,spec.driver=$DRV" -o json; }
dra_device_count() { dra_slices | jq '[.items[].spec.devices[]?] | length'; }
# The VFs of DRA_PF in the simulated sysfs.
dra_pf_vfs() { ls -d "$SIM/sys/bus/pci/devices/$DRA_PF_ADDR"/virtfn* 2>/dev/null | wc -l; }

# The DRA driver's VFs come from a policy, like the device plugin's: the
# chart's draDriver.resources (here dra_vfs) sets SRIOV_DRA_RESOURCES on the
# operator, which passes --dra-resources to the device plugin; the policy
# dra-vfs (lnp0, its 4 VFs) puts the pool into the node's device-plugin
# config, which the DRA driver reads. The device plugin claims the pool's
# VFs (so both agree on every VF) but never advertises them.
DRA_RES=dra_vfs
dra_pool_policy() {
  # What the chart sets on the operator for draDriver.resources.
  "$REPO/scripts/helm.sh" template sriov-network-operator deploy/helm/sriov-network-operator \
    --namespace "$NS_OP" --show-only templates/operator.yaml \
    --set draDriver.enabled=true --set "draDriver.resources={$DRA_RES}" >"$WORK/operator-dra.yaml"
  grep -A1 'name: SRIOV_DRA_RESOURCES' "$WORK/operator-dra.yaml" | grep -q "value: \"$DRA_RES\"" \
    || { fail "the chart does not set SRIOV_DRA_RESOURCES=$DRA_RES"; return 1; }
  K -n "$NS_OP" set env deployment/sriov-network-operator "SRIOV_DRA_RESOURCES=$DRA_RES"
  K -n "$NS_OP" rollout status deployment/sriov-network-operator --timeout=90s
  dp_told() { K -n "$NS_OP" get ds sriov-device-plugin -o json | jq -r '.spec.template.spec.containers[0].args[]' | grep -qx -- "--dra-resources=$DRA_RES"; }
  wait_until 60 "the operator passes --dra-resources=$DRA_RES to the device plugin" dp_told || return 1
  K -n "$NS_OP" rollout status ds/sriov-device-plugin --timeout=90s
  K apply -f - <<EOF
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: dra-vfs, namespace: $NS_OP}
spec:
  resourceName: $DRA_RES
  nodeSelector: {sriov-rs.io/lane: "true"}
  numVfs: 4
  nicSelector: {pfNames: ["$DRA_PF"]}
  deviceType: netdevice
EOF
  in_config() { K -n "$NS_OP" get cm device-plugin-config -o json | jq -r --arg n "$NODE" '.data[$n] // ""' | jq -e --arg r "$DRA_RES" '.resourceList[] | select(.resourceName == $r)' >/dev/null; }
  wait_until 60 "the node's device-plugin config has the pool $DRA_RES" in_config || return 1
  synced() { [ "$(state_json | jq -r .status.syncStatus)" = Succeeded ] && [ "$(numvfs "$DRA_PF_ADDR")" = 4 ]; }
  wait_until 90 "node state Succeeded, $DRA_PF with 4 VFs" synced || return 1
  # The device plugin reloads the config; the pool stays off the node.
  local pod; pod=$(K -n "$NS_OP" get pods -l app=sriov-device-plugin -o jsonpath='{.items[0].metadata.name}')
  K -n "$NS_OP" logs "$pod" | sed 's/\x1b\[[0-9;]*m//g' | grep "pools left to the DRA driver" | grep -q "$DRA_RES" \
    || { fail "the device plugin did not log the pool left to the DRA driver"; return 1; }
  reloaded() { K -n "$NS_OP" logs "$pod" | grep -q "config reloaded"; }
  wait_until 90 "the device plugin reloaded its config" reloaded || return 1
  sleep 2
  local cap; cap=$(K get node "$NODE" -o json | jq -r --arg r "intel.com/$DRA_RES" '.status.capacity[$r] // "none"')
  [ "$cap" = none ] || { fail "the node advertises intel.com/$DRA_RES ($cap) from the device plugin"; return 1; }
}

# The policy deleted, the operator's variable unset: the device plugin
# without --dra-resources, lnp0 given back by the config daemon.
dra_pool_policy_removed() {
  K -n "$NS_OP" delete sriovnetworknodepolicy dra-vfs --ignore-not-found
  K -n "$NS_OP" set env deployment/sriov-network-operator SRIOV_DRA_RESOURCES-
  K -n "$NS_OP" rollout status deployment/sriov-network-operator --timeout=90s
  untold() { ! K -n "$NS_OP" get ds sriov-device-plugin -o json | jq -r '.spec.template.spec.containers[0].args[]' | grep -q -- "--dra-resources"; }
  wait_until 60 "the device plugin without --dra-resources" untold || return 1
  K -n "$NS_OP" rollout status ds/sriov-device-plugin --timeout=90s
  gone() { ! K -n "$NS_OP" get cm device-plugin-config -o json | jq -r --arg n "$NODE" '.data[$n] // ""' | grep -q "\"$DRA_RES\""; }
  wait_until 60 "the pool gone from the device-plugin config" gone || return 1
  synced() { [ "$(state_json | jq -r .status.syncStatus)" = Succeeded ]; }
  wait_until 90 "node state Succeeded" synced
}

dra_deployed() {
  local version image s
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
  image=ghcr.io/sriov-rs/sriov-rs:$version
  # The CDI dir is the node's; `cluster.sh down` removes it if the lane made it.
  [ -e "$CDI_DIR" ] || echo "$CDI_DIR" >>"$STATE/created-paths"
  # The chart's objects (draDriver.enabled) as Helm renders them, with the
  # lane's sysfs (the simulated node) instead of the node's /sys.
  "$REPO/scripts/helm.sh" template sriov-network-operator deploy/helm/sriov-network-operator \
    --namespace "$DRA_NS" --show-only templates/dra-driver.yaml \
    --set draDriver.enabled=true --set-string "images.sriovDraDriver=$image" \
    --set "draDriver.resources={$DRA_RES}" --set operator.resourcePrefix=intel.com >"$WORK/dra.yaml"
  sed -i "s#^\(\s*\)path: /sys\$#\1path: $SIM/sys#" "$WORK/dra.yaml"
  grep -q "path: $SIM/sys" "$WORK/dra.yaml" || { fail "no /sys hostPath to point at the simulated node"; return 1; }
  grep -q -- "- --resources=$DRA_RES" "$WORK/dra.yaml" || { fail "draDriver.resources not rendered"; return 1; }
  # The plugin dir (sockets, checkpoint) under the simulated root, where the
  # config daemon (its /host) reads the checkpoint as it reads the node's;
  # the kubelet reaches the sockets through a symlink at the real path.
  mkdir -p "$SIM/var/lib/kubelet/plugins/$DRV" /var/lib/kubelet/plugins
  [ -d "$DRA_PLUGIN_DIR" ] && [ ! -L "$DRA_PLUGIN_DIR" ] && rmdir "$DRA_PLUGIN_DIR"
  [ -L "$DRA_PLUGIN_DIR" ] || ln -s "$SIM/var/lib/kubelet/plugins/$DRV" "$DRA_PLUGIN_DIR"
  sed -i "s#^\(\s*\)path: $DRA_PLUGIN_DIR\$#\1path: $SIM/var/lib/kubelet/plugins/$DRV#" "$WORK/dra.yaml"
  grep -q "path: $SIM/var/lib/kubelet/plugins/$DRV" "$WORK/dra.yaml" || { fail "no plugin dir hostPath to move"; return 1; }
  local want; want=$(dra_pf_vfs)
  say "VFs of $DRA_PF ($DRA_PF_ADDR): $want"
  [ "$want" -gt 0 ] || { fail "$DRA_PF has no VFs"; return 1; }
  s=$(now_ms)
  K apply -f "$WORK/dra.yaml"
  # Tight poll: the time the API server first lists the node's slices with every VF.
  local end=$((SECONDS + 120)) n=0
  until [ "$(dra_device_count 2>/dev/null)" = "$want" ]; do
    [ $SECONDS -ge $end ] && {
      fail "ResourceSlices of $NODE with $want devices not visible after 120 s"
      dra_log 2>&1 | tail -20
      K -n "$DRA_NS" describe pods -l app=sriov-dra-driver | tail -25
      return 1
    }
    sleep 0.1
  done
  local t_visible; t_visible=$(now_ms)
  timing "dra_apply_to_slices_visible_ms" "$((t_visible - s))"
  K -n "$DRA_NS" rollout status ds/sriov-dra-driver --timeout=60s
  dra_log >"$WORK/dra.log"
  cat "$WORK/dra.log"
  local l_start l_pub
  l_start=$(grep -m1 ' starting ' "$WORK/dra.log") || { fail "no 'starting' line in the driver's log"; return 1; }
  l_pub=$(grep -m1 'ResourceSlices published' "$WORK/dra.log") || { fail "no 'ResourceSlices published' line"; return 1; }
  timing "dra_driver_start_to_slices_published_ms" "$(( $(log_ms "$l_pub") - $(log_ms "$l_start") ))"
  timing "dra_driver_start_to_slices_visible_ms" "$(( t_visible - $(log_ms "$l_start") ))"
  local uid; uid=$(dra_pod_uid "$(dra_pod)")
  [ -S "$(dra_reg_sock "$uid")" ] && [ -S "$(dra_sock "$uid")" ] \
    || { fail "sockets of pod UID $uid missing"; ls -l "$DRA_PLUGIN_DIR" "$DRA_REGISTRY"; return 1; }
  # The slices and their attributes.
  dra_slices >"$WORK/slices.json"
  jq -c '.items[] | {name: .metadata.name, pool: .spec.pool, devices: [.spec.devices[].name]}' "$WORK/slices.json"
  jq '.items[0].spec.devices[0]' "$WORK/slices.json"
  [ "$(jq -r '[.items[].spec.pool.name] | unique | join(",")' "$WORK/slices.json")" = "$NODE" ] || { fail "pool name is not the node's"; return 1; }
  local vf dev attrs root
  # The PF's PCIe root from its sysfs path (…/devices/pci0000:3a/…).
  root=$(readlink -f "$SIM/sys/bus/pci/devices/$DRA_PF_ADDR" | grep -o 'pci[0-9a-f]\{4\}:[0-9a-f]\{2\}' | head -1)
  say "PCIe root of $DRA_PF: $root"
  for vf in "$SIM/sys/bus/pci/devices/$DRA_PF_ADDR"/virtfn*; do
    vf=$(basename "$(readlink -f "$vf")")
    dev=$(tr ':.' '--' <<<"$vf")
    attrs=$(jq -c --arg d "$dev" '.items[].spec.devices[] | select(.name==$d) | .attributes' "$WORK/slices.json")
    [ -n "$attrs" ] || { fail "VF $vf ($dev) not published"; return 1; }
    [ "$(jq -r '."resource.kubernetes.io/pciBusID".string' <<<"$attrs")" = "$vf" ] || { fail "$dev pciBusID"; return 1; }
    [ "$(jq -r '."resource.kubernetes.io/pcieRoot".string' <<<"$attrs")" = "$root" ] \
      || { fail "$dev pcieRoot $(jq -c '."resource.kubernetes.io/pcieRoot"' <<<"$attrs")"; return 1; }
    [ "$(jq -r --arg k "$DRV/PFName" '.[$k].string' <<<"$attrs")" = "$DRA_PF" ] || { fail "$dev PFName"; return 1; }
    [ "$(jq -r --arg k "$DRV/pfPciAddress" '.[$k].string' <<<"$attrs")" = "$DRA_PF_ADDR" ] || { fail "$dev pfPciAddress"; return 1; }
    [ "$(jq -r --arg k "$DRV/vendor" '.[$k].string' <<<"$attrs")" = 8086 ] || { fail "$dev vendor"; return 1; }
    [ "$(jq -r '."k8s.cni.cncf.io/deviceID".string' <<<"$attrs")" = "$vf" ] || { fail "$dev k8s.cni.cncf.io/deviceID"; return 1; }
    # The pool from the device plugin's config, for Multus.
    [ "$(jq -r '."k8s.cni.cncf.io/resourceName".string' <<<"$attrs")" = "intel.com/$DRA_RES" ] || { fail "$dev k8s.cni.cncf.io/resourceName"; return 1; }
  done
  # None of the device plugin's (the policy PF's) VFs.
  if jq -e --arg pf "$POLICY_PF" '[.items[].spec.devices[].attributes[]?.string] | index($pf)' "$WORK/slices.json" >/dev/null; then
    fail "a VF of the policy PF $POLICY_PF is published by the DRA driver"; return 1
  fi
  K get deviceclass "$DRV" -o jsonpath='{.spec.selectors[0].cel.expression}'; echo
}

# The kubelet's plugin watcher calls GetInfo on the registration socket
# and then NotifyRegistrationStatus, which the driver logs.
dra_registered() {
  registered() { dra_log | grep -q 'registered with the kubelet'; }
  wait_until 60 "the kubelet registered the driver" registered && return 0
  grep -E "RegisterPlugin.*$DRV" "$STATE/logs/kubelet.log" | tail -3
  return 1
}

# The ValidatingAdmissionPolicy, with the driver ServiceAccount's real
# tokens (server-side dry runs): one bound to the driver's pod carries its
# node (authentication.kubernetes.io/node-name): a slice of another node is
# refused, one of its own node accepted; an unbound token has no node and is
# refused.
dra_node_restricted() {
  local pod bound unbound out rc
  pod=$(K -n "$DRA_NS" get pods -l app=sriov-dra-driver -o jsonpath='{.items[0].metadata.name}')
  bound=$(K -n "$DRA_NS" create token sriov-dra-driver --bound-object-kind Pod --bound-object-name "$pod")
  unbound=$(K -n "$DRA_NS" create token sriov-dra-driver)
  as_sa() { # TOKEN NODE: create (dry run) a slice of NODE with TOKEN
    cat <<EOF | "$REPO/scripts/cluster.sh" kubectl --kubeconfig /dev/null --server https://127.0.0.1:16443 \
      --certificate-authority "$STATE/pki/ca.crt" --token "$1" create --dry-run=server -f - 2>&1
apiVersion: resource.k8s.io/v1
kind: ResourceSlice
metadata: {name: lane-vap-probe}
spec: {driver: $DRV, nodeName: $2, pool: {name: $2, generation: 1, resourceSliceCount: 1}, devices: []}
EOF
  }
  rc=0; out=$(as_sa "$bound" other-node) || rc=$?
  echo "$out"
  [ $rc != 0 ] || { fail "a slice of another node was accepted"; return 1; }
  grep -qF "sriov-dra-driver on node $NODE may not write ResourceSlices of node other-node" <<<"$out" \
    || { fail "refused without the policy's message"; return 1; }
  rc=0; out=$(as_sa "$unbound" "$NODE") || rc=$?
  echo "$out"
  [ $rc != 0 ] && grep -qF "no node name in its token" <<<"$out" || { fail "a token without a node was not refused"; return 1; }
  as_sa "$bound" "$NODE" || { fail "its own node's slice was refused"; return 1; }
}

dra_claim() { # NAME [MORE-YAML]: a standalone ResourceClaim in lane for one of the driver's VFs
  K apply -f - <<EOF
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: $1, namespace: lane}
spec:
  devices:
    requests:
    - name: vf
      exactly:
        deviceClassName: $DRV
${2:-}
EOF
}
dra_claim_pod() { # NAME CLAIM-YAML (the pod's resourceClaims entry) [NETWORKS (Multus annotation)]
  local annotations="{}"
  [ -z "${3:-}" ] || annotations="{k8s.v1.cni.cncf.io/networks: '$3'}"
  K apply -f - <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: lane
  annotations: $annotations
spec:
  terminationGracePeriodSeconds: 1
  resourceClaims:
  - name: vf
    $2
  containers:
  - name: c
    image: sriov-rs.local/test:1
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    resources:
      claims:
      - name: vf
EOF
}

# check_prepared POD: the pod's claim is allocated one of the driver's VFs,
# reserved for the pod, prepared (CDI spec, checkpoint); its uid and device
# go to $WORK/<pod>.claim.
check_prepared() {
  local pod=$1 claim uid dev addr spec
  claim=$(K -n lane get pod "$pod" -o jsonpath='{.status.resourceClaimStatuses[0].resourceClaimName}')
  [ -n "$claim" ] || claim=$(K -n lane get pod "$pod" -o jsonpath='{.spec.resourceClaims[0].resourceClaimName}')
  K -n lane get resourceclaim "$claim" -o json >"$WORK/$pod.rc.json"
  jq -c '{allocation: .status.allocation.devices.results, reservedFor: [.status.reservedFor[].name]}' "$WORK/$pod.rc.json"
  uid=$(jq -r .metadata.uid "$WORK/$pod.rc.json")
  [ "$(jq -r '.status.allocation.devices.results | length' "$WORK/$pod.rc.json")" = 1 ] || { fail "$claim: not one device allocated"; return 1; }
  [ "$(jq -r '.status.allocation.devices.results[0].driver' "$WORK/$pod.rc.json")" = "$DRV" ] || { fail "$claim: driver"; return 1; }
  [ "$(jq -r '.status.allocation.devices.results[0].pool' "$WORK/$pod.rc.json")" = "$NODE" ] || { fail "$claim: pool"; return 1; }
  jq -e --arg p "$pod" '.status.reservedFor[] | select(.name==$p)' "$WORK/$pod.rc.json" >/dev/null || { fail "$claim: not reserved for $pod"; return 1; }
  dev=$(jq -r '.status.allocation.devices.results[0].device' "$WORK/$pod.rc.json")
  addr=$(sed -E 's/^([0-9a-f]{4})-([0-9a-f]{2})-([0-9a-f]{2})-([0-7])$/\1:\2:\3.\4/' <<<"$dev")
  [ "$(basename "$(readlink -f "$SIM/sys/bus/pci/devices/$addr/physfn")")" = "$DRA_PF_ADDR" ] \
    || { fail "allocated $dev ($addr) is not a VF of $DRA_PF"; return 1; }
  spec=$CDI_DIR/sriov-rs-dra_$uid.json
  [ -f "$spec" ] || { fail "no CDI spec $spec"; ls -l "$CDI_DIR"; return 1; }
  jq -c . "$spec"
  [ "$(jq -r .kind "$spec")" = "$DRV/vf" ] || { fail "CDI kind"; return 1; }
  # Env names cannot hold '-': the device name's become '_' (prepare.rs).
  jq -r '.devices[].containerEdits.env[]' "$spec" | grep -qx "SRIOVNETWORK_VF_DEVICE_${dev//-/_}=$addr" \
    || { fail "CDI spec lacks SRIOVNETWORK_VF_DEVICE_${dev//-/_}=$addr"; return 1; }
  jq -e --arg u "$uid" '.claims[$u]' "$DRA_PLUGIN_DIR/checkpoint.json" >/dev/null || { fail "claim $uid not in the checkpoint"; return 1; }
  echo "$claim $uid $dev $addr" >"$WORK/$pod.claim"
}

# check_unprepared POD: the pod's claim's CDI spec and checkpoint entry are gone.
check_unprepared() {
  local claim uid dev addr
  read -r claim uid dev addr <"$WORK/$1.claim"
  gone() { [ ! -e "$CDI_DIR/sriov-rs-dra_$uid.json" ] && ! jq -e --arg u "$uid" '.claims[$u]' "$DRA_PLUGIN_DIR/checkpoint.json" >/dev/null; }
  wait_until 60 "CDI spec and checkpoint entry of $claim ($uid) gone" gone || return 1
  unprepared() { dra_log | grep "claim unprepared" | grep -q "uid=$uid"; }
  wait_until 10 "the driver logged the unprepare of $uid" unprepared || return 1
  dra_log | grep "claim unprepared" | grep "uid=$uid"
}

dra_claim_prepared() {
  K create namespace lane --dry-run=client -o yaml | K apply -f - >/dev/null
  K apply -f - <<EOF
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: one-vf, namespace: lane}
spec:
  spec:
    devices:
      requests:
      - name: vf
        exactly:
          deviceClassName: $DRV
EOF
  local s; s=$(now_ms)
  dra_claim_pod dra-pod "resourceClaimTemplateName: one-vf"
  K -n lane wait --for=condition=Ready pod/dra-pod --timeout=120s
  local ms=$(( $(now_ms) - s ))
  timing "dra_pod_apply_to_ready_s" "$((ms / 1000)).$((ms % 1000 / 100))"
  check_prepared dra-pod || return 1
  local claim uid dev addr line
  read -r claim uid dev addr <"$WORK/dra-pod.claim"
  say "claim $claim ($uid): $dev = VF $addr"
  line=$(dra_log | grep 'claim prepared' | grep "uid=$uid" | sed -n 1p) || { fail "no 'claim prepared' log line for $uid"; return 1; }
  echo "$line"
  timing "dra_node_prepare_resources_driver_ms" "$(sed -E 's/.*elapsed_ms="?([0-9.]+).*/\1/' <<<"$line")"
  # The kubelet's own measure of the gRPC call (its metrics, through the API server).
  K get --raw "/api/v1/nodes/$NODE/proxy/metrics" 2>/dev/null \
    | grep -E '^dra_grpc_operations_duration_seconds_(sum|count)\{.*NodePrepareResources' | tee "$WORK/kubelet-dra.metrics" || true
  local sum count
  sum=$(awk '/_sum/ {print $2}' "$WORK/kubelet-dra.metrics" | head -1)
  count=$(awk '/_count/ {print $2}' "$WORK/kubelet-dra.metrics" | head -1)
  [ -n "$sum" ] && [ -n "$count" ] && [ "$count" != 0 ] \
    && timing "dra_node_prepare_resources_kubelet_mean_ms" "$(awk -v s="$sum" -v c="$count" 'BEGIN {printf "%.2f", s * 1000 / c}') (n=$count)"
  # What the container sees: the CDI env, applied by the lane's containerd 2
  # (scripts/cluster.sh; CDI is on by default since 2.0).
  K -n lane exec dra-pod -- env | grep "^SRIOVNETWORK_VF_DEVICE_${dev//-/_}=$addr\$" \
    || { fail "the pod lacks SRIOVNETWORK_VF_DEVICE_${dev//-/_}=$addr (CDI not applied)"; return 1; }
}

# The kubelet watches the driver's DRAResourceHealth (feature gate
# ResourceHealthStatus, on in the lane), keeps what it hears in its health
# cache (<kubelet dir>/dra_health_state, "<pool>/<device>" per driver) and
# shows it in the pod's allocatedResourcesStatus. A VF unbound from its
# driver in the simulated sysfs turns it Unhealthy in both; bound again,
# Healthy. Kubelet 1.34 finds a claim's health only when the pod's claim
# entry has the ResourceClaim's own name (kubernetes/kubernetes#134482,
# fixed in 1.35 by #134875), so this pod uses a standalone claim "vf".
DRA_HEALTH_STATE=/var/lib/kubelet/dra_health_state
dra_kubelet_health() { # DEVICE -> its health in the kubelet's cache
  jq -r --arg d "$DRV" --arg k "$NODE/$1" '.[$d].Devices[$k].Health // "absent"' "$DRA_HEALTH_STATE" 2>/dev/null
}
dra_pod_health() { # RESOURCE-ID -> its health in the pod's allocatedResourcesStatus
  K -n lane get pod dra-health -o json | jq -r --arg id "$1" \
    '[.status.containerStatuses[]?.allocatedResourcesStatus[]? | select(.name == "claim:vf") | .resources[] | select(.resourceID == $id) | .health] | first // "absent"'
}
dra_health_is() { # DEVICE RESOURCE-ID HEALTH: the kubelet's cache and the pod both say HEALTH
  [ "$(dra_kubelet_health "$1")" = "$3" ] && [ "$(dra_pod_health "$2")" = "$3" ]
}
dra_health() {
  # Not local: the EXIT trap runs after the function returned (t runs it in a subshell).
  dra_claim vf
  dra_claim_pod dra-health "resourceClaimName: vf"
  # Whatever happens below: the VF bound again, the pod and its claim gone.
  # (Each command `|| true`: the trap runs under the step's `set -e`.)
  trap '{ [ -n "${drv:-}" ] && [ ! -e "$SIM/sys/bus/pci/devices/$addr/driver" ] && echo "$addr" >"$SIM/sys/bus/pci/drivers/$drv/bind"; } || true
    K -n lane delete pod dra-health --wait=true --timeout=60s >/dev/null 2>&1 || true
    K -n lane delete resourceclaim vf --wait=true --timeout=60s >/dev/null 2>&1 || true' EXIT
  K -n lane wait --for=condition=Ready pod/dra-health --timeout=120s
  check_prepared dra-health || return 1
  read -r claim uid dev addr <"$WORK/dra-health.claim"
  rid="$DRV/vf=$addr"  # the device's CDI ID (prepare.rs cdi_device_name)
  pod_uid=$(K -n lane get pod dra-health -o jsonpath='{.metadata.uid}')
  wait_until 30 "$dev Healthy in the kubelet's cache and the pod's status" dra_health_is "$dev" "$rid" Healthy || return 1
  K -n lane get pod dra-health -o json | jq -c '.status.containerStatuses[0].allocatedResourcesStatus'
  drv=$(basename "$(readlink "$SIM/sys/bus/pci/devices/$addr/driver")")
  say "unbinding $addr from $drv in the simulated sysfs"
  counters=$(daemon_counters)
  t0=$(now_ms)
  echo "$addr" >"$SIM/sys/bus/pci/devices/$addr/driver/unbind"
  wait_until 30 "$dev Unhealthy in the kubelet's cache and the pod's status" dra_health_is "$dev" "$rid" Unhealthy || return 1
  timing "dra_vf_unbound_to_pod_status_unhealthy_ms" "$(( $(now_ms) - t0 ))"
  K -n lane get pod dra-health -o json | jq -c '.status.containerStatuses[0].allocatedResourcesStatus'
  dra_log | grep "device unhealthy" | grep "$dev" | tail -1 | grep -q "bound to no driver" \
    || { fail "the driver did not log $dev unhealthy (bound to no driver)"; return 1; }
  grep "Sending health update notification for pods" "$STATE/logs/kubelet.log" | grep "$DRV" | grep -q "$pod_uid" \
    || { fail "the kubelet did not re-sync pod $pod_uid on the health change"; return 1; }
  # Still unbound: the config daemon leaves a claimed VF to the claim.
  daemon_left_alone "$counters" || return 1
  [ ! -e "$SIM/sys/bus/pci/devices/$addr/driver" ] || { fail "$addr was bound again while the claim holds it"; return 1; }
  echo "$addr" >"$SIM/sys/bus/pci/drivers/$drv/bind"
  wait_until 30 "$dev Healthy again" dra_health_is "$dev" "$rid" Healthy || return 1
  K -n lane delete pod dra-health --wait=true --timeout=60s
  check_unprepared dra-health || return 1
  K -n lane delete resourceclaim vf --wait=true --timeout=60s
  trap - EXIT
}

dra_claim_released() {
  local claim uid dev addr
  read -r claim uid dev addr <"$WORK/dra-pod.claim"
  K -n lane delete pod dra-pod --wait=true --timeout=60s
  check_unprepared dra-pod || return 1
  # The template's claim goes with its pod.
  wait_until 30 "claim $claim deleted with its pod" bash -c "! '$REPO/scripts/cluster.sh' kubectl -n lane get resourceclaim '$claim'"
}

# The config daemon's counters (its metrics, host network): drift repairs and
# drains requested, "R D".
daemon_counters() {
  curl -sf 127.0.0.1:9110/metrics | awk '/^sriov_config_daemon_drift_repairs_total / {r=$2} /^sriov_config_daemon_drains_requested_total / {d=$2}
    END {if (r == "" || d == "") exit 1; print r, d}'
}
# daemon_left_alone BEFORE: lnp0 is the netdevice policy dra-vfs's, yet the
# config daemon neither "repaired" the binding a claim holds (bound back to
# iavf) nor asked for a drain since BEFORE (daemon_counters), and the node
# state is Succeeded. Its uevent-triggered runs take well under a second here
# (config_daemon_drift_repair_s).
daemon_left_alone() {
  sleep 3
  local now; now=$(daemon_counters)
  [ "$now" = "$1" ] || { fail "the config daemon acted on a DRA claim's VF: drift repairs, drains $1 -> $now"; return 1; }
  [ "$(state_json | jq -r .status.syncStatus)" = Succeeded ] || { fail "node state $(state_json | jq -r .status.syncStatus), not Succeeded"; return 1; }
}

# The VF's binding in the simulated sysfs: "<driver> <driver_override>".
dra_vf_binding() {
  local d=$SIM/sys/bus/pci/devices/$1 drv=none
  [ -e "$d/driver" ] && drv=$(basename "$(readlink -f "$d/driver")")
  echo "$drv $(cat "$d/driver_override")"
}

# The claim's config is upstream's VfConfig (demo/vfio-driver of
# k8snetworkplumbingwg/dra-driver-sriov). The simulated kernel binds the VF
# to vfio-pci and makes $SIM/dev/vfio/<group>, a plain file under the
# simulated root: the runtime resolves the CDI spec's hostPath
# /dev/vfio/<group> on the real node, which has no VFIO. So that the pod
# can start, the step makes stand-ins for the two device nodes (character
# devices 1:3, /dev/null's) when the node has no /dev/vfio, and removes
# them at the end; on a node with /dev/vfio it leaves it alone and checks
# only the spec and the binding.
dra_vfio_config() {
  dra_claim vf-vfio "    config:
    - requests: [vf]
      opaque:
        driver: $DRV
        parameters:
          apiVersion: $DRV/v1alpha1
          kind: VfConfig
          driver: vfio-pci
          ifName: net1
          netAttachDefName: vf-net"
  # The scheduler picks the VF; its IOMMU group is known once allocated.
  allocated() { [ -n "$(K -n lane get resourceclaim vf-vfio -o jsonpath='{.status.allocation.devices.results[0].device}')" ]; }
  local stand_in=0 dev addr group counters
  counters=$(daemon_counters)
  dra_claim_pod dra-vfio "resourceClaimName: vf-vfio"
  wait_until 60 "claim vf-vfio allocated" allocated || return 1
  dev=$(K -n lane get resourceclaim vf-vfio -o jsonpath='{.status.allocation.devices.results[0].device}')
  addr=$(sed -E 's/^([0-9a-f]{4})-([0-9a-f]{2})-([0-9a-f]{2})-([0-7])$/\1:\2:\3.\4/' <<<"$dev")
  group=$(basename "$(readlink -f "$SIM/sys/bus/pci/devices/$addr/iommu_group")")
  [[ "$group" =~ ^[0-9]+$ ]] || { fail "$addr has no IOMMU group in the simulated sysfs"; return 1; }
  if [ ! -e /dev/vfio ]; then
    stand_in=1
    echo /dev/vfio >>"$STATE/created-paths"
    mkdir /dev/vfio
    mknod -m 666 "/dev/vfio/$group" c 1 3
    mknod -m 666 /dev/vfio/vfio c 1 3
    say "stand-in /dev/vfio/$group and /dev/vfio/vfio (the node has no VFIO)"
  fi
  K -n lane wait --for=condition=Ready pod/dra-vfio --timeout=120s
  check_prepared dra-vfio || return 1
  local claim uid spec
  read -r claim uid dev addr <"$WORK/dra-vfio.claim"
  spec=$CDI_DIR/sriov-rs-dra_$uid.json
  # Rebound, the override kept (a re-probe keeps it on vfio-pci), netdev gone.
  [ "$(dra_vf_binding "$addr")" = "vfio-pci vfio-pci" ] || { fail "$addr is '$(dra_vf_binding "$addr")', not on vfio-pci"; return 1; }
  [ -e "$SIM/dev/vfio/$group" ] || { fail "the simulated vfio-pci made no dev/vfio/$group"; return 1; }
  # The config daemon leaves the claim's vfio-pci binding alone.
  daemon_left_alone "$counters" || return 1
  [ "$(dra_vf_binding "$addr")" = "vfio-pci vfio-pci" ] || { fail "$addr left vfio-pci while the claim holds it"; return 1; }
  if ls "$SIM/sys/bus/pci/devices/$addr/net" 2>/dev/null | grep -q .; then fail "$addr still has a netdev"; return 1; fi
  jq -e --arg g "/dev/vfio/$group" '[.devices[0].containerEdits.deviceNodes[].path] == [$g, "/dev/vfio/vfio"]' "$spec" >/dev/null \
    || { fail "the CDI spec lacks the VFIO device nodes"; return 1; }
  jq -r '.devices[0].containerEdits.env[]' "$spec" | grep -qx "SRIOVNETWORK_NET_ATTACH_DEF_NAME=vf-net" \
    || { fail "no SRIOVNETWORK_NET_ATTACH_DEF_NAME in the CDI spec"; return 1; }
  jq -e --arg u "$uid" '.claims[$u].devices[0] | .config.driver == "vfio-pci" and .original.driver == "iavf"' "$DRA_PLUGIN_DIR/checkpoint.json" >/dev/null \
    || { fail "the checkpoint lacks the config or the original driver"; jq --arg u "$uid" '.claims[$u]' "$DRA_PLUGIN_DIR/checkpoint.json"; return 1; }
  # The driver's status.devices entry: the applied VfConfig as data (as upstream).
  jq -c '.status.devices' "$WORK/dra-vfio.rc.json"
  jq -e --arg d "$dev" --arg drv "$DRV" '.status.devices[] | select(.device == $d and .driver == $drv)
      | .data.kind == "VfConfig" and .data.driver == "vfio-pci" and .data.netAttachDefName == "vf-net"' "$WORK/dra-vfio.rc.json" >/dev/null \
    || { fail "the claim's status.devices lacks the driver's entry for $dev"; return 1; }
  if [ $stand_in = 1 ]; then
    K -n lane exec dra-vfio -- env | grep -x "SRIOVNETWORK_${dev//-/_}_VFIO_DEVICE=/dev/vfio/$group" \
      || { fail "the pod lacks SRIOVNETWORK_${dev//-/_}_VFIO_DEVICE"; return 1; }
    K -n lane exec dra-vfio -- ls -l "/dev/vfio/$group" /dev/vfio/vfio || { fail "the pod has no /dev/vfio nodes"; return 1; }
  fi
  K -n lane delete pod dra-vfio --wait=true --timeout=60s
  check_unprepared dra-vfio || return 1
  # The binding before the claim: iavf, no override, its netdev back.
  [ "$(dra_vf_binding "$addr")" = "iavf (null)" ] || { fail "$addr is '$(dra_vf_binding "$addr")' after unprepare, not 'iavf (null)'"; return 1; }
  ls "$SIM/sys/bus/pci/devices/$addr/net" | grep -q . || { fail "$addr has no netdev after unprepare"; return 1; }
  dra_log | grep "VF driver restored" | grep -q "$addr" || { fail "no 'VF driver restored' log line for $addr"; return 1; }
  K -n lane delete resourceclaim vf-vfio --wait=true --timeout=30s
  if [ $stand_in = 1 ]; then rm -rf /dev/vfio; fi
}

# The VF attached to the pod's network through Multus, the lane's v4.2.2
# (thin plugin). Multus reads the pod's DRA devices from the kubelet's
# PodResources API (KubeletPodResourcesDynamicResources, beta and on in
# 1.34): per claim, the CDI IDs of its devices, keyed by the ResourceClaim's
# name; it hands the part after "=" to the CNI of the NAD whose
# k8s.v1.cni.cncf.io/resourceName is that claim name, as deviceID. Our CDI
# device names are the VFs' PCI addresses (prepare.rs cdi_device_name), so
# the sriov CNI gets the VF. Keyed by the claim's own name: a standalone
# claim, named as the NAD's resourceName.
dra_multus_attach() {
  local claim=dra-net1 uid dev addr orig mac before vf name
  dra_claim "$claim"
  K apply -f - <<EOF
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: dra-net
  namespace: lane
  annotations:
    k8s.v1.cni.cncf.io/resourceName: $claim
spec:
  config: '{"cniVersion": "1.0.0", "name": "dra-net", "type": "sriov",
    "dataDir": "$STATE/cni/sriov", "logFile": "$STATE/logs/sriov-cni.log", "logLevel": "debug",
    "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam-dra",
             "ranges": [[{"subnet": "10.56.218.0/24", "rangeStart": "10.56.218.9", "rangeEnd": "10.56.218.9"}]]}}'
EOF
  # The netdev name and MAC of every VF of the DRA PF before.
  before=$WORK/dra-vfs.before
  : >"$before"
  for vf in "$SIM/sys/bus/pci/devices/$DRA_PF_ADDR"/virtfn*; do
    vf=$(basename "$(readlink -f "$vf")")
    for name in $(ls "$SIM/sys/bus/pci/devices/$vf/net" 2>/dev/null); do
      echo "$vf $name $(cat "/sys/class/net/$name/address")" >>"$before"
    done
  done
  cat "$before"
  dra_claim_pod dra-multus "resourceClaimName: $claim" '[{"name": "dra-net", "interface": "net1"}]'
  K -n lane wait --for=condition=Ready pod/dra-multus --timeout=120s || { grep -F dra-multus "$STATE/logs/multus.log" | tail -5; return 1; }
  check_prepared dra-multus || return 1
  read -r claim uid dev addr <"$WORK/dra-multus.claim"
  read -r _ orig mac < <(awk -v p="$addr" '$1==p' "$before")
  [ -n "$orig" ] || { fail "no host netdev recorded for $addr"; return 1; }
  say "claim $claim: VF $addr, host netdev $orig ($mac)"
  # Multus gave the CNI the VF's address as deviceID: the sriov CNI's
  # allocation record of that VF (docs/cni.md).
  [ -f "$STATE/cni/sriov/pci/$addr" ] || { fail "no sriov CNI allocation record for $addr (deviceID not passed?)"; ls "$STATE/cni/sriov/pci"; return 1; }
  # The VF's netdev is the pod's net1: its MAC, the IPAM address, gone from the host.
  K -n lane exec dra-multus -- ip -o addr show dev net1 | tee "$WORK/dra-net1.addr"
  grep -q 'inet 10.56.218.9/24' "$WORK/dra-net1.addr" || { fail "net1 lacks the IPAM address 10.56.218.9/24"; return 1; }
  [ "$(K -n lane exec dra-multus -- cat /sys/class/net/net1/address)" = "$mac" ] || { fail "net1 is not $addr's netdev (MAC)"; return 1; }
  ! ip link show "$orig" >/dev/null 2>&1 || { fail "$orig still in the host namespace"; return 1; }
  K -n lane get pod dra-multus -o jsonpath='{.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}' | tee "$WORK/dra-net.status"; echo
  jq -e '.[] | select(.interface == "net1" and .name == "lane/dra-net")' "$WORK/dra-net.status" >/dev/null || { fail "network-status lacks net1"; return 1; }
  # Deleted: the CNI gives the netdev back under its name, then the claim is unprepared.
  K -n lane delete pod dra-multus --wait=true --timeout=60s
  back() { ip link show "$orig" >/dev/null 2>&1; }
  wait_until 30 "$orig back in the host namespace" back || return 1
  check_unprepared dra-multus || return 1
  K -n lane delete resourceclaim "$claim" --wait=true --timeout=30s
  K -n lane delete network-attachment-definitions.k8s.cni.cncf.io dra-net
}

# What the kubelet and the driver's pod did after a kill: the container
# statuses, the pod's events, the driver's log and the kubelet's plugin
# registration lines (a flake here once timed out without a trace).
dra_restart_debug() {
  local pod=$1
  say "---- debug: driver pod $pod after the kill ----"
  K -n "$DRA_NS" get pod "$pod" -o json | jq -c '.status.containerStatuses[] | {restartCount, ready, started, state, lastState}'
  K -n "$DRA_NS" get events --field-selector "involvedObject.name=$pod" \
    -o custom-columns=TIME:.lastTimestamp,REASON:.reason,MESSAGE:.message 2>&1 | tail -15
  dra_log | tail -25
  ls -l "$DRA_REGISTRY" "$DRA_PLUGIN_DIR" 2>&1
  grep -E "$DRV|RegisterPlugin|plugin_watcher|pluginwatcher|reconciler" "$STATE/logs/kubelet.log" | tail -30
}

# SRIOV_LANE_DRA_KILLS=N (default 1): kill and wait for the restart N times
# before the claim is released (a soak for this step).
dra_restart_mid_claim() {
  dra_claim vf-restart
  dra_claim_pod dra-restart "resourceClaimName: vf-restart"
  K -n lane wait --for=condition=Ready pod/dra-restart --timeout=120s
  check_prepared dra-restart || return 1
  local pod cid restarts round s
  pod=$(K -n "$DRA_NS" get pods -l app=sriov-dra-driver -o jsonpath='{.items[0].metadata.name}')
  again() {
    [ "$(K -n "$DRA_NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].restartCount}')" -gt "$restarts" ] &&
    [ "$(K -n "$DRA_NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].ready}')" = true ] &&
    [ "$(K -n "$DRA_NS" logs "$pod" | grep -c 'registered with the kubelet')" -ge 1 ]
  }
  # The driver has not restarted before (a crash would be a bug; it would also
  # put the kubelet's crash-loop back-off in front of the restart below).
  restarts=$(K -n "$DRA_NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].restartCount}')
  [ "$restarts" = 0 ] || { fail "the driver container restarted $restarts times before the kill"; dra_restart_debug "$pod"; return 1; }
  for round in $(seq "${SRIOV_LANE_DRA_KILLS:-1}"); do
    # SIGKILL to the driver's container (by its id): no clean stop, stale sockets.
    cid=$(K -n "$DRA_NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].containerID}'); cid=${cid#containerd://}
    restarts=$(K -n "$DRA_NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].restartCount}')
    s=$(now_ms)
    "$REPO/scripts/cluster.sh" ctr -n k8s.io task kill -s SIGKILL "$cid"
    say "driver container $cid killed (round $round, restarts so far $restarts)"
    [ -S "$(dra_reg_sock "$(dra_pod_uid "$pod")")" ] && say "registration socket left behind (expected after SIGKILL)"
    # The first restart is immediate; after that the kubelet backs off
    # 10 s, doubling, at most 300 s, and starts the container up to ~10 s
    # after the back-off ends (measured: 17 s and 34 s for rounds 2 and 3).
    local backoff=0
    [ "$restarts" -gt 0 ] && backoff=$((10 << (restarts - 1))) && [ $backoff -gt 300 ] && backoff=300
    wait_until $((90 + backoff)) "the driver restarted and registered again" again || { dra_restart_debug "$pod"; return 1; }
    say "restarted and registered again in $(($(now_ms) - s)) ms"
  done
  K -n lane delete pod dra-restart --wait=true --timeout=60s
  check_unprepared dra-restart || return 1
  # Only the new process logged the unprepare.
  local uid; uid=$(awk '{print $2}' "$WORK/dra-restart.claim")
  K -n "$DRA_NS" logs "$pod" | sed 's/\x1b\[[0-9;]*m//g' | grep "claim unprepared" | grep -q "uid=$uid" \
    || { fail "the restarted driver did not unprepare $uid"; return 1; }
  K -n lane delete resourceclaim vf-restart --wait=true --timeout=30s
}

# GPU–NIC pairing: a second driver (the fake GPU driver example, a host
# process) publishes two GPUs, one on a PCIe root of its own listed first,
# one on lnp0's root. A claim for a VF and a GPU with matchAttribute
# resource.kubernetes.io/pcieRoot gets the GPU on the VF's root; a claim
# that may only have the other GPU is not allocated.
# A rolling update as the chart sets it up (maxSurge 1, maxUnavailable 0,
# POD_UID, readiness = registered with the kubelet): the new pod starts
# beside the old one on sockets named after its UID, the kubelet registers
# it, it turns Ready, and only then is the old pod stopped, removing its own
# sockets and no other. A claim the old instance prepared is unprepared by
# the new one (the checkpoint is shared under a lock).
dra_rolling_update() {
  dra_claim vf-roll
  dra_claim_pod dra-roll "resourceClaimName: vf-roll"
  K -n lane wait --for=condition=Ready pod/dra-roll --timeout=120s
  check_prepared dra-roll || return 1
  local old old_uid new new_uid uid t_registered t_stopped logpid
  old=$(dra_pod); old_uid=$(dra_pod_uid "$old")
  K -n "$DRA_NS" wait --for=condition=Ready "pod/$old" --timeout=30s
  # The old pod's log to its end (it is deleted by the update).
  K -n "$DRA_NS" logs -f "$old" >"$WORK/dra-roll-old.log" 2>&1 &
  logpid=$!
  K -n "$DRA_NS" rollout restart ds/sriov-dra-driver
  both() { [ -S "$(dra_reg_sock "$old_uid")" ] && [ "$(dra_reg_socks | wc -l)" -ge 2 ]; }
  wait_until 60 "a second instance's sockets beside $old's" both || { kill "$logpid" 2>/dev/null; return 1; }
  say "both instances serving: $(dra_reg_socks | xargs -n1 basename | tr '\n' ' ')"
  K -n "$DRA_NS" rollout status ds/sriov-dra-driver --timeout=120s || { kill "$logpid" 2>/dev/null; return 1; }
  old_gone() { ! K -n "$DRA_NS" get pod "$old" >/dev/null 2>&1; }
  wait_until 60 "the old pod $old gone" old_gone || { kill "$logpid" 2>/dev/null; return 1; }
  wait "$logpid" 2>/dev/null || true
  new=$(dra_pod); new_uid=$(dra_pod_uid "$new")
  [ "$new_uid" != "$old_uid" ] || { fail "no new pod"; return 1; }
  # Only the new instance's sockets are left.
  [ "$(dra_reg_socks)" = "$(dra_reg_sock "$new_uid")" ] && [ -S "$(dra_sock "$new_uid")" ] \
    || { fail "sockets after the update: $(dra_reg_socks | tr '\n' ' ') $(ls "$DRA_PLUGIN_DIR")"; return 1; }
  [ ! -e "$(dra_sock "$old_uid")" ] || { fail "the old instance's DRA socket is left"; return 1; }
  # No gap: the new instance was registered before the old one stopped.
  local l_reg l_stop
  l_reg=$(K -n "$DRA_NS" logs "$new" | sed 's/\x1b\[[0-9;]*m//g' | grep -m1 'registered with the kubelet') \
    || { fail "the new instance was not registered"; return 1; }
  l_stop=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/dra-roll-old.log" | grep -m1 'sockets removed') \
    || { fail "the old instance did not stop cleanly"; tail -5 "$WORK/dra-roll-old.log"; return 1; }
  t_registered=$(log_ms "$l_reg"); t_stopped=$(log_ms "$l_stop")
  say "new instance registered $((t_stopped - t_registered)) ms before the old one stopped"
  [ "$t_registered" -lt "$t_stopped" ] || { fail "the old instance stopped before the new one was registered"; return 1; }
  timing "dra_rolling_update_overlap_ms" "$((t_stopped - t_registered))"
  # The old instance's claim, unprepared by the new one.
  K -n lane delete pod dra-roll --wait=true --timeout=60s
  check_unprepared dra-roll || return 1
  uid=$(awk '{print $2}' "$WORK/dra-roll.claim")
  K -n "$DRA_NS" logs "$new" | sed 's/\x1b\[[0-9;]*m//g' | grep "claim unprepared" | grep -q "uid=$uid" \
    || { fail "the new instance did not unprepare $uid"; return 1; }
  K -n lane delete resourceclaim vf-roll --wait=true --timeout=30s
}

dra_pcie_root_pairing() {
  local root bin far=0000:d8:00.0 near=0000:3c:00.0
  root=$(readlink -f "$SIM/sys/bus/pci/devices/$DRA_PF_ADDR" | grep -o 'pci[0-9a-f]\{4\}:[0-9a-f]\{2\}' | head -1)
  bin=${CARGO_TARGET_DIR:-target}/$PROFILE/examples/fake_gpu_driver
  [ -x "$bin" ] || { fail "$bin not built"; return 1; }
  # Its pid file makes `cluster.sh down` stop it if the lane ends early.
  KUBECONFIG=$STATE/kubeconfig setsid "$bin" --node-name "$NODE" --gpus "$far=pci0000:d7,$near=$root" \
    >"$STATE/logs/fake-gpu-driver.log" 2>&1 </dev/null 9>&- &
  echo $! >"$STATE/pids/fake-gpu-driver.pid"
  gpu_registered() { grep -q 'registered with the kubelet' "$STATE/logs/fake-gpu-driver.log"; }
  wait_until 60 "the fake GPU driver registered" gpu_registered || { cat "$STATE/logs/fake-gpu-driver.log"; return 1; }
  K get resourceslices --field-selector "spec.nodeName=$NODE,spec.driver=gpu.example.com" -o json \
    | jq -c '.items[].spec.devices[] | {name, root: .attributes["resource.kubernetes.io/pcieRoot"].string}'
  K apply -f - <<EOF
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata: {name: gpu.example.com}
spec:
  selectors:
  - cel: {expression: "device.driver == 'gpu.example.com'"}
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: vf-and-gpu, namespace: lane}
spec:
  spec:
    devices:
      requests:
      - name: vf
        exactly: {deviceClassName: $DRV}
      - name: gpu
        exactly: {deviceClassName: gpu.example.com}
      constraints:
      - matchAttribute: resource.kubernetes.io/pcieRoot
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: vf-and-far-gpu, namespace: lane}
spec:
  spec:
    devices:
      requests:
      - name: vf
        exactly: {deviceClassName: $DRV}
      - name: gpu
        exactly:
          deviceClassName: gpu.example.com
          selectors:
          - cel: {expression: "device.attributes['resource.kubernetes.io'].pciBusID == '$far'"}
      constraints:
      - matchAttribute: resource.kubernetes.io/pcieRoot
EOF
  dra_claim_pod dra-pair "resourceClaimTemplateName: vf-and-gpu"
  dra_claim_pod dra-far "resourceClaimTemplateName: vf-and-far-gpu"
  K -n lane wait --for=condition=Ready pod/dra-pair --timeout=120s
  local claim; claim=$(K -n lane get pod dra-pair -o jsonpath='{.status.resourceClaimStatuses[0].resourceClaimName}')
  K -n lane get resourceclaim "$claim" -o json >"$WORK/pair.json"
  jq -c '.status.allocation.devices.results[] | {request, driver, device}' "$WORK/pair.json"
  [ "$(jq -r '.status.allocation.devices.results[] | select(.request=="gpu") | .device' "$WORK/pair.json")" = "gpu-$(tr ':.' '--' <<<"$near")" ] \
    || { fail "the GPU allocated is not the one on the VF's PCIe root $root"; return 1; }
  [ "$(jq -r '.status.allocation.devices.results[] | select(.request=="vf") | .driver' "$WORK/pair.json")" = "$DRV" ] || { fail "vf request"; return 1; }
  grep 'gpu claim prepared' "$STATE/logs/fake-gpu-driver.log" || { fail "the GPU driver did not prepare"; return 1; }
  # The far GPU shares no root with any VF: never allocated.
  sleep 5
  [ "$(K -n lane get pod dra-far -o jsonpath='{.status.phase}')" = Pending ] || { fail "dra-far is not Pending"; return 1; }
  K -n lane get pod dra-far -o jsonpath='{.status.conditions[?(@.type=="PodScheduled")].message}'; echo
  [ "$(K -n lane get pod dra-far -o jsonpath='{.status.conditions[?(@.type=="PodScheduled")].reason}')" = Unschedulable ] \
    || { fail "dra-far not Unschedulable"; return 1; }
  K -n lane delete pod dra-pair dra-far --wait=true --timeout=60s
  K -n lane delete resourceclaimtemplate vf-and-gpu vf-and-far-gpu
  kill -TERM "$(cat "$STATE/pids/fake-gpu-driver.pid")"; rm -f "$STATE/pids/fake-gpu-driver.pid"
  K delete deviceclass gpu.example.com
  K delete resourceslices --field-selector "spec.nodeName=$NODE,spec.driver=gpu.example.com"
}

dra_removed() {
  K delete -f "$WORK/dra.yaml" --wait=true --timeout=60s
  # SIGTERM: the driver removes both sockets.
  gone() { [ -z "$(dra_reg_socks)" ] && ! ls "$DRA_PLUGIN_DIR"/dra*.sock >/dev/null 2>&1; }
  wait_until 30 "the driver's sockets removed" gone
  if ls "$CDI_DIR"/sriov-rs-dra_*.json 2>/dev/null; then fail "CDI specs left"; return 1; fi
}
