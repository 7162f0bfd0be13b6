#!/usr/bin/env bash
# Makes sure the Debian packages of the built-in photo dataset (lib/data/photos.ts, PHOTO_PACKAGES) are
# installed, installing the missing ones with apt where we may (root or sudo). Without apt it fails, saying how
# to supply photographs instead. The packages ship no commands, so each is checked by its copyright file.
set -euo pipefail
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
