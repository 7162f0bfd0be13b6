#!/usr/bin/env python3
"""Description only (not the pre-registered test): the t over seeds (df S - 1) of each seed's mean dense - sft
reward difference over the draws of the other 15 types and of scan_lines, from the unrounded per-draw scores.

usage: python3 per_type_seed_t.py compare.json[.gz]
"""
import gzip
import json
import sys

import numpy as np
from scipy import stats

path = sys.argv[1]
with (gzip.open if path.endswith('.gz') else open)(path, 'rt') as f:
    seeds = json.load(f)['seeds']
means = {False: [], True: []}
for s in seeds:
    d, f = (next(r for r in s['runs'] if r['method'] == m)['final']['perSample'] for m in ('dense', 'sft'))
    assert d['id'] == f['id'] and d['type'] == f['type']
    diff = np.array(d['reward']) - np.array(f['reward'])
    scan = np.array(d['type']) == 'scan_lines'
    means[False].append(diff[~scan].mean())
    means[True].append(diff[scan].mean())
for keep, label in ((False, 'without scan_lines'), (True, 'scan_lines alone')):
    v = np.array(means[keep])
    h = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    print(f'dense - sft reward, {label}: t over {len(v)} seeds {v.mean():+.4f} [{v.mean() - h:+.4f}, {v.mean() + h:+.4f}] '
          f'df {len(v) - 1}; seeds positive {int((v > 0).sum())} of {len(v)}')
