#!/usr/bin/env bash
# Makes sure Debian's chromium is installed (the web page test drives it headless through playwright-core).
# Never downloads Playwright's own browser builds.
exec bash "$(dirname "$0")/ensure-apt.sh" chromium chromium
