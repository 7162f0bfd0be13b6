#!/usr/bin/env python3
"""Description only, written after hypotheses.txt was read (round 31, longer31): A - B on scan_lines (the part of
H1 that H5 leaves out), and per type A - B at 240 s (this round) beside 60 s (round 30's base report, other seeds).
usage: python3 extra_description.py base-compare.json.gz ../drgrpo30/base-compare.json.gz
"""
import sys

import numpy as np

from hypotheses import arm, load, pooled, start

new, old = load(sys.argv[1]), load(sys.argv[2])
for label, rep in (('240 s (seeds 50-54)', new), ('60 s (round 30, seeds 40-44)', old)):
    ks = sorted(rep)
    r = pooled([(arm(rep[k], 'dense'), arm(rep[k], 'sft')) for k in ks], lambda t: t == 'scan_lines')
    print(f'{label}: A - B on scan_lines {r["kind"]} {r["m"]:+.4f} [{r["lo"]:+.4f}, {r["hi"]:+.4f}] df {r["df"]:.2f}')
    for m in ('dense', 'sft'):
        r = pooled([(arm(rep[k], m), start(rep[k])) for k in ks], lambda t: t == 'scan_lines')
        print(f'    {m} - warm start on scan_lines {r["m"]:+.4f} [{r["lo"]:+.4f}, {r["hi"]:+.4f}] df {r["df"]:.2f}')
print('\nper type A - B (mean over seeds and draws): 240 s, 60 s')
types = sorted(set(start(new[50])['type']))
for t in types:
    def d(rep):
        return np.mean([np.mean([a - b for a, b, tt in zip(arm(rep[k], 'dense')['reward'], arm(rep[k], 'sft')['reward'], start(rep[k])['type']) if tt == t]) for k in sorted(rep)])
    print(f'{t:24s} {d(new):+.4f} {d(old):+.4f}')
