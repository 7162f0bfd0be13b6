#!/usr/bin/env bash
# ensure-apt.sh PACKAGE COMMAND...: makes sure every COMMAND is on PATH, installing Debian's PACKAGE where one is
# missing and we may (root or sudo, apt-get present). Exits non-zero, saying what to install, when it cannot.
set -euo pipefail
package=$1; shift
have() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 || return 1; done; }
have "$@" && exit 0
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -qq --no-install-recommends "$package" >/dev/null; }
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "$* not found: installing Debian's $package package" >&2
  install 2>/dev/null || { apt-get update -qq >/dev/null && install; }
elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package"
fi
have "$@" || { echo "$* missing and could not be installed: install Debian's $package package (or the upstream release) and put $* on PATH" >&2; exit 1; }
