#!/usr/bin/env bash
# Builds the lane's container images as docker-archive tars, without Docker
# (docs/cluster.md, "Images"); `ctr -n k8s.io images import` loads them.
#
#   images/build.sh [--out DIR] [--profile release|debug] [base|sriov-rs|all]...
#
#   base      registry.k8s.io/pause:3.10  (pause.tar; pause/pause.c, gcc -static)
#             sriov-rs.local/test:1       (test.tar; Debian's busybox-static)
#   sriov-rs  ghcr.io/sriov-rs/sriov-rs:<version> (sriov-rs.tar): the release
#             binaries (or --profile debug, stripped: device plugin, config
#             daemon, sriov, operator, DRA driver) + the shared libraries
#             they load + cni-install; distroless-style: no shell, no package
#             manager. One image for every binary: see docs/cluster.md.
#
# DIR defaults to /var/cache/sriov-rs/images. An image is rebuilt only when
# one of its inputs is newer than its tar.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=/var/cache/sriov-rs/images
PROFILE=release
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(all)
mkdir -p "$OUT"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
SOURCE=https://github.com/sriov-rs/sriov-rs
LICENSE=Apache-2.0
IMAGE=ghcr.io/sriov-rs/sriov-rs:$VERSION

# newer OUT INPUT...: true when OUT is missing or older than an input.
stale() { local out=$1 f; shift; [ -f "$out" ] || return 0; for f in "$@"; do [ "$f" -nt "$out" ] && return 0; done; return 1; }
log() { echo "[images] $*" >&2; }

labels() { # labels TITLE DESCRIPTION
  printf -- '--label\0org.opencontainers.image.%s\0' \
    "title=$1" "description=$2" "version=$VERSION" "revision=$REVISION" "source=$SOURCE" "licenses=$LICENSE" \
    "vendor=sriov-rs"
}

build_pause() {
  stale "$OUT/pause.tar" images/pause/pause.c images/mkimage.py || return 0
  local r; r=$(mktemp -d)
  gcc -static -Os -s -o "$r/pause" images/pause/pause.c
  mapfile -d '' L < <(labels pause "Pod sandbox process for the sriov-rs cluster lane")
  python3 images/mkimage.py --rootfs "$r" --out "$OUT/pause.tar" --tag registry.k8s.io/pause:3.10 \
    --entrypoint '["/pause"]' --user 65535:65535 "${L[@]}"
  rm -rf "$r"; log "pause.tar: registry.k8s.io/pause:3.10"
}

build_test() {
  stale "$OUT/test.tar" /bin/busybox images/mkimage.py images/build.sh || return 0
  local r a; r=$(mktemp -d)
  mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/proc" "$r/sys" "$r/dev" "$r/root"
  chmod 1777 "$r/tmp"
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  mapfile -d '' L < <(labels test "busybox test image for the sriov-rs cluster lane (Debian busybox-static)")
  python3 images/mkimage.py --rootfs "$r" --out "$OUT/test.tar" --tag sriov-rs.local/test:1 \
    --cmd '["/bin/sh"]' "${L[@]}"
  rm -rf "$r"; log "test.tar: sriov-rs.local/test:1"
}

build_sriov_rs() {
  local dir=${CARGO_TARGET_DIR:-target}/$PROFILE b bins=() want=(sriov-device-plugin sriov-config-daemon sriov sriov-network-operator sriov-dra-driver)
  # dpdk-bind too when built; with --profile debug (the lane) only the
  # binaries the lane builds, never a stale debug build of anything else.
  [ "$PROFILE" = release ] && want+=(dpdk-bind)
  for b in "${want[@]}"; do [ -x "$dir/$b" ] && bins+=("$dir/$b"); done
  for b in sriov-device-plugin sriov-config-daemon sriov; do
    [ -x "$dir/$b" ] || { log "missing $dir/$b: cargo build $( [ "$PROFILE" = release ] && echo --release) -p sriov-device-plugin -p sriov-config-daemon -p sriov-cni --bins"; return 1; }
  done
  # Reused only when built from the same profile's binaries (a release tar
  # is newer than older debug binaries, and the other way round) and the
  # same set of them (a binary added to the image is older than the tar).
  local stamp; stamp="$PROFILE $(for b in "${bins[@]}"; do basename "$b"; done | tr '\n' ' ')"
  if [ "$(cat "$OUT/sriov-rs.tar.profile" 2>/dev/null)" = "$stamp" ]; then
    stale "$OUT/sriov-rs.tar" "${bins[@]}" images/cni-install/cni-install.c images/mkimage.py images/build.sh || return 0
  fi
  local r lib; r=$(mktemp -d)
  mkdir -p "$r/usr/bin" "$r/etc" "$r/tmp" "$r/proc" "$r/sys" "$r/dev" "$r/host" "$r/var/lib/sriov-config-daemon"
  chmod 1777 "$r/tmp"
  for b in "${bins[@]}"; do
    strip --strip-debug -o "$r/usr/bin/$(basename "$b")" "$b"
  done
  gcc -static -Os -s -o "$r/usr/bin/cni-install" images/cni-install/cni-install.c
  # The shared libraries the binaries load (glibc, libgcc_s, …), at the
  # paths the dynamic loader looks for them.
  for lib in $(for b in "${bins[@]}"; do ldd "$b" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}'; done | sort -u); do
    mkdir -p "$r$(dirname "$lib")"
    cp -L "$lib" "$r$lib"
  done
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  mapfile -d '' L < <(labels sriov-rs "sriov-rs: SR-IOV network operator and webhooks, device plugin, CNI plugin, config daemon")
  python3 images/mkimage.py --rootfs "$r" --out "$OUT/sriov-rs.tar" --tag "$IMAGE" \
    --env SRIOV_LOG=info "${L[@]}" --label "io.sriov-rs.profile=$PROFILE"
  echo "$stamp" >"$OUT/sriov-rs.tar.profile"
  log "sriov-rs.tar: $IMAGE ($PROFILE; $(du -sh "$r" | cut -f1) unpacked: $(cd "$r/usr/bin" && ls | tr '\n' ' '))"
  rm -rf "$r"
}

for t in "${targets[@]}"; do
  case $t in
    base) build_pause; build_test ;;
    sriov-rs) build_sriov_rs ;;
    all) build_pause; build_test; build_sriov_rs ;;
    *) echo "images/build.sh: unknown target $t" >&2; exit 2 ;;
  esac
done
