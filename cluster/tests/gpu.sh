# GPU-aware preferred allocation in the cluster lane (docs/device-plugin.md
# "GPU-aware preferred allocation", docs/cluster.md): sourced by
# cluster/tests/lane.sh, whose helpers (t, K, say, fail, wait_until, timing,
# now_ms, numvfs, state_json) and variables (REPO, STATE, SIM, NODE, NS_OP,
# DP_NS, WORK, PROFILE) it uses. Helm mode only (the operator renders the
# device plugin's pool from a policy). Steps:
#   gpu_pool_ready     a policy gives lng0 and lng1 (each under a PCIe switch
#                      of its own, next to a simulated GPU: cluster/tests/
#                      node.yaml) 2 VFs each, one pool; the device plugin has
#                      the kubelet's PodResources directory mounted
#   gpu_near_vf_b/_a   the fake GPU device plugin (device-plugin/examples/
#                      fake_gpu_plugin.rs, a host process) advertises one GPU
#                      as amd.com/gpu; a pod whose first container takes the
#                      GPU and whose second takes a VF of the pool gets a VF
#                      of the PF under the GPU's switch. First the GPU next
#                      to lng1, then the one next to lng0: the plain policy
#                      picks the same PF both times, so it cannot pass both.
#   gpu_pool_removed   the policy deleted: VFs reset, the pool leaves the
#                      device plugin's config (before the lane's own policy
#                      is deleted, whose step expects an empty config).
GPU_RES=amd.com/gpu
GPU_POOL=intel.com/lane_gpu_vfs
GPU_POOL_ENV=PCIDEVICE_INTEL_COM_LANE_GPU_VFS
# GPU -> the PF under the same switch (cluster/tests/node.yaml).
GPU_A=0000:53:00.0 GPU_PF_A=0000:54:00.0
GPU_B=0000:63:00.0 GPU_PF_B=0000:64:00.0

gpu_node_res() { K get node "$NODE" -o json | jq -r --arg r "$1" ".status.$2[\$r] // \"0\""; }
gpu_dp_log() { K -n "$DP_NS" logs -l app=sriov-device-plugin --tail=-1 | sed 's/\x1b\[[0-9;]*m//g'; }

gpu_pool_ready() {
  # The device plugin the operator runs has the PodResources mount.
  K -n "$DP_NS" get ds sriov-device-plugin -o json >"$WORK/gpu-dp.json"
  [ "$(jq -r '.spec.template.spec.volumes[] | select(.name=="pod-resources") | .hostPath.path' "$WORK/gpu-dp.json")" = /var/lib/kubelet/pod-resources ] \
    || { fail "the device plugin DaemonSet has no pod-resources hostPath volume"; return 1; }
  [ "$(jq -r '.spec.template.spec.containers[0].volumeMounts[] | select(.name=="pod-resources") | "\(.mountPath) \(.readOnly)"' "$WORK/gpu-dp.json")" = "/host/var/lib/kubelet/pod-resources true" ] \
    || { fail "pod-resources not mounted read-only at /host/var/lib/kubelet/pod-resources"; return 1; }
  gpu_dp_log | grep -m1 'GPU-aware preferred allocation' || { fail "the device plugin did not turn GPU pairing on"; return 1; }
  local s; s=$(now_ms)
  K apply -f - <<EOF || return 1
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: lane-gpu, namespace: $NS_OP}
spec:
  resourceName: lane_gpu_vfs
  nodeSelector: {sriov-rs.io/lane: "true"}
  numVfs: 2
  nicSelector: {pfNames: ["lng0", "lng1"]}
  deviceType: netdevice
EOF
  two_each() { [ "$(numvfs $GPU_PF_A)" = 2 ] && [ "$(numvfs $GPU_PF_B)" = 2 ] && [ "$(state_json | jq -r .status.syncStatus)" = Succeeded ]; }
  wait_until 90 "lng0 and lng1 with 2 VFs each, node state Succeeded" two_each || return 1
  four() { [ "$(gpu_node_res $GPU_POOL allocatable)" = 4 ]; }
  wait_until 60 "node allocatable $GPU_POOL = 4" four || return 1
  timing "gpu_policy_apply_to_pool_allocatable_ms" "$(( $(now_ms) - s ))"
  K create namespace lane --dry-run=client -o yaml | K apply -f - >/dev/null
}

# gpu_plugin GPU: (re)starts the fake GPU device plugin with that one GPU.
gpu_plugin() {
  if [ -f "$STATE/pids/fake-gpu-plugin.pid" ]; then
    # The previous GPU leaves the node first, so the pod cannot be placed
    # on what the kubelet still counts of it.
    gpu_plugin_stop
    none() { [ "$(gpu_node_res $GPU_RES allocatable)" = 0 ]; }
    wait_until 60 "node allocatable $GPU_RES = 0 after the fake GPU plugin stopped" none || return 1
  fi
  local bin=${CARGO_TARGET_DIR:-target}/$PROFILE/examples/fake_gpu_plugin log=$STATE/logs/fake-gpu-plugin.log before
  [ -x "$bin" ] || { fail "$bin not built"; return 1; }
  touch "$log"
  before=$(grep -c 'registered with the kubelet' "$log") || true
  setsid "$bin" --gpus "$1" --numa 0 --resource "$GPU_RES" >>"$log" 2>&1 </dev/null 9>&- &
  echo $! >"$STATE/pids/fake-gpu-plugin.pid"
  registered() { [ "$(grep -c 'registered with the kubelet' "$log")" -gt "${before:-0}" ]; }
  wait_until 30 "the fake GPU plugin registered with $1" registered || { tail -5 "$log"; return 1; }
  one() { [ "$(gpu_node_res $GPU_RES allocatable)" = 1 ]; }
  wait_until 60 "node allocatable $GPU_RES = 1" one
}
gpu_plugin_stop() {
  local f=$STATE/pids/fake-gpu-plugin.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null && say "the fake GPU plugin ($pid) ignored SIGTERM: killed" || true
  rm -f "$f"
}

# gpu_near_vf NAME GPU PF: a pod (GPU container, then VF container) gets a
# VF of PF.
gpu_near_vf() {
  local name=$1 gpu=$2 pf=$3
  gpu_plugin "$gpu" || return 1
  K apply -f - <<EOF || return 1
apiVersion: v1
kind: Pod
metadata: {name: $name, namespace: lane}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: gpu
    image: sriov-rs.local/test:1
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    resources:
      requests: {$GPU_RES: "1"}
      limits: {$GPU_RES: "1"}
  - name: net
    image: sriov-rs.local/test:1
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    resources:
      requests: {$GPU_POOL: "1"}
      limits: {$GPU_POOL: "1"}
EOF
  K -n lane wait --for=condition=Ready "pod/$name" --timeout=90s || return 1
  local got vf vfpf
  got=$(K -n lane exec "$name" -c gpu -- env | sed -n 's/^FAKE_GPU_DEVICES=//p')
  vf=$(K -n lane exec "$name" -c net -- env | sed -n "s/^$GPU_POOL_ENV=//p")
  vfpf=$(basename "$(readlink "$SIM/sys/bus/pci/devices/$vf/physfn")")
  say "$name: GPU $got (container gpu), VF $vf of PF $vfpf (container net); want a VF of $pf"
  gpu_dp_log | grep "preferring devices near the GPUs" | grep "lane/$name" | tail -1 || true
  K -n lane delete pod "$name" --wait=true --timeout=60s >/dev/null
  [ "$got" = "$gpu" ] || { fail "the pod got GPU '$got', want $gpu"; return 1; }
  [ "$vfpf" = "$pf" ] || { fail "VF $vf is on PF $vfpf, not on $pf under GPU $gpu's switch"; return 1; }
  gpu_dp_log | grep "preferring devices near the GPUs" | grep -q "lane/$name" \
    || { fail "the device plugin did not log a GPU pairing for lane/$name"; return 1; }
}
gpu_near_vf_b() { gpu_near_vf gpu-pair-b "$GPU_B" "$GPU_PF_B"; }
gpu_near_vf_a() { gpu_near_vf gpu-pair-a "$GPU_A" "$GPU_PF_A"; }

gpu_pool_removed() {
  gpu_plugin_stop
  K -n "$NS_OP" delete sriovnetworknodepolicy lane-gpu --wait=false || return 1
  zero() { [ "$(numvfs $GPU_PF_A)" = 0 ] && [ "$(numvfs $GPU_PF_B)" = 0 ]; }
  wait_until 90 "lng0 and lng1 back to 0 VFs" zero || return 1
  no_pool() { ! K -n "$NS_OP" get cm device-plugin-config -o json | jq -r --arg n "$NODE" '.data[$n]' | grep -q lane_gpu_vfs; }
  wait_until 30 "lane_gpu_vfs gone from the device-plugin config" no_pool
}
