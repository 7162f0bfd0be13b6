#!/usr/bin/env python3
"""Description only (written after the pre-registered test was read): per corruption type, averaged over the seeds of
a sweep report, the reward of identity, of the shared warm start, and each arm's gain over the warm start.

usage: python3 per_type_gains.py compare.json[.gz]
"""
import gzip
import json
import sys

import numpy as np

path = sys.argv[1]
with (gzip.open if path.endswith('.gz') else open)(path, 'rt') as f:
    seeds = json.load(f)['seeds']
rows = {}
for s in seeds:
    start, ident = s['start']['gaussian']['byType'], s['identity']['byType']
    arm = {r['method']: r['final']['byType'] for r in s['runs']}
    for t in start:
        rows.setdefault(t, []).append((ident[t]['reward'], start[t]['reward'], arm['dense'][t]['reward'] - start[t]['reward'], arm['sft'][t]['reward'] - start[t]['reward']))
print(f'{len(seeds)} seeds ({", ".join(str(s["seed"]) for s in seeds)}), reward means over seeds, types by warm start - identity')
print(f"{'type':24s} {'identity':>8s} {'start':>8s} {'start-id':>8s} {'dense gain':>10s} {'sft gain':>9s} {'dense-sft':>9s}")
for t, a in sorted(((t, np.array(v).mean(0)) for t, v in rows.items()), key=lambda x: -(x[1][1] - x[1][0])):
    print(f'{t:24s} {a[0]:8.4f} {a[1]:8.4f} {a[1] - a[0]:+8.4f} {a[2]:+10.4f} {a[3]:+9.4f} {a[2] - a[3]:+9.4f}')
