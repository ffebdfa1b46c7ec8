#!/usr/bin/env bash
# Go peers for the differential tests (issue 16; docs/testing.md, "Go peers").
#
#   cluster/go-peer.sh build   build what the module proxy serves, once per
#                              version, into $SRIOV_CACHE_DIR/go-peers/<version>/
#   cluster/go-peer.sh path    print the operator-render binary's path (built or not)
#
# Only modules served by the Go module proxy are built, with the project's own
# glue (cluster/tools/go-operator-render). sriov-cni and
# sriov-network-device-plugin releases are refused by the proxy (403), so
# there is no Go CNI or device-plugin peer here.
set -euo pipefail
cd "$(dirname "$0")/.."

OPERATOR_VERSION=v1.6.0 # newest sriov-network-operator release the proxy serves
CACHE=${SRIOV_CACHE_DIR:-/var/cache/sriov-rs}
DIR=$CACHE/go-peers/sriov-network-operator-$OPERATOR_VERSION
BIN=$DIR/bin/go-operator-render
export PATH="/usr/local/go/bin:$PATH"

log() { printf '[go-peer %s] %s\n' "$(date +%T)" "$*" >&2; }

build() {
  if [ -x "$BIN" ] && [ -d "$DIR/bindata/manifests/cni-config" ]; then
    return 0
  fi
  command -v go >/dev/null || { log "go not found (expected /usr/local/go/bin/go)"; return 1; }
  mkdir -p "$DIR/bin"
  local s=$SECONDS mod
  log "building go-operator-render (sriov-network-operator $OPERATOR_VERSION; cold: a few minutes on 2 cores)"
  (cd cluster/tools/go-operator-render && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "-s -w" -o "$BIN.tmp" .)
  # RenderNetAttDef reads its templates from disk (bindata/manifests/cni-config).
  mod=$(cd cluster/tools/go-operator-render &&
    go list -m -f '{{.Dir}}' github.com/k8snetworkplumbingwg/sriov-network-operator)
  rm -rf "$DIR/bindata.tmp"
  mkdir -p "$DIR/bindata.tmp/manifests"
  cp -r "$mod/bindata/manifests/cni-config" "$DIR/bindata.tmp/manifests/"
  chmod -R u+w "$DIR/bindata.tmp"
  rm -rf "$DIR/bindata"
  mv "$DIR/bindata.tmp" "$DIR/bindata"
  mv "$BIN.tmp" "$BIN"
  log "built $BIN in $((SECONDS - s))s"
}

case "${1:-}" in
  build) build ;;
  path) echo "$BIN" ;;
  *) echo "usage: $0 build|path" >&2; exit 2 ;;
esac
