#!/usr/bin/env bash
# Debian packages the cluster lane (scripts/cluster.sh, cluster/tests/) needs.
# Called from scripts/setup.sh; safe to run again (installs only what is missing).
#   runc                        the OCI runtime under containerd (containerd itself
#                               is 2.x, built from its Go module by scripts/cluster.sh:
#                               Debian bookworm's 1.6 cannot inject CDI devices)
#   containernetworking-plugins bridge, host-local, loopback for the pod network
#   conntrack iptables          the kubelet's and CNI plugins' host networking tools
#   openssl                     certificates and the service-account key, made on the fly
#   busybox-static              the test image's userland
#   python3                     writes the docker-archive image tars (images/build.sh)
#   jq curl                     the lane's checks (cluster/tests/lane.sh), health probes
#   golang is not from Debian: the Go toolchain in /usr/local/go (1.26) builds
#   Kubernetes, etcd, containerd and Multus from their modules (cluster/tools/*).
set -euo pipefail
PACKAGES=(runc containernetworking-plugins conntrack iptables openssl busybox-static python3 fuse3 iproute2 procps jq curl)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "cluster/setup.sh: run as root" >&2; exit 1; fi
  echo "cluster/setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "cluster/setup: ok"
