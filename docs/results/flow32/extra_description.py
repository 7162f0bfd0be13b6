#!/usr/bin/env python3
"""Description only, written after hypotheses.txt was read (round 32, flow32): S - F on scan_lines (the part of H1 that
H7 leaves out); each arm - warm start on scan_lines; per seed SSIM and PSNR gains of each arm; how many draws each
arm moved by more than 0.1 reward (the dense collapse).
usage: python3 extra_description.py base-compare.json.gz
"""
import sys

import numpy as np

from hypotheses import arm, load, pooled, start

rep = load(sys.argv[1])
ks = sorted(rep)
sl = lambda t: t == 'scan_lines'
r = pooled([(arm(rep[k], 'flow:scalar'), arm(rep[k], 'flow:sft')) for k in ks], sl)
print(f'scan_lines S - F: {r["kind"]} {r["m"]:+.4f} [{r["lo"]:+.4f}, {r["hi"]:+.4f}] df {r["df"]:.2f}')
for m in ('flow:scalar', 'flow:dense', 'flow:sft'):
    r = pooled([(arm(rep[k], m), start(rep[k])) for k in ks], sl)
    print(f'scan_lines {m} - warm start: {r["m"]:+.4f} [{r["lo"]:+.4f}, {r["hi"]:+.4f}] df {r["df"]:.2f}')
print('\nper seed gains over the warm start: reward / SSIM / PSNR dB; draws moved by > 0.1 reward (of 512)')
for m in ('flow:scalar', 'flow:dense', 'flow:sft'):
    for k in ks:
        a, s = arm(rep[k], m), start(rep[k])
        g = {f: np.mean(np.array(a[f]) - np.array(s[f])) for f in ('reward', 'ssim', 'psnr')}
        big = int(np.sum(np.abs(np.array(a['reward']) - np.array(s['reward'])) > 0.1))
        print(f'{m:12s} seed {k}: {g["reward"]:+.4f} / {g["ssim"]:+.4f} / {g["psnr"]:+.2f}; moved > 0.1: {big}')
