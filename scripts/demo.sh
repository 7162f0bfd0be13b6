#!/usr/bin/env bash
# The local run: installs what is missing (npm packages, Debian's nats-server and the photo packages of the
# built-in dataset), then `recovery-grpo demo` with any arguments given (e.g. --steps 50 --out runs/mine).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || bash scripts/npm-ci.sh
bash scripts/ensure-nats-server.sh
bash scripts/ensure-photos.sh
exec node bin/recovery-grpo.mjs demo "$@"
