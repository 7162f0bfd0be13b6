#!/usr/bin/env bash
# Makes sure Debian's chromium is installed (the web page test drives it headless through playwright-core):
# installs the chromium package where it is missing and we may. Never downloads Playwright's own browser builds.
set -euo pipefail
have() { [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; }
have && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium not found: installing Debian's chromium package" >&2
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium >/dev/null; })
elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
fi
have || { echo "chromium is missing and could not be installed: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH" >&2; exit 1; }
