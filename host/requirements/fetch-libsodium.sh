#!/usr/bin/env bash
# Fetch libsodium's source for the QEMU rv32 firmware build (which compiles only the few files
# that Ed25519 signature verification needs). The SIL build links Debian's libsodium-dev and the
# ESP32 build the espressif/libsodium component: one library, the same version line on every target.
#
# Source: the Debian source package libsodium 1.0.18-1+deb12u1 (the same version as the
# libsodium-dev binary package), pinned by version AND sha256. It is fetched with `apt-get source`
# through a private apt configuration holding a deb-src entry (the system's apt setup is not
# touched); if that fails, straight from the Debian archive. Debian's patches are applied.
# Unpacked into firmware/build/third_party/ (git-ignored); nothing enters the repository.
#
# Usage: host/requirements/fetch-libsodium.sh [DEST]   (idempotent; called by `make setup`)
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=1.0.18
DEB_REVISION=1+deb12u1
ORIG=libsodium_${VERSION}.orig.tar.gz
DEBIAN=libsodium_${VERSION}-${DEB_REVISION}.debian.tar.xz
ORIG_SHA256=d59323c6b712a1519a5daf710b68f5e7fde57040845ffec53850911f10a5d4f4
DEBIAN_SHA256=f410474e46346b06b162defa05b1be26906aeed6cf309e3d4ebe30b4d1350733
POOL=https://deb.debian.org/debian/pool/main/libs/libsodium
DEST=${1:-firmware/build/third_party}
SRC="$DEST/libsodium-${VERSION}"
STAMP="$SRC/.fetched-${VERSION}-${DEB_REVISION}"

if [[ -f $STAMP ]]; then
  echo "libsodium: $SRC is ready"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

check() { # file sha256
  [[ -f $work/$1 ]] && echo "$2  $work/$1" | sha256sum --quiet -c - 2>/dev/null
}

fetch_apt_source() {
  command -v apt-get >/dev/null || return 1
  local src=/etc/apt/sources.list.d/debian.sources
  [[ -r $src ]] || return 1
  mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/apt/parts"
  sed 's/^Types: deb$/Types: deb-src/' "$src" >"$work/apt/parts/src.sources"
  local O=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::sourceparts=$work/apt/parts"
           -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache")
  apt-get "${O[@]}" -qq update >/dev/null 2>&1 || return 1
  (cd "$work" && apt-get "${O[@]}" -qq source --download-only "libsodium=${VERSION}-${DEB_REVISION}" >/dev/null 2>&1)
}

fetch_direct() {
  local f
  for f in "$ORIG" "$DEBIAN"; do
    if command -v curl >/dev/null; then curl -fsSL -o "$work/$f" "$POOL/$f" || return 1
    else python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
           "$POOL/$f" "$work/$f" || return 1
    fi
  done
}

echo "libsodium: fetching the Debian source package ${VERSION}-${DEB_REVISION}"
if ! { fetch_apt_source && check "$ORIG" "$ORIG_SHA256" && check "$DEBIAN" "$DEBIAN_SHA256"; }; then
  fetch_direct || { echo "libsodium: download failed; the QEMU firmware build needs it (network to deb.debian.org)" >&2; exit 1; }
fi
check "$ORIG" "$ORIG_SHA256" || { echo "libsodium: $ORIG does not match its pinned sha256; refusing it" >&2; exit 1; }
check "$DEBIAN" "$DEBIAN_SHA256" || { echo "libsodium: $DEBIAN does not match its pinned sha256; refusing it" >&2; exit 1; }

mkdir -p "$DEST"
rm -rf "$SRC"
tar xzf "$work/$ORIG" -C "$DEST"
tar xJf "$work/$DEBIAN" -C "$work"
while read -r p; do
  [[ -z $p || $p == \#* ]] && continue
  patch -s -d "$SRC" -p1 <"$work/debian/patches/$p"
done <"$work/debian/patches/series"
touch "$STAMP"
echo "libsodium: unpacked into $SRC"
