#!/usr/bin/env bash
# Runs Helm, built once per machine from its Go module (Debian has no Helm
# package) and cached by version outside the work tree:
#   scripts/helm.sh ARGS...        helm ARGS...
#   scripts/helm.sh --path         prints the binary's path (builds it first)
set -euo pipefail
HELM_VERSION=v4.3.2
CACHE=${SRIOV_CACHE:-/var/cache/sriov-rs}/helm-$HELM_VERSION
bin=$CACHE/helm
if [ ! -x "$bin" ]; then
  command -v go >/dev/null || { echo "helm.sh: Go is needed to build Helm $HELM_VERSION" >&2; exit 1; }
  echo "helm.sh: building Helm $HELM_VERSION from its Go module (once per machine)" >&2
  mkdir -p "$CACHE"
  GOBIN=$CACHE CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2
fi
if [ "${1:-}" = --path ]; then echo "$bin"; exit 0; fi
# Helm keeps its cache and config out of the user's home.
export HELM_CACHE_HOME=${HELM_CACHE_HOME:-$CACHE/home/cache}
export HELM_CONFIG_HOME=${HELM_CONFIG_HOME:-$CACHE/home/config}
export HELM_DATA_HOME=${HELM_DATA_HOME:-$CACHE/home/data}
exec "$bin" "$@"
