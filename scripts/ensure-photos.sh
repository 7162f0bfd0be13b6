#!/usr/bin/env bash
# Makes sure the Debian packages of the built-in photo dataset (lib/data/photos.ts, PHOTO_PACKAGES) are
# installed, installing the missing ones with apt where we may (root or sudo). Without apt it fails, saying how
# to supply photographs instead. The packages ship no commands, so each is checked by its copyright file.
# python3-skimage (PHOTO_EXTRACTED_PACKAGES) is not installed (it would pull in scipy, matplotlib and 55 more
# packages): its .deb is fetched with `apt-get download` (no root needed) and its sample photographs and
# copyright file unpacked into the cache (lib/data/photos.ts photoCacheDir), unless it is installed.
set -euo pipefail
cache="${RECOVERY_GRPO_PHOTO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/recovery-grpo/debian}"
extract() { # package: unpack its copyright file and data/ photographs into $cache/<package>
  local p=$1 dest="$cache/$1" tmp
  [ -f "/usr/share/doc/$p/copyright" ] || [ -f "$dest/usr/share/doc/$p/copyright" ] && return 0
  command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 || {
    echo "photo dataset: Debian package $p is needed (its sample photographs) and this machine has no apt-get/dpkg-deb: install it, or train on your own photographs: data.source.kind folder or manifest (docs/data.md)" >&2; return 1; }
  tmp=$(mktemp -d)
  echo "photo dataset: fetching Debian's $p (photographs only, unpacked into $dest)" >&2
  (cd "$tmp" && { apt-get download -qq "$p" 2>/dev/null || { apt-get update -qq >/dev/null 2>&1 && apt-get download -qq "$p"; }; } && dpkg-deb -x ./*.deb x) || {
    rm -rf "$tmp"; echo "photo dataset: could not fetch $p with apt-get download; install it, or train on your own photographs: data.source.kind folder or manifest (docs/data.md)" >&2; return 1; }
  mkdir -p "$dest/usr/share/doc/$p" "$dest/usr/lib/python3/dist-packages/skimage"
  cp "$tmp/x/usr/share/doc/$p/copyright" "$dest/usr/share/doc/$p/"
  rm -rf "$dest/usr/lib/python3/dist-packages/skimage/data"
  cp -r "$tmp/x/usr/lib/python3/dist-packages/skimage/data" "$dest/usr/lib/python3/dist-packages/skimage/"
  rm -rf "$tmp"
}
extract python3-skimage
packages=(opencv-doc mate-backgrounds lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 plasma-workspace-wallpapers)
missing=()
for p in "${packages[@]}"; do [ -f "/usr/share/doc/$p/copyright" ] || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
how="or train on your own photographs: data.source.kind folder (a folder of PNG/JPEG/WebP files) or manifest (docs/data.md)"
export DEBIAN_FRONTEND=noninteractive
if ! command -v apt-get >/dev/null 2>&1; then
  echo "photo dataset: Debian packages ${missing[*]} are missing and this machine has no apt-get: install them, $how" >&2
  exit 1
fi
echo "photo dataset: installing Debian's ${missing[*]}" >&2
install() { $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "photo dataset: ${missing[*]} missing; run as root or with sudo to install them, $how" >&2; exit 1; }
  sudo="sudo"
fi
install 2>/dev/null || { $sudo apt-get update -qq >/dev/null && install; } || {
  echo "photo dataset: could not install ${missing[*]} with apt-get; install them, $how" >&2; exit 1; }
