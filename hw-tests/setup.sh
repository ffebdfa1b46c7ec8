#!/usr/bin/env bash
# Installs what the QEMU hardware lane (hw-tests/run-vm.sh) needs, as root:
#   qemu-system-x86 >= 8 (the `igb` device; on bookworm it comes from
#                    bookworm-backports, which this script adds to apt's
#                    sources using the mirror the machine already uses)
#   busybox-static   the guest's shell and tools
#   cpio             packs the initramfs
#   kmod             depmod for the extracted kernel modules
#   xz-utils zstd    decompress kernel modules for busybox's insmod
#   iproute2         `ip` inside the guest (VF settings, netns)
#   jq binutils      the runner reads cargo's JSON; objcopy strips debug info
# Safe to run again: it only changes what is missing.
set -euo pipefail

log() { echo "hw-tests/setup: $*"; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "hw-tests/setup: run as root (it installs Debian packages)" >&2
    exit 1
  fi
}

has_igb() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 &&
    qemu-system-x86_64 -device help 2>/dev/null | grep -q '"igb"'
}

# shellcheck disable=SC1091
. /etc/os-release
codename="${VERSION_CODENAME:-}"
export DEBIAN_FRONTEND=noninteractive
updated=0
apt_update() {
  if [ "$updated" = 0 ]; then
    apt-get update -qq
    updated=1
  fi
}

# The mirror that serves the release's own suite, read from the machine's
# apt sources (deb822 .sources files and one-line .list files).
debian_mirror() {
  local f
  # deb822: a stanza whose Suites list the codename; print its first URI.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v want="$codename" '
      BEGIN { RS=""; FS="\n" }
      {
        uris=""; suites=""; enabled=1
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^[ \t]*#/) continue
          if (line ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", line); uris = line }
          if (line ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", line); suites = " " line " " }
          if (line ~ /^Enabled:[ \t]*no/) enabled = 0
        }
        if (enabled && index(suites, " " want " ") > 0 && uris != "") {
          split(uris, u, /[ \t]+/); print u[1]; exit
        }
      }' "$f"
  done
  # one-line format: deb [options] URI SUITE COMPONENTS...
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v want="$codename" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == want) { print $i; exit }
      }' "$f"
  done
}

if ! has_igb; then
  need_root
  if [ "$codename" = bookworm ]; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      mirror="$(debian_mirror | head -n1)"
      if [ -z "$mirror" ]; then
        echo "hw-tests/setup: no apt source for '$codename' found in /etc/apt/sources.list{,.d/*};" \
          "add bookworm-backports by hand (it provides qemu-system-x86 with the igb device)" >&2
        exit 1
      fi
      log "adding bookworm-backports from $mirror to /etc/apt/sources.list.d/bookworm-backports.sources"
      cat >/etc/apt/sources.list.d/bookworm-backports.sources <<EOF
# Added by sriov-rs hw-tests/setup.sh: qemu-system-x86 with the igb device.
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
      updated=0
    fi
    apt_update
    log "installing qemu-system-x86 from bookworm-backports"
    apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null
  else
    apt_update
    log "installing qemu-system-x86"
    apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
  fi
fi

PACKAGES=(busybox-static cpio kmod xz-utils zstd iproute2 jq binutils)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  need_root
  apt_update
  log "installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! has_igb; then
  echo "hw-tests/setup: qemu-system-x86_64 has no igb device ($(qemu-system-x86_64 --version | head -n1));" \
    "the QEMU lane needs QEMU >= 8 (bookworm-backports)" >&2
  exit 1
fi
log "ok ($(qemu-system-x86_64 --version | head -n1))"
