#!/usr/bin/env bash
# The project's test command: installs what is missing, type-checks, then runs every test/**/*.test.ts
# with node's own test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || bash scripts/npm-ci.sh
bash scripts/ensure-nats-server.sh
bash scripts/ensure-prometheus.sh
bash scripts/ensure-chromium.sh
bash scripts/ensure-photos.sh
bash scripts/faults/ensure-tools.sh || echo "network-fault suite tools missing: test/faults/ will be skipped" >&2
npx tsc --noEmit -p .
mapfile -t files < <(find test -name '*.test.ts' | sort)
exec node --import tsx --test --test-concurrency=1 "${files[@]}"
