#!/usr/bin/env bash
# `make demo` (README.md, docs/quickstart.md). Where this machine can run the
# local single-node Kubernetes (root, FUSE, Go, containerd…): the operator
# installed with its Helm chart on a simulated SR-IOV node, from a policy to
# a pod with a VF (scripts/demo-cluster.sh). Elsewhere it says why and runs
# the simulated-node demo without Kubernetes (scripts/demo-node.sh).
#
#   DEMO_KEEP=1       leave the cluster up at the end; prints KUBECONFIG and
#                     kubectl commands to explore (`make cluster-down` ends it)
#   SRIOV_DEMO_SIM=1  only the simulated-node demo, no Kubernetes
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:/usr/local/go/bin:$PATH"

# Why the cluster demo cannot run here (empty: it can). The same
# prerequisites as the cluster lane (cluster/tests/lane.sh); the packages
# come from scripts/setup.sh and cluster/setup.sh (`make setup`).
why_not_cluster() {
  local c need have
  if [ -n "${SRIOV_DEMO_SIM:-}" ]; then echo "SRIOV_DEMO_SIM is set"; return; fi
  if [ "$(id -u)" != 0 ]; then echo "not running as root (the cluster runs containerd, a kubelet and iptables rules)"; return; fi
  if [ ! -e /dev/fuse ]; then echo "/dev/fuse is missing (the simulated node is a FUSE sysfs)"; return; fi
  if [ ! -d /sys/fs/cgroup ] || ! awk '$2 ~ "^/sys/fs/cgroup" {f=1} END {exit !f}' /proc/mounts; then
    echo "no cgroup filesystem at /sys/fs/cgroup (the kubelet needs it)"; return
  fi
  for c in fusermount3 runc iptables conntrack openssl jq curl busybox ip; do
    command -v "$c" >/dev/null 2>&1 || { echo "$c is not installed (make setup: scripts/setup.sh, cluster/setup.sh)"; return; }
  done
  if ! command -v go >/dev/null 2>&1; then
    echo "Go is not installed (/usr/local/go/bin/go): the cluster builds Kubernetes from its Go modules"; return
  fi
  # The newest Go release the tools' modules ask for (their go.mod `go` lines).
  need=$(sed -n 's/^go \([0-9.]*\).*/\1/p' cluster/tools/*/go.mod | sort -V | tail -1)
  have=$(go env GOVERSION 2>/dev/null | sed -n 's/^go\([0-9.]*\).*/\1/p')
  if [ -n "$need" ] && [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
    echo "Go $have is older than the $need that cluster/tools/*/go.mod need"; return
  fi
}

why=$(why_not_cluster)
if [ -z "$why" ]; then
  bash scripts/demo-cluster.sh
  rc=$?
  # 3: the cluster could not start on this machine (demo-cluster.sh said why
  # and removed what it started); anything else is the demo's own result.
  [ $rc = 3 ] || exit $rc
  why="the local cluster did not start on this machine (see above)"
fi
echo
echo "NOTE: the Kubernetes demo cannot run here: $why."
echo "      Running the simulated-node demo instead: the config daemon alone, no Kubernetes."
echo
exec bash scripts/demo-node.sh
