#!/usr/bin/env bash
# A single-node Kubernetes 1.34 on this machine, without Docker (issue 13;
# docs/cluster.md). Everything runs as background processes of this script;
# state and logs live under $SRIOV_CLUSTER_DIR (default /var/lib/sriov-rs-cluster).
#
#   scripts/cluster.sh up [--no-node]   start (the last line printed is KUBECONFIG=<path>)
#   scripts/cluster.sh down             stop everything, remove mounts, netns, veths,
#                                       cgroups, iptables rules, containerd state
#   scripts/cluster.sh status           what runs, the node's condition
#   scripts/cluster.sh kubectl ARGS…    the matching kubectl against the cluster
#   scripts/cluster.sh ctr ARGS…        the lane's ctr against the lane's containerd
#   scripts/cluster.sh restart kubelet  stop and start the kubelet (tests)
#   scripts/cluster.sh build            build/cache the Go binaries only
#
# Binaries are built from Go modules in cluster/tools/<name>/ once per machine
# and cached by version under $SRIOV_CACHE_DIR (default /var/cache/sriov-rs).
set -Eeuo pipefail
# The caller (cluster/tests/lane.sh, the demo, the scale run) may hold the
# machine's cluster lock on fd 9; the daemons started here must not inherit
# it, or a cluster left up would hold the lock for as long as it runs.
exec 9>&-
cd "$(dirname "$0")/.."
REPO=$(pwd)

STATE=${SRIOV_CLUSTER_DIR:-/var/lib/sriov-rs-cluster}
CACHE=${SRIOV_CACHE_DIR:-/var/cache/sriov-rs}
K8S_VERSION=v1.34.4
ETCD_VERSION=v3.6.16
MULTUS_VERSION=v4.2.2
# containerd 2 (CDI device injection on by default); Debian bookworm's 1.6 has none.
CONTAINERD_VERSION=v2.4.2
K8S_BIN=$CACHE/k8s-$K8S_VERSION/bin
ETCD_BIN=$CACHE/etcd-$ETCD_VERSION/bin
MULTUS_BIN=$CACHE/multus-$MULTUS_VERSION/bin
CTRD_BIN=$CACHE/containerd-$CONTAINERD_VERSION/bin
# Alpha in 1.34, on in the API server (pod status allocatedResourcesStatus)
# and the kubelet (it watches DRA drivers' DRAResourceHealth).
FEATURE_GATES=ResourceHealthStatus=true

NODE_NAME=${SRIOV_CLUSTER_NODE:-sriov-rs-node}
# Addresses. Nothing listens on anything but 127.0.0.1; the node IP lives on
# the lane's own pod bridge and is NATed to 127.0.0.1 for local processes.
APISERVER_PORT=16443
ETCD_CLIENT=127.0.0.1:23791
ETCD_PEER=127.0.0.1:23792
BRIDGE=sriovrs0
POD_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/24
SERVICE_IP=10.96.0.1
CHAIN=SRIOV-RS-LANE
CGROUP_PARENT=sriov-rs-cluster

PKI=$STATE/pki
LOGS=$STATE/logs
PIDS=$STATE/pids
CTRD=$STATE/containerd
CTRD_SOCK=$CTRD/containerd.sock
CNI_BIN=$STATE/cni/bin
CNI_CONF=$STATE/cni/net.d
KUBECONFIG_ADMIN=$STATE/kubeconfig
IMAGES=$CACHE/images

# containerd finds its shim (containerd-shim-runc-v2) on PATH.
export PATH="$K8S_BIN:$ETCD_BIN:$CTRD_BIN:$HOME/.cargo/bin:/usr/local/go/bin:$PATH"

trap 'echo "[cluster] failed at line $LINENO: $BASH_COMMAND" >&2' ERR
log() { printf '[cluster %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

kubectl_() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# wait_for SECONDS WHAT CMD…: poll CMD every 0.5 s.
wait_for() {
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then log "timed out after ${t}s waiting for $what"; return 1; fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------- build ---

K8S_LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34 -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"

build_go_tools() {
  command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
  local c s
  mkdir -p "$K8S_BIN" "$ETCD_BIN" "$MULTUS_BIN" "$CTRD_BIN"
  for c in kube-apiserver kubelet kube-controller-manager kube-scheduler kubectl; do
    [ -x "$K8S_BIN/$c" ] && continue
    log "building $c $K8S_VERSION (cold: several minutes on 2 cores)"
    s=$SECONDS
    (cd cluster/tools/k8s && CGO_ENABLED=0 go build -trimpath -ldflags "$K8S_LDFLAGS" \
      -o "$K8S_BIN/.$c.tmp" "k8s.io/kubernetes/cmd/$c") && mv "$K8S_BIN/.$c.tmp" "$K8S_BIN/$c"
    log "built $c in $((SECONDS - s))s"
  done
  if [ ! -x "$ETCD_BIN/etcd" ]; then
    log "building etcd $ETCD_VERSION"
    (cd cluster/tools/etcd && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ETCD_BIN/.etcd.tmp" .) \
      && mv "$ETCD_BIN/.etcd.tmp" "$ETCD_BIN/etcd"
  fi
  if [ ! -x "$MULTUS_BIN/multus" ]; then
    log "building multus (thin plugin) $MULTUS_VERSION"
    (cd cluster/tools/multus && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
      -o "$MULTUS_BIN/.multus.tmp" gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus) \
      && mv "$MULTUS_BIN/.multus.tmp" "$MULTUS_BIN/multus"
  fi
  for c in containerd containerd-shim-runc-v2 ctr; do
    [ -x "$CTRD_BIN/$c" ] && continue
    log "building $c $CONTAINERD_VERSION"
    (cd cluster/tools/containerd && CGO_ENABLED=0 go build -trimpath -tags "no_btrfs no_devmapper no_zfs" \
      -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
      -o "$CTRD_BIN/.$c.tmp" "github.com/containerd/containerd/v2/cmd/$c") && mv "$CTRD_BIN/.$c.tmp" "$CTRD_BIN/$c"
  done
}

# ------------------------------------------------------------------ pki ---

# cert NAME CN O [SANS]: a key and a certificate signed by the lane's CA.
cert() {
  local name=$1 cn=$2 o=$3 sans=${4:-} subj
  [ -f "$PKI/$name.crt" ] && return 0
  subj="/CN=$cn"; [ -n "$o" ] && subj="/O=$o$subj"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$sans" ]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$sans"
    else echo "extendedKeyUsage=clientAuth"; fi
  } >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

kubeconfig() { # kubeconfig FILE CERTNAME
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sriov-rs
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: sriov-rs
  context: {cluster: sriov-rs, user: $2}
current-context: sriov-rs
EOF
}

make_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  if [ ! -f "$PKI/ca.crt" ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=sriov-rs-lane-ca" -days 30 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$PKI/ca.crt" 2>/dev/null
  fi
  [ -f "$PKI/sa.key" ] || { openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null; openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null; }
  cert apiserver kube-apiserver "" "IP:127.0.0.1,IP:$SERVICE_IP,IP:$NODE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin kubernetes-admin system:masters
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert controller-manager system:kube-controller-manager ""
  cert scheduler system:kube-scheduler ""
  cert kubelet "system:node:$NODE_NAME" system:nodes
  cert kubelet-serving "system:node:$NODE_NAME" system:nodes "IP:127.0.0.1,IP:$NODE_IP,DNS:$NODE_NAME"
  cert multus sriov-rs-lane:multus ""
  kubeconfig "$KUBECONFIG_ADMIN" admin
  kubeconfig "$PKI/controller-manager.kubeconfig" controller-manager
  kubeconfig "$PKI/scheduler.kubeconfig" scheduler
  kubeconfig "$PKI/kubelet.kubeconfig" kubelet
  kubeconfig "$PKI/multus.kubeconfig" multus
}

# ------------------------------------------------------------- processes ---

# start NAME CMD…: a background process in its own session, logs in $LOGS/NAME.log.
start() {
  local name=$1; shift
  if running "$name"; then log "$name already running"; return 0; fi
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}
pid_of() { [ -f "$PIDS/$1.pid" ] && cat "$PIDS/$1.pid"; }
running() { local p; p=$(pid_of "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
stop() { # stop NAME [SECONDS]
  local name=$1 t=${2:-10} p
  p=$(pid_of "$name") || return 0
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null || true
    local end=$((SECONDS + t))
    while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.2; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
  fi
  rm -f "$PIDS/$name.pid"
}

# ------------------------------------------------------------- control plane ---

start_etcd() {
  start etcd "$ETCD_BIN/etcd" --name lane --data-dir "$STATE/etcd" \
    --listen-client-urls "http://$ETCD_CLIENT" --advertise-client-urls "http://$ETCD_CLIENT" \
    --listen-peer-urls "http://$ETCD_PEER" --initial-advertise-peer-urls "http://$ETCD_PEER" \
    --initial-cluster "lane=http://$ETCD_PEER" --unsafe-no-fsync --log-level warn
}

start_apiserver() {
  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://$ETCD_CLIENT" \
    --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" --advertise-address "$NODE_IP" \
    --endpoint-reconciler-type none \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true --profiling=false --cert-dir "$PKI" \
    --enable-aggregator-routing=true \
    --feature-gates "$FEATURE_GATES" \
    --storage-media-type application/vnd.kubernetes.protobuf
}

start_controllers() {
  start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$PKI/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$PKI/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$PKI/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10257 --leader-elect=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials=true --allocate-node-cidrs=false \
    --controllers '*,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller' \
    --profiling=false
  start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$PKI/scheduler.kubeconfig" \
    --authentication-kubeconfig "$PKI/scheduler.kubeconfig" \
    --authorization-kubeconfig "$PKI/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false --profiling=false
}

# RBAC and CRDs the node side needs (Multus: pods, NADs, events).
apply_lane_objects() {
  kubectl_ apply -f cluster/manifests/ >/dev/null
}

# ------------------------------------------------------------------- node ---

# The kubelet rewrites these host sysctls (setupKernelTunables) unless
# protectKernelDefaults is set, and with it set it refuses to start when they
# differ. The lane lets the kubelet set them and `down` puts back the values
# saved here (docs/cluster.md, "Host sysctls").
SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward)

save_sysctls() {
  [ -f "$STATE/sysctls.saved" ] && return 0
  local k
  for k in "${SYSCTLS[@]}"; do echo "$k=$(sysctl -n "$k")"; done >"$STATE/sysctls.saved"
}
restore_sysctls() {
  [ -f "$STATE/sysctls.saved" ] || return 0
  local line
  while IFS= read -r line; do sysctl -q -w "$line" >/dev/null 2>&1 || true; done <"$STATE/sysctls.saved"
  rm -f "$STATE/sysctls.saved"
}

# Host paths the node's pods may create (the sriov CNI's default state
# dir, used by NADs the operator renders): those missing at `up` are removed
# by `down`.
note_created_paths() {
  local p
  for p in /var/lib/cni/sriov /var/lib/cni /var/lib/sriov-config-daemon; do
    [ -e "$p" ] || echo "$p"
  done >>"$STATE/created-paths"
}

# Mount points the node needs shared (mount propagation):
# - /run/netns, as iproute2 makes it (a shared bind mount of itself) before
#   containerd pins pod namespaces there; if `ip netns` does it later, it
#   hides the pods' namespace mounts below its own and they can no longer
#   be deleted;
# - <state>/sim, the simulated node's root: pods mount it with
#   HostToContainer propagation (the host's / is a private mount here).
mounts_up() {
  mkdir -p /run/netns "$STATE/sim"
  if ! mountpoint -q /run/netns; then mount --bind /run/netns /run/netns; fi
  mount --make-shared /run/netns
  if ! mountpoint -q "$STATE/sim"; then mount --bind "$STATE/sim" "$STATE/sim"; fi
  mount --make-rshared "$STATE/sim"
}

network_up() {
  # The pod bridge, with the node IP: created here (before the kubelet, which
  # checks that the node IP is local); the bridge CNI plugin reuses it.
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$NODE_IP/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  fi
  # The service range goes nowhere (no kube-proxy; nothing may follow the
  # default route off the machine) except the API server's service IP, which
  # is local and NATed to 127.0.0.1:$APISERVER_PORT for host-network pods.
  ip route replace blackhole "$SERVICE_CIDR"
  ip route replace local "$SERVICE_IP/32" dev lo table local
  iptables -w -t nat -N "$CHAIN" 2>/dev/null || iptables -w -t nat -F "$CHAIN"
  iptables -w -t nat -C OUTPUT -j "$CHAIN" 2>/dev/null || iptables -w -t nat -I OUTPUT -j "$CHAIN"
  iptables -w -t nat -A "$CHAIN" -d "$SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "127.0.0.1:$APISERVER_PORT"
  # The node IP, from local processes (the API server to the kubelet, the
  # kubelet's probes of host-network pods): to 127.0.0.1, same port.
  iptables -w -t nat -A "$CHAIN" -d "$NODE_IP/32" -p tcp -j DNAT --to-destination 127.0.0.1
  # Pods on the bridge (the operator, the webhook server) reach the API
  # server's service IP too: a route to it via the bridge in every pod (CNI
  # config), DNATed here to 127.0.0.1:$APISERVER_PORT; the bridge alone
  # accepts 127.0.0.1 as a destination (route_localnet; gone with it at down).
  iptables -w -t nat -N "$CHAIN-PODS" 2>/dev/null || iptables -w -t nat -F "$CHAIN-PODS"
  iptables -w -t nat -C PREROUTING -i "$BRIDGE" -j "$CHAIN-PODS" 2>/dev/null || iptables -w -t nat -I PREROUTING -i "$BRIDGE" -j "$CHAIN-PODS"
  iptables -w -t nat -A "$CHAIN-PODS" -d "$SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "127.0.0.1:$APISERVER_PORT"
  sysctl -q -w "net.ipv4.conf.$BRIDGE.route_localnet=1" >/dev/null
  # Pods reach only their bridge: no forwarding anywhere else.
  iptables -w -N "$CHAIN" 2>/dev/null || iptables -w -F "$CHAIN"
  iptables -w -C FORWARD -j "$CHAIN" 2>/dev/null || iptables -w -I FORWARD -j "$CHAIN"
  iptables -w -A "$CHAIN" -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
  iptables -w -A "$CHAIN" -o "$BRIDGE" ! -i "$BRIDGE" -j DROP
  sysctl -q -w net.ipv4.conf.lo.route_localnet=0 >/dev/null 2>&1 || true
}

network_down() {
  iptables -w -t nat -D OUTPUT -j "$CHAIN" 2>/dev/null || true
  iptables -w -t nat -F "$CHAIN" 2>/dev/null || true
  iptables -w -t nat -X "$CHAIN" 2>/dev/null || true
  iptables -w -t nat -D PREROUTING -i "$BRIDGE" -j "$CHAIN-PODS" 2>/dev/null || true
  iptables -w -t nat -F "$CHAIN-PODS" 2>/dev/null || true
  iptables -w -t nat -X "$CHAIN-PODS" 2>/dev/null || true
  iptables -w -D FORWARD -j "$CHAIN" 2>/dev/null || true
  iptables -w -F "$CHAIN" 2>/dev/null || true
  iptables -w -X "$CHAIN" 2>/dev/null || true
  ip route del local "$SERVICE_IP/32" dev lo table local 2>/dev/null || true
  ip route del blackhole "$SERVICE_CIDR" 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
}

write_cni_config() {
  mkdir -p "$CNI_BIN" "$CNI_CONF" "$STATE/cni/ipam" "$STATE/cni/multus"
  local p
  for p in /usr/lib/cni/*; do ln -sf "$p" "$CNI_BIN/"; done
  install -m 755 "$MULTUS_BIN/multus" "$CNI_BIN/multus"
  # The primary network, as Multus' default delegate: Debian's bridge +
  # host-local, no masquerade, no default route in pods.
  local bridge_conf
  bridge_conf=$(cat <<EOF
{"cniVersion": "1.0.0", "name": "sriov-rs-pods", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": false,
   "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam",
            "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "10.244.0.10", "gateway": "$NODE_IP"}]],
            "routes": [{"dst": "$SERVICE_IP/32"}]}}
]}
EOF
)
  cat >"$CNI_CONF/00-multus.conf" <<EOF
{"cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus",
 "kubeconfig": "$PKI/multus.kubeconfig",
 "cniDir": "$STATE/cni/multus", "binDir": "$CNI_BIN",
 "logFile": "$LOGS/multus.log", "logLevel": "verbose",
 "delegates": [$bridge_conf]}
EOF
}

write_containerd_config() {
  mkdir -p "$CTRD"
  # Config version 3 (containerd 2). CDI: the DRA driver writes its specs
  # to /var/run/cdi; the kubelet hands the device IDs over CRI.
  cat >"$CTRD/config.toml" <<EOF
version = 3
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.erofs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "registry.k8s.io/pause:3.10"
[plugins."io.containerd.cri.v1.runtime"]
  enable_cdi = true
  cdi_spec_dirs = ["/etc/cdi", "/var/run/cdi"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$CNI_BIN"]
    conf_dir = "$CNI_CONF"
    max_conf_num = 1
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
}

# Cgroups: everything the kubelet creates goes under one parent per controller.
cgroups_up() {
  local c
  for c in /sys/fs/cgroup/*/; do
    case $c in */unified/) continue ;; esac
    mkdir -p "$c$CGROUP_PARENT"
  done
}

# kill_cgroup_procs: every process in the lane's cgroups (pods' containers).
kill_cgroup_procs() {
  local f p any=0
  for f in $(find /sys/fs/cgroup/*/"$CGROUP_PARENT" -name cgroup.procs 2>/dev/null || true); do
    # A cgroup removed meanwhile is fine (no ERR-trap noise for it).
    for p in $(cat "$f" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null && any=1; done
  done
  return 0
}

cgroups_down() {
  local d
  for d in /sys/fs/cgroup/*/"$CGROUP_PARENT"; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

start_containerd() {
  start containerd env SRIOV_HOST_ROOT="$STATE/sim" "$CTRD_BIN/containerd" --config "$CTRD/config.toml"
}

import_images() {
  local t
  for t in "$IMAGES"/*.tar; do
    "$CTRD_BIN/ctr" --address "$CTRD_SOCK" -n k8s.io images import --no-unpack=false "$t" >/dev/null \
      || die "importing $t failed"
  done
}

write_kubelet_config() {
  printf 'nameserver 127.0.0.1\noptions ndots:1\n' >"$STATE/resolv.conf"
  cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$CTRD_SOCK
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_PARENT
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
protectKernelDefaults: false
resolvConf: $STATE/resolv.conf
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
maxPods: 40
serializeImagePulls: false
registerNode: true
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
fileCheckFrequency: 10s
staticPodPath: $STATE/static-pods
featureGates: {ResourceHealthStatus: true}
EOF
  mkdir -p "$STATE/static-pods"
}

start_kubelet() {
  start kubelet "$K8S_BIN/kubelet" --config "$STATE/kubelet.yaml" \
    --kubeconfig "$PKI/kubelet.kubeconfig" --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_IP" \
    --node-labels "feature.node.kubernetes.io/network-sriov.capable=true,sriov-rs.io/lane=true" \
    --v 2
}

node_ready() {
  [ "$(kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# ---------------------------------------------------------------- commands ---

cmd_up() {
  local node=1
  [ "${1:-}" = --no-node ] && node=0
  [ "$(id -u)" = 0 ] || die "run as root"
  local t0=$SECONDS
  build_go_tools
  if [ $node = 1 ]; then
    bash images/build.sh --out "$IMAGES" base >&2 || die "images/build.sh failed"
    [ -f "$IMAGES/sriov-rs.tar" ] || log "no sriov-rs image yet (images/build.sh sriov-rs); DaemonSets of ours cannot run"
  fi
  if running kube-apiserver; then log "already up"; echo "KUBECONFIG=$KUBECONFIG_ADMIN"; return 0; fi
  mkdir -p "$STATE" "$LOGS" "$PIDS"
  echo "$node" >"$STATE/node"
  make_pki
  local t1=$SECONDS
  start_etcd
  if [ $node = 1 ]; then
    save_sysctls
    note_created_paths
    mounts_up
    network_up
    cgroups_up
    write_cni_config
    write_containerd_config
    write_kubelet_config
    start_containerd
  fi
  wait_for 30 etcd curl -fsS "http://$ETCD_CLIENT/health" || die "etcd did not start: $LOGS/etcd.log"
  start_apiserver
  wait_for 90 kube-apiserver kubectl_ get --raw /readyz || die "kube-apiserver not ready: $LOGS/kube-apiserver.log"
  log "API server ready after $((SECONDS - t1))s"
  if [ $node = 1 ]; then
    start_controllers
    apply_lane_objects
    wait_for 30 containerd "$CTRD_BIN/ctr" --address "$CTRD_SOCK" version || die "containerd did not start: $LOGS/containerd.log"
    import_images
    start_kubelet
    wait_for 90 "node $NODE_NAME Ready" node_ready || die "node not Ready: $LOGS/kubelet.log"
    log "node $NODE_NAME Ready after $((SECONDS - t1))s (total $((SECONDS - t0))s)"
  fi
  echo "KUBECONFIG=$KUBECONFIG_ADMIN"
}

# Unmount every mount point under the given prefixes, deepest first.
unmount_under() {
  local prefix m
  for prefix in "$@"; do
    { awk '{print $5}' /proc/self/mountinfo | grep -E "^${prefix}(/|$)" || true; } | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
  done
}

cmd_down() {
  [ "$(id -u)" = 0 ] || die "run as root"
  mkdir -p "$PIDS"
  # Pods first, while the kubelet runs: its CNI DEL gives VFs back.
  if running kubelet && running kube-apiserver; then
    kubectl_ delete daemonsets,deployments,pods --all -A --wait=false --ignore-not-found >/dev/null 2>&1 || true
    local end=$((SECONDS + 40))
    while [ $SECONDS -lt $end ] && [ -n "$(kubectl_ get pods -A --no-headers 2>/dev/null)" ]; do sleep 1; done
  fi
  stop kubelet 15
  stop kube-scheduler
  stop kube-controller-manager
  # The lane's simulated node (started by the tests under $STATE/sim); if it
  # has to be killed, its veths (peers sv<pid hex>x<n>) are deleted below.
  local simhex=""
  p=$(pid_of sriov-sim) && [ -n "$p" ] && simhex=$(printf '%x' "$p")
  stop sriov-sim 15
  # Containers (every process in the lane's cgroups), then their shims.
  kill_cgroup_procs
  local p
  for p in $(pgrep -f -- "-address $CTRD_SOCK" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
  stop containerd 15
  stop kube-apiserver
  stop etcd
  # Anything else a pid file names (tests may add their own).
  for p in "$PIDS"/*.pid; do [ -f "$p" ] && stop "$(basename "$p" .pid)"; done
  # Mounts: containers' rootfs and shm, pod volumes, the simulated node.
  unmount_under "$CTRD" /var/lib/kubelet/pods /var/lib/kubelet/plugins "$STATE/sim" "$STATE"
  # Network namespaces of the lane's pods (containerd names them cni-<uuid>)
  # that no process uses any more.
  if [ -d /run/netns ]; then
    for p in /run/netns/cni-*; do
      [ -e "$p" ] || continue
      if [ -z "$(ip netns pids "$(basename "$p")" 2>/dev/null)" ]; then
        ip netns del "$(basename "$p")" 2>/dev/null || { umount "$p" 2>/dev/null || true; rm -f "$p"; }
      fi
    done
  fi
  # veths a killed simulator left (its peers are named sv<pid>x<n>).
  if [ -n "$simhex" ]; then
    for p in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^sv${simhex}x[0-9a-f]+$" || true); do
      ip link del "$p" 2>/dev/null || true
    done
  fi
  network_down
  cgroups_down
  restore_sysctls
  # State. Logs stay (for a failed run's post-mortem) until the next `up`.
  # /var/lib/kubelet may be a mount point of the machine: empty it, keep it.
  find /var/lib/kubelet -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null || true
  # Host paths the node's components created that did not exist at `up`
  # (the sriov CNI's default state dir /var/lib/cni/sriov …).
  if [ -f "$STATE/created-paths" ]; then
    while IFS= read -r p; do [ -n "$p" ] && rm -rf "$p"; done <"$STATE/created-paths"
  fi
  rm -rf /var/log/pods /var/log/containers /var/run/k8s.cni.cncf.io \
    /run/containerd/runc/k8s.io /run/containerd/s 2>/dev/null || true
  rmdir /run/containerd/runc /run/containerd 2>/dev/null || true
  if [ -d "$STATE" ]; then
    find "$STATE" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} + 2>/dev/null || true
  fi
  log "down"
}

cmd_status() {
  local n
  for n in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet sriov-sim; do
    if running "$n"; then echo "$n: running (pid $(pid_of "$n"))"; else echo "$n: stopped"; fi
  done
  if running kube-apiserver; then
    kubectl_ get nodes -o wide 2>&1 || true
  fi
  echo "state and logs: $STATE"
  echo "KUBECONFIG=$KUBECONFIG_ADMIN"
}

cmd_restart() {
  case ${1:-} in
    kubelet) stop kubelet 15; start_kubelet ;;
    *) die "restart: only 'kubelet'" ;;
  esac
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kubectl) shift; exec "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@" ;;
  ctr) shift; exec "$CTRD_BIN/ctr" --address "$CTRD_SOCK" "$@" ;;
  restart) shift; cmd_restart "$@" ;;
  build) build_go_tools ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
