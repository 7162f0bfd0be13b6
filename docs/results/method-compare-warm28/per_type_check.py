#!/usr/bin/env python3
"""Post hoc (written after seeing paired.txt): how much of each seed's dense - sft reward gap is the scan_lines
corruption type. Per seed: the mean difference over all draws, over scan_lines draws, and over the other types;
then the crossed seeds x photographs interval (crossed_check.py's formula) of the difference with scan_lines draws
left out, and of scan_lines alone.

usage: python3 per_type_check.py compare.json[.gz]
"""
import gzip
import json
import sys

import numpy as np

sys.argv, path = sys.argv[:1], sys.argv[1]
from crossed_check import crossed  # noqa: E402


def side(seed, m):
    return next(r for r in seed['runs'] if r['method'] == m)['final']['perSample']


with (gzip.open if path.endswith('.gz') else open)(path, 'rt') as f:
    seeds = json.load(f)['seeds']
tables = {True: [], False: []}
for s in seeds:
    d, f = side(s, 'dense'), side(s, 'sft')
    assert d['id'] == f['id'] and d['type'] == f['type']
    diff = np.array(d['reward']) - np.array(f['reward'])
    scan = np.array(d['type']) == 'scan_lines'
    print(f'seed {s["seed"]}: all {diff.mean():+.4f}, scan_lines {diff[scan].mean():+.4f} ({scan.sum()} draws), '
          f'other {len(set(d["type"])) - 1} types {diff[~scan].mean():+.4f}')
    for keep in (True, False):
        acc = {}
        for i, pid in enumerate(d['id']):
            if scan[i] == keep:
                acc.setdefault(pid, []).append(diff[i])
        tables[keep].append({k: float(np.mean(v)) for k, v in acc.items()})
for keep, label in ((False, 'without scan_lines'), (True, 'scan_lines alone')):
    rows = tables[keep]
    common = sorted(set.intersection(*(set(r) for r in rows)))
    y = np.array([[r[p] for p in common] for r in rows])
    m, lo, hi, df, dff = crossed(y)
    print(f'dense - sft reward, {label}: crossed {m:+.4f} [{lo:+.4f}, {hi:+.4f}] df {df:.2f} (used {dff}); {y.shape[1]} photographs')
