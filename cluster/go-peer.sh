#!/usr/bin/env bash
# Go peers for the differential tests (issue 16; docs/testing.md, "Go peers").
#
#   cluster/go-peer.sh build          build what the module proxy serves, once
#                                     per version, into
#                                     $SRIOV_CACHE_DIR/go-peers/<component>-<version>/
#   cluster/go-peer.sh path           print the operator-render binary's path (built or not)
#   cluster/go-peer.sh manager-path   print the Go operator's manager binary's
#                                     path; run it with that directory's parent
#                                     as its working directory (it reads
#                                     ./bindata/manifests, as in upstream's image)
#
# Only modules served by the Go module proxy are built, with the project's own
# glue (cluster/tools/go-operator-render: upstream's reconciler driven without
# a cluster; cluster/tools/go-operator-manager: upstream's main package,
# unchanged, for the cluster lane's side-by-side run). sriov-cni and
# sriov-network-device-plugin releases are refused by the proxy (403), so
# there is no Go CNI or device-plugin peer here.
set -euo pipefail
cd "$(dirname "$0")/.."

OPERATOR_VERSION=v1.6.0 # newest sriov-network-operator release the proxy serves
CACHE=${SRIOV_CACHE_DIR:-/var/cache/sriov-rs}
DIR=$CACHE/go-peers/sriov-network-operator-$OPERATOR_VERSION
BIN=$DIR/bin/go-operator-render
# Named as upstream's Makefile names it (build/_output/cmd/manager); the API
# server records "manager" as the field manager of its writes.
MANAGER=$DIR/bin/manager
export PATH="/usr/local/go/bin:$PATH"

log() { printf '[go-peer %s] %s\n' "$(date +%T)" "$*" >&2; }

build() {
  if [ -x "$BIN" ] && [ -x "$MANAGER" ] && [ -d "$DIR/bindata/manifests/cni-config" ] &&
    [ -d "$DIR/bindata/manifests/daemon" ]; then
    return 0
  fi
  command -v go >/dev/null || { log "go not found (expected /usr/local/go/bin/go)"; return 1; }
  mkdir -p "$DIR/bin"
  local s=$SECONDS mod
  if [ ! -x "$BIN" ]; then
    log "building go-operator-render (sriov-network-operator $OPERATOR_VERSION; cold: a few minutes on 2 cores)"
    (cd cluster/tools/go-operator-render && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "-s -w" -o "$BIN.tmp" .)
    mv "$BIN.tmp" "$BIN"
  fi
  if [ ! -x "$MANAGER" ]; then
    log "building the Go operator's manager (sriov-network-operator $OPERATOR_VERSION, its main package unchanged)"
    (cd cluster/tools/go-operator-manager && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "-s -w" \
      -o "$MANAGER.tmp" github.com/k8snetworkplumbingwg/sriov-network-operator)
    mv "$MANAGER.tmp" "$MANAGER"
  fi
  # RenderNetAttDef reads its templates from disk (bindata/manifests/cni-config);
  # the manager reads every manifest dir relative to its working directory
  # (./bindata/manifests/daemon, plugins, webhook, …), as upstream's image
  # ships them in /bindata.
  mod=$(cd cluster/tools/go-operator-manager &&
    go list -m -f '{{.Dir}}' github.com/k8snetworkplumbingwg/sriov-network-operator)
  rm -rf "$DIR/bindata.tmp"
  mkdir -p "$DIR/bindata.tmp"
  cp -r "$mod/bindata/manifests" "$DIR/bindata.tmp/"
  chmod -R u+w "$DIR/bindata.tmp"
  rm -rf "$DIR/bindata"
  mv "$DIR/bindata.tmp" "$DIR/bindata"
  log "built $BIN and $MANAGER in $((SECONDS - s))s"
}

case "${1:-}" in
  build) build ;;
  path) echo "$BIN" ;;
  manager-path) echo "$MANAGER" ;;
  *) echo "usage: $0 build|path|manager-path" >&2; exit 2 ;;
esac
