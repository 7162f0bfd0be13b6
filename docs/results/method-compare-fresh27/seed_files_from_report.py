#!/usr/bin/env python3
"""Write a sweep report's seeds back as the sweep's kept seed files (OUT/seed-<k>.json), so that a later
`sweep` with the same settings reads them and reports them together with its own seeds.

usage: python3 seed_files_from_report.py REPORT.json[.gz] SETTINGS_FROM.json OUT_DIR

SETTINGS_FROM.json is a seed file written by a sweep with the same command line; its "settings" string (what
lib/experiments/compare.ts compares before reusing a seed file) is copied into each written file. Each seed's
result is written unchanged (json.loads/json.dumps round-trip every float exactly).
"""
import gzip
import json
import os
import sys

report, settings_from, out = sys.argv[1:4]
with (gzip.open if report.endswith('.gz') else open)(report, 'rt') as f:
    seeds = json.load(f)['seeds']
with open(settings_from) as f:
    settings = json.load(f)['settings']
for s in seeds:
    path = os.path.join(out, f'seed-{s["seed"]}.json')
    if os.path.exists(path):
        raise SystemExit(f'{path} exists; not overwriting')
    with open(path, 'w') as f:
        json.dump({'settings': settings, 'result': s}, f)
    print(f'seed {s["seed"]} -> {path}')
