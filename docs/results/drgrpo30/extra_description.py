#!/usr/bin/env python3
"""Description only (written after hypotheses.txt was read): per seed, the scan_lines gain over the warm start of
A (dense), C (nostd) and D (nostdkl); and each report's extra continued-SFT arm against base's (run2.sh's sweeps
ran --methods dense,sft: the same method, settings SFT does not read, the same warm start).
usage: python3 extra_description.py base-compare.json.gz nostd-compare.json.gz nostdkl-compare.json.gz"""
import gzip
import json
import sys

import numpy as np


def load(p):
    with (gzip.open if p.endswith('.gz') else open)(p, 'rt') as f:
        return {s['seed']: s for s in json.load(f)['seeds']}


def arm(s, m):
    r = next(r for r in s['runs'] if r['method'] == m)
    return r['final']['perSample'], r['steps']


base, nostd, kl = (load(p) for p in sys.argv[1:4])
print('scan_lines gain over the warm start per seed (mean over its draws): A dense, C nostd, D nostdkl')
for k in sorted(base):
    st = base[k]['start']['gaussian']['perSample']
    sel = np.array([t == 'scan_lines' for t in st['type']])
    g = lambda p: (np.array(p['reward']) - np.array(st['reward']))[sel].mean()
    print(f'  seed {k}: A {g(arm(base[k], "dense")[0]):+.4f}  C {g(arm(nostd[k], "dense")[0]):+.4f}  D {g(arm(kl[k], "dense")[0]):+.4f}')
print('continued SFT arms, gain over the warm start over all 16 (mean over draws) and steps: base / nostd report / nostdkl report')
for k in sorted(base):
    st = np.array(base[k]['start']['gaussian']['perSample']['reward'])
    row = []
    for rep in (base, nostd, kl):
        p, n = arm(rep[k], 'sft')
        row.append(f'{(np.array(p["reward"]) - st).mean():+.4f} ({n} steps)')
    same = arm(base[k], 'sft')[0]['reward'] == arm(nostd[k], 'sft')[0]['reward']
    print(f'  seed {k}: {" / ".join(row)}; base and nostd SFT equal draw for draw: {same}')
