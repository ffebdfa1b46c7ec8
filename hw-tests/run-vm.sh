#!/usr/bin/env bash
# The QEMU hardware lane: runs the hw-tests inside a VM with two emulated
# SR-IOV NICs (QEMU `igb`, Intel 82576, 7 VFs per PF) under a stock Debian
# kernel with the real igb / igbvf / vfio-pci drivers.
#
#   1. builds the hw-tests test binaries (and dpdk-bind) with cargo;
#   2. assembles a kernel + module set, cached under
#      ${XDG_CACHE_HOME:-$HOME/.cache}/sriov-rs/hw, keyed on the Debian
#      kernel package version (downloaded with apt-get download, never
#      installed);
#   3. packs a busybox initramfs with the test binaries and their libraries;
#   4. boots QEMU (TCG; user-mode netdevs, no traffic leaves the machine),
#      runs every test binary with --test-threads=1 and reads the result from
#      the serial console.
#
# Exit status: 0 when every test passed (or the lane was skipped), 1 on a
# test failure, a guest that did not report, or a timeout.
#
# Environment:
#   SRIOV_REQUIRE_LANES  contains `qemu` or `all`: a missing QEMU lane fails
#                        instead of printing SKIP (CI sets `all`)
#   SRIOV_HW_TIMEOUT     hard limit on the VM in seconds (default 300)
#   SRIOV_HW_BOOT_TIMEOUT  seconds for the guest's init to start before the
#                        VM is run once more (default 150)
#   SRIOV_HW_STALL_TIMEOUT seconds of console silence after init before the
#                        VM is run once more (default 90)
#   SRIOV_HW_FILTER      test name filter passed to every test binary
#   SRIOV_HW_KEEP=1      keep the work directory (initramfs, console log)
#   SRIOV_HW_KERNEL_PKG  Debian kernel meta package (default linux-image-amd64)
#   SRIOV_GO_SRIOV_CNI   upstream's Go `sriov` CNI binary, packed into the guest
#                        for tests/go_sriov_cni.rs (they print SKIP without it);
#                        with it, our `sriov` is also built --release and packed
#                        (SRIOV_HW_SRIOV_CNI_RELEASE): the cost comparison is
#                        between two optimized builds
#   SRIOV_HW_CNI_ROUNDS  rounds of go_and_ours_cycle_cost (default 9)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${HOME:-/root}/.cargo/bin:$PATH:/usr/sbin:/sbin"

TIMEOUT="${SRIOV_HW_TIMEOUT:-300}"
KERNEL_META="${SRIOV_HW_KERNEL_PKG:-linux-image-amd64}"
CACHE="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/sriov-rs/hw"
# Modules the guest loads, in this order (with their dependencies). A module
# that a newer kernel builds in or merged (vfio_virqfd into vfio) is skipped.
MODULES=(igb igbvf vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci veth)
RESULT_MARKER="SRIOV-HW-RESULT"

say() { echo "hw-tests: $*"; }

lane_required() {
  local l
  IFS=',' read -ra lanes <<<"${SRIOV_REQUIRE_LANES:-}"
  for l in "${lanes[@]}"; do
    l="${l// /}"
    [ "$l" = all ] || [ "$l" = qemu ] && return 0
  done
  return 1
}

# The lane cannot run here: a failure when CI requires it, else a skip.
unavailable() {
  if lane_required; then
    echo "hw-tests: FAIL: the QEMU lane is required (SRIOV_REQUIRE_LANES=${SRIOV_REQUIRE_LANES}) but cannot run: $*" >&2
    echo "hw-tests: run 'make setup' as root to install it (hw-tests/setup.sh)" >&2
    exit 1
  fi
  echo "SKIP hw-tests (QEMU lane): $* (run 'make setup' as root to enable it)"
  exit 0
}

# ---- what the lane needs on the host -------------------------------------
command -v qemu-system-x86_64 >/dev/null || unavailable "qemu-system-x86_64 is not installed"
qemu-system-x86_64 -device help 2>/dev/null | grep -q '"igb"' ||
  unavailable "$(qemu-system-x86_64 --version | head -n1) has no igb device (needs QEMU >= 8, bookworm-backports)"
for tool in cpio depmod modprobe apt-get apt-cache dpkg jq objcopy ldd timeout; do
  command -v "$tool" >/dev/null || unavailable "$tool is not installed"
done
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1 ||
  unavailable "no static busybox at $BUSYBOX (apt-get install busybox-static)"
command -v cargo >/dev/null || unavailable "cargo is not installed"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sriov-hw.XXXXXX")"
PIPE_PID=""
cleanup() {
  local rc=$?
  # The QEMU process (its `timeout` wrapper forwards the signal).
  if [ -f "$WORK/qemu.pid" ] && [ ! -f "$WORK/qemu.rc" ]; then
    kill "$(cat "$WORK/qemu.pid")" 2>/dev/null || true
    [ -n "$PIPE_PID" ] && wait "$PIPE_PID" 2>/dev/null || true
  fi
  if [ "${SRIOV_HW_KEEP:-0}" = 1 ]; then
    say "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. test binaries -----------------------------------------------------
# Built for the whole workspace (not `-p`), so features unify as in
# `cargo test --workspace` and the build that `make test` ran first is reused.
say "building the hw-tests binaries"
cargo test --workspace --no-run --message-format=json-render-diagnostics >"$WORK/build.json"
# name<TAB>path for every test executable of the hw-tests package
jq -r 'select(.reason == "compiler-artifact" and .profile.test == true
              and .executable != null
              and (.target.kind | index("test") or index("lib")))
       | select(.package_id | test("sriov-hw-tests"))
       | "\(.target.name)\t\(.executable)"' "$WORK/build.json" | sort -u >"$WORK/tests.tsv"
if [ ! -s "$WORK/tests.tsv" ]; then
  echo "hw-tests: FAIL: cargo built no hw-tests test binaries" >&2
  exit 1
fi

# The workspace binaries the tests run: binary name, the guest's env var.
BINARIES=("dpdk-bind SRIOV_HW_DPDK_BIND" "sriov SRIOV_HW_SRIOV_CNI"
  "sriov-config-daemon SRIOV_HW_CONFIG_DAEMON")
# `cargo test` built them for the integration tests that run them; build
# them only when it did not.
find_bin() {
  jq -r --arg b "$1" 'select(.reason == "compiler-artifact" and .executable != null
      and .profile.test == false and .target.name == $b and (.target.kind | index("bin")))
      | .executable' "$2" | tail -n1
}
: >"$WORK/bins.tsv"
for entry in "${BINARIES[@]}"; do
  read -r bin var <<<"$entry"
  exe="$(find_bin "$bin" "$WORK/build.json")"
  if [ -z "$exe" ]; then
    [ -f "$WORK/bins.json" ] || {
      say "building the workspace binaries"
      cargo build --workspace --bins --message-format=json-render-diagnostics >"$WORK/bins.json"
    }
    exe="$(find_bin "$bin" "$WORK/bins.json")"
  fi
  if [ -n "$exe" ]; then
    printf '%s\t%s\t%s\n' "$bin" "$exe" "$var" >>"$WORK/bins.tsv"
  fi
done

# Upstream's Go sriov-cni, for tests/go_sriov_cni.rs (issue 16): the Go
# module proxy refuses it, so nothing here builds it; it is packed when
# SRIOV_GO_SRIOV_CNI names a binary on the host (a static one: CGO_ENABLED=0).
if [ -n "${SRIOV_GO_SRIOV_CNI:-}" ]; then
  if [ ! -x "$SRIOV_GO_SRIOV_CNI" ]; then
    echo "hw-tests: FAIL: SRIOV_GO_SRIOV_CNI=$SRIOV_GO_SRIOV_CNI is not an executable" >&2
    exit 1
  fi
  printf '%s\t%s\t%s\n' go-sriov "$SRIOV_GO_SRIOV_CNI" SRIOV_HW_GO_SRIOV_CNI >>"$WORK/bins.tsv"
  say "packing upstream's Go sriov-cni from $SRIOV_GO_SRIOV_CNI"
  # The tests' `sriov` is the debug build (with its test hooks); the cycle
  # cost compares upstream's optimized binary with ours optimized.
  say "building our sriov --release for the side-by-side cost"
  cargo build --release -p sriov-cni --bin sriov --message-format=json-render-diagnostics >"$WORK/release.json"
  exe="$(find_bin sriov "$WORK/release.json")"
  [ -n "$exe" ] || { echo "hw-tests: FAIL: cargo built no release sriov" >&2; exit 1; }
  printf '%s\t%s\t%s\n' sriov-release "$exe" SRIOV_HW_SRIOV_CNI_RELEASE >>"$WORK/bins.tsv"
fi

# ---- 2. kernel and modules (cached) ---------------------------------------
# The newest complete kernel in the cache, if any.
newest_cached() {
  local d
  for d in $(ls -d "$CACHE"/linux-image-*/ 2>/dev/null | grep -v '\.tmp\.' | sort -rV); do
    d="${d%/}"
    [ -f "$d/.complete" ] && echo "$d" && return 0
  done
  return 0
}
kernel_pkg="$(apt-cache depends "$KERNEL_META" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}' || true)"
kernel_ver=""
[ -n "$kernel_pkg" ] &&
  kernel_ver="$(apt-cache show --no-all-versions "$kernel_pkg" 2>/dev/null | awk '/^Version:/ {print $2; exit}' || true)"
if [ -n "$kernel_pkg" ] && [ -n "$kernel_ver" ]; then
  KDIR="$CACHE/${kernel_pkg}_${kernel_ver}"
else
  # apt knows no kernel package (no lists): use the newest cached one.
  KDIR="$(newest_cached)"
  [ -n "$KDIR" ] ||
    unavailable "apt knows no '$KERNEL_META' package and no kernel is cached in $CACHE (run apt-get update)"
fi

build_kernel() {
  local tmp="$KDIR.tmp.$$" x kver line rel src dst
  rm -rf "$tmp"
  mkdir -p "$tmp/dl" "$tmp/root"
  say "downloading $kernel_pkg $kernel_ver (cached in $CACHE)"
  download() {
    (cd "$tmp/dl" && apt-get download -q "$kernel_pkg=$kernel_ver" 2>&1 |
      grep -v '^W: Download is performed unsandboxed' || true)
  }
  download
  if ! ls "$tmp"/dl/*.deb >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    # Stale apt lists name a version the mirror no longer has.
    say "refreshing apt lists (apt-get update)"
    apt-get update -qq || true
    kernel_pkg="$(apt-cache depends "$KERNEL_META" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}' || true)"
    kernel_ver="$(apt-cache show --no-all-versions "$kernel_pkg" 2>/dev/null | awk '/^Version:/ {print $2; exit}' || true)"
    KDIR="$CACHE/${kernel_pkg}_${kernel_ver}"
    download
  fi
  if ! ls "$tmp"/dl/*.deb >/dev/null 2>&1; then
    rm -rf "$tmp"
    local cached
    cached="$(newest_cached)"
    if [ -n "$cached" ]; then
      say "apt-get download $kernel_pkg=$kernel_ver failed; using the cached $(basename "$cached")"
      KDIR="$cached"
      return 0
    fi
    unavailable "apt-get download $kernel_pkg=$kernel_ver failed (run apt-get update as root)"
  fi
  x="$tmp/x"
  dpkg -x "$tmp"/dl/*.deb "$x"
  kver="$(ls "$x/lib/modules")"
  depmod -b "$x" "$kver"
  cp "$x/boot/vmlinuz-$kver" "$tmp/vmlinuz"
  : >"$tmp/root/modules.load"
  for m in "${MODULES[@]}"; do
    if ! modprobe -d "$x" -S "$kver" --show-depends "$m" >"$tmp/deps" 2>/dev/null; then
      say "module $m: not in $kernel_pkg (built in or merged), skipped"
      continue
    fi
    while read -r kind path _; do
      [ "$kind" = insmod ] || continue
      rel="${path#"$x"/lib/modules/"$kver"/}"
      # busybox insmod reads plain .ko files only: decompress.
      dst="${rel%.xz}"
      dst="${dst%.zst}"
      dst="${dst%.gz}"
      grep -qxF "$dst" "$tmp/root/modules.load" && continue
      mkdir -p "$tmp/root/lib/modules/$kver/$(dirname "$dst")"
      src="$path"
      case "$src" in
      *.xz) xz -dc "$src" >"$tmp/root/lib/modules/$kver/$dst" ;;
      *.zst) zstd -qdc "$src" >"$tmp/root/lib/modules/$kver/$dst" ;;
      *.gz) gzip -dc "$src" >"$tmp/root/lib/modules/$kver/$dst" ;;
      *) cp "$src" "$tmp/root/lib/modules/$kver/$dst" ;;
      esac
      echo "$dst" >>"$tmp/root/modules.load"
    done <"$tmp/deps"
  done
  for f in modules.builtin modules.builtin.modinfo modules.order; do
    [ -f "$x/lib/modules/$kver/$f" ] && cp "$x/lib/modules/$kver/$f" "$tmp/root/lib/modules/$kver/"
  done
  depmod -b "$tmp/root" "$kver"
  echo "$kver" >"$tmp/kver"
  rm -rf "$x" "$tmp/dl" "$tmp/deps"
  touch "$tmp/.complete"
  # Older kernels in the cache are no longer used.
  find "$CACHE" -mindepth 1 -maxdepth 1 -name 'linux-image-*' ! -name "$(basename "$tmp")" -exec rm -rf {} +
  # Another run may have finished the same kernel meanwhile.
  mv -T "$tmp" "$KDIR" 2>/dev/null || rm -rf "$tmp"
}
mkdir -p "$CACHE"
[ -f "$KDIR/.complete" ] || build_kernel
KVER="$(cat "$KDIR/kver")"
say "kernel $KVER ($(basename "$KDIR"))"

# ---- 3. initramfs ---------------------------------------------------------
R="$WORK/root"
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,run,tmp,hw,lib,var}
ln -s ../run "$R/var/run"
cp "$BUSYBOX" "$R/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ -e "$R/bin/$applet" ] || ln -s busybox "$R/bin/$applet"
done
cp -a "$KDIR/root/lib/modules" "$R/lib/"
cp "$KDIR/root/modules.load" "$R/etc/modules.load"

# copy_exe SRC DST: the executable and every library ldd lists for it, at the
# same path in the guest.
copy_exe() {
  local src="$1" dst="$2" lib
  mkdir -p "$(dirname "$R$dst")"
  rm -f "$R$dst"
  objcopy --strip-debug "$src" "$R$dst" 2>/dev/null || cp "$src" "$R$dst"
  chmod +x "$R$dst"
  for lib in $(ldd "$src" 2>/dev/null | grep -o '/[^ ]*'); do
    [ -e "$R$lib" ] && continue
    mkdir -p "$(dirname "$R$lib")"
    cp -L "$lib" "$R$lib"
  done
}
copy_exe "$(command -v ip)" /bin/ip
guest_env=""
while IFS=$'\t' read -r bin exe var; do
  copy_exe "$exe" "/bin/$bin"
  guest_env="$guest_env $var=/bin/$bin"
done <"$WORK/bins.tsv"
while IFS=$'\t' read -r name exe; do
  copy_exe "$exe" "/hw/$name"
done <"$WORK/tests.tsv"
# ld.so finds libraries by their multiarch directories through its cache.
printf '%s\n' /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 >"$R/etc/ld.so.conf"
ldconfig -r "$R" 2>/dev/null || true

filter="${SRIOV_HW_FILTER:-}"
cat >"$R/init" <<EOF
#!/bin/sh
export PATH=/bin:/sbin HOME=/tmp RUST_BACKTRACE=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
# Warnings and worse reach the console (console.log; the terminal shows
# them when something failed): a driver timeout or a hung task says so.
echo 4 >/proc/sys/kernel/printk
echo /bin/modprobe >/proc/sys/kernel/modprobe
echo "hw-guest: up after \$(cut -d' ' -f1 /proc/uptime) s, kernel \$(uname -r)"
ip link set lo up
while read -r m; do
  insmod "/lib/modules/\$(uname -r)/\$m" || echo "hw-guest: insmod \$m failed"
done </etc/modules.load

# The igb PFs' netdevs, in PCI address order.
pfs=""
i=0
while [ \$i -lt 100 ]; do
  pfs=\$(for n in /sys/class/net/*; do
    d=\$(readlink "\$n/device/driver" 2>/dev/null) || continue
    [ "\${d##*/}" = igb ] && [ -f "\$n/device/sriov_totalvfs" ] || continue
    echo "\$(basename "\$(readlink "\$n/device")") \${n##*/}"
  done | sort | cut -d' ' -f2)
  [ \$(echo \$pfs | wc -w) -ge 2 ] && break
  i=\$((i + 1))
  sleep 0.1
done
set -- \$pfs
export SRIOV_HW_PF="\${1:-}" SRIOV_HW_PF2="\${2:-}" SRIOV_HW_REQUIRED=1
export SRIOV_REQUIRE_LANES=root,netns
${guest_env:+export$guest_env}
${SRIOV_HW_CNI_ROUNDS:+export SRIOV_HW_CNI_ROUNDS=$SRIOV_HW_CNI_ROUNDS}
echo "hw-guest: PFs \$SRIOV_HW_PF \$SRIOV_HW_PF2"

status=0
for t in /hw/*; do
  echo "hw-guest: ==== \${t##*/}"
  start=\$(cut -d' ' -f1 /proc/uptime)
  if ! "\$t" --test-threads=1 $filter; then
    status=1
    echo "hw-guest: FAILED \${t##*/}"
  fi
  echo "hw-guest: \${t##*/} took \$start..\$(cut -d' ' -f1 /proc/uptime) s"
done
if [ \$status != 0 ]; then
  echo "hw-guest: ---- last kernel messages"
  dmesg | tail -n 40
fi
echo "$RESULT_MARKER status=\$status uptime=\$(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
EOF
chmod +x "$R/init"
(cd "$R" && find . -print0 | cpio --null -o -H newc --quiet) >"$WORK/initrd"
say "initramfs $(du -m "$WORK/initrd" | cut -f1) MB, $(wc -l <"$WORK/tests.tsv") test binaries, $(cut -f1 "$WORK/bins.tsv" | tr '\n' ' ')"

# ---- 4. boot --------------------------------------------------------------
# The kernel logs at its default level to console.log (the terminal shows
# only the firmware's and the guest init's lines), so a boot that stops
# early says where. A guest whose init has not started within
# BOOT_TIMEOUT seconds is killed and booted once more (under TCG a loaded
# host has been seen to stall a boot for minutes); the console tail of the
# stalled boot is printed.
# QEMU's serial console flows through an unbuffered pipe (without the
# firmware's terminal control sequences and carriage returns) to
# console.log, which the watchdog reads; QEMU's pid is kept for the cleanup
# trap.
boot_vm() { # boot_vm LIMIT_SECONDS
  rm -f "$WORK/qemu.pid" "$WORK/qemu.rc"
  : >"$WORK/console.log"
  (
    timeout --kill-after=10 "$1" qemu-system-x86_64 \
      -machine q35,accel=tcg -cpu max -m 1G -smp 2 -no-reboot -nographic \
      -device intel-iommu \
      -device pcie-root-port,id=rp1,chassis=1,slot=1 \
      -device igb,bus=rp1,netdev=n1 -netdev user,id=n1,restrict=on \
      -device pcie-root-port,id=rp2,chassis=2,slot=2 \
      -device igb,bus=rp2,netdev=n2 -netdev user,id=n2,restrict=on \
      -kernel "$KDIR/vmlinuz" -initrd "$WORK/initrd" \
      -append "console=ttyS0 edd=off intel_iommu=on panic=-1 rdinit=/init" \
      </dev/null 2>"$WORK/qemu.err" &
    echo $! >"$WORK/qemu.pid"
    wait $!
    echo $? >"$WORK/qemu.rc"
  ) | sed -u 's/\r//g; s/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' | tee "$WORK/console.log" |
    grep --line-buffered -av '^\[ *[0-9]*\.[0-9]*\] ' &
  PIPE_PID=$!
  local t0 now size last_size=-1 last_change why=""
  t0=$(date +%s)
  last_change=$t0
  while kill -0 "$PIPE_PID" 2>/dev/null; do
    now=$(date +%s)
    size=$(stat -c %s "$WORK/console.log" 2>/dev/null || echo 0)
    if [ "$size" != "$last_size" ]; then
      last_size=$size
      last_change=$now
    fi
    if ! grep -qa '^hw-guest: up after' "$WORK/console.log"; then
      [ $((now - t0)) -ge "$BOOT_TIMEOUT" ] && why="the guest's init did not start within ${BOOT_TIMEOUT}s"
    elif [ $((now - last_change)) -ge "$STALL_TIMEOUT" ]; then
      why="the guest printed nothing for ${STALL_TIMEOUT}s (no test takes that long)"
    fi
    if [ -n "$why" ]; then
      say "$why; the console's last lines:"
      tail -n 25 "$WORK/console.log" | sed 's/^/hw-tests:   | /'
      kill "$(cat "$WORK/qemu.pid")" 2>/dev/null || true
      wait "$PIPE_PID" 2>/dev/null || true
      PIPE_PID=""
      return 2
    fi
    sleep 1
  done
  wait "$PIPE_PID" || true
  PIPE_PID=""
  return 0
}

BOOT_TIMEOUT="${SRIOV_HW_BOOT_TIMEOUT:-150}"
STALL_TIMEOUT="${SRIOV_HW_STALL_TIMEOUT:-90}"
say "booting QEMU (TCG, 2 igb PFs, timeout ${TIMEOUT}s, init within ${BOOT_TIMEOUT}s, silence at most ${STALL_TIMEOUT}s)"
start=$(date +%s)
set +e
boot_vm "$TIMEOUT"
if [ $? = 2 ]; then
  cp "$WORK/console.log" "$WORK/console.stalled.log"
  BOOT_TIMEOUT=$((BOOT_TIMEOUT * 2))
  say "running the VM once more, from a fresh boot (timeout ${TIMEOUT}s, init within ${BOOT_TIMEOUT}s)"
  start=$(date +%s)
  boot_vm "$TIMEOUT"
fi
set -e
qemu_rc="$(cat "$WORK/qemu.rc" 2>/dev/null || echo "?")"
elapsed=$(($(date +%s) - start))

result="$(grep -a "^$RESULT_MARKER " "$WORK/console.log" | tail -n1 || true)"
# The kernel's lines, kept off the terminal, matter when something failed.
kernel_tail() {
  say "the kernel's last messages:"
  grep -a '^\[ *[0-9]*\.[0-9]*\] ' "$WORK/console.log" | tail -n 40 | sed 's/^/hw-tests:   | /' || true
}
if [ -z "$result" ]; then
  kernel_tail
  if [ "$elapsed" -ge "$TIMEOUT" ]; then
    echo "hw-tests: FAIL: the VM did not finish within ${TIMEOUT}s (SRIOV_HW_TIMEOUT)" >&2
  else
    echo "hw-tests: FAIL: the VM stopped without reporting a result (qemu exit $qemu_rc)" >&2
  fi
  [ -s "$WORK/qemu.err" ] && sed 's/^/qemu: /' "$WORK/qemu.err" >&2
  exit 1
fi
status="$(sed -n 's/.* status=\([0-9]*\).*/\1/p' <<<"$result")"
if [ "$status" != 0 ]; then
  kernel_tail
  echo "hw-tests: FAIL: hw-tests failed in the VM (${elapsed}s)" >&2
  exit 1
fi
say "all hw-tests passed in the VM (${elapsed}s boot + tests + power-off)"
