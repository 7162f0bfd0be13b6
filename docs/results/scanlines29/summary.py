#!/usr/bin/env python3
"""Round 29 (scanlines29): per probe file (scripts/scanlines29-probe.ts output), per evaluation type, paired
differences over the evaluation photographs (one draw of the type per photograph, 64 photographs), mean and 95%
t-interval (scipy):
  noise gap   start_sampled - start_mean   (one sampled action, sigma of the run, against the policy mean)
  mean        final_mean - start_mean      (what sweep --methods reports, per type)
  sampled     final_sampled - start_sampled (what GRPO's objective is about: a sampled action's reward)
and the GRPO training reward (mean of the sampled actions per step, training crops) over the first and last 50 steps.
usage: python3 summary.py FILE.json[.gz]...
"""
import gzip
import json
import sys

import numpy as np
from scipy import stats


def ci(x):
    x = np.asarray(x, float)
    m = x.mean()
    h = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else float('nan')
    return f'{m:+.4f} [{m - h:+.4f}, {m + h:+.4f}]'


for path in sys.argv[1:]:
    with (gzip.open if path.endswith('.gz') else open)(path, 'rt') as f:
        d = json.load(f)
    rep = d['reports']
    ps = {k: v['perSample'] for k, v in rep.items()}
    types = sorted(set(ps['identity']['type']))
    tr = d['trainRewards']
    extra = f", training reward first/last 50 steps {np.mean(tr[:50]):.4f} / {np.mean(tr[-50:]):.4f}" if len(tr) >= 100 else ''
    print(f"{path}: arm {d['arm']}, {d['steps']} steps, {d['trainCpuSeconds']:.0f} CPU s, sigma {d['sigma']:.4f}, train types {d['args'].get('train-types')}, sets {d['args'].get('set')}{extra}")
    for t in types:
        idx = [i for i, x in enumerate(ps['identity']['type']) if x == t]
        g = lambda k, m='reward': np.array([ps[k][m][i] for i in idx])
        line = f"  {t:18s} n {len(idx)}  start mean {g('start_mean').mean():.4f}  noise gap {ci(g('start_sampled') - g('start_mean'))}"
        if 'final_mean' in ps:
            line += f"  | mean {ci(g('final_mean') - g('start_mean'))}  sampled {ci(g('final_sampled') - g('start_sampled'))}"
            line += f"  | PSNR mean {np.mean(g('final_mean', 'psnr') - g('start_mean', 'psnr')):+.3f} dB  SSIM mean {np.mean(g('final_mean', 'ssim') - g('start_mean', 'ssim')):+.4f}"
        print(line)
