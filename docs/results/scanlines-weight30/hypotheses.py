#!/usr/bin/env python3
"""The pre-registered test of preregistration.md (round 29, weight30): two `sweep --pool` reports, base and slw4
(data.corruptions.weights={"scan_lines":4}, from base's warm starts), paired by seed and evaluation draw.

usage: python3 hypotheses.py BASE/compare.json[.gz] SLW4/compare.json[.gz]

1. The design's check: per seed, the two reports' warm-start evaluations equal draw for draw (id, type, level, reward,
   ssim, psnr); also identity's. Any difference: stop (exit 2) before reading a result.
2. H1-H4 (95% intervals). The interval is round 28's crossed_check.py `crossed` (copied unchanged: two-way crossed
   seeds x photographs random effects without replication, Var(mean) = (MS_seed + MS_photo - MS_resid) / (S P), a
   component whose mean square is below MS_resid dropped, Satterthwaite df floored, scipy's t quantile), applied as
   lib/eval/crossed.ts's pooledDifference applies crossedMeanCI: per seed each photograph's mean difference over its
   draws in the row; the photographs common to all seeds when they are >= 90% of each seed's (else the t interval over
   the seeds' means, df S - 1); one seed: the t interval over its photographs (df P - 1).
   The rows: H1 scan_lines draws; H2 the other 15 types' draws; H3 and H4 all draws.
"""
import gzip
import json
import sys

import numpy as np
from scipy import stats

from crossed_check import crossed  # round 28's, copied unchanged beside this file

COMMON_SHARE = 0.9


def load(path):
    with (gzip.open if path.endswith('.gz') else open)(path, 'rt') as f:
        return {s['seed']: s for s in json.load(f)['seeds']}


def arm(seed, m):
    return next(r for r in seed['runs'] if r['method'] == m)['final']['perSample']


def same_draws(a, b):
    return a['id'] == b['id'] and a['type'] == b['type'] and a['level'] == b['level']


def pooled(pairs, keep):
    """pairs: [(a, b)] per seed (perSample of each side); keep(type) selects the draws. As pooledDifference."""
    per_run = []
    for a, b in pairs:
        assert same_draws(a, b), 'the two sides were not scored on the same draws'
        acc = {}
        for i, pid in enumerate(a['id']):
            if keep(a['type'][i]):
                acc.setdefault(pid, []).append(a['reward'][i] - b['reward'][i])
        per_run.append({k: float(np.mean(v)) for k, v in acc.items()})
    allp = set().union(*per_run)
    common = sorted(set.intersection(*(set(r) for r in per_run)))
    if len(per_run) == 1:
        x = np.array(list(per_run[0].values()))
        h = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        return dict(kind='one-run (t over photographs)', m=x.mean(), lo=x.mean() - h, hi=x.mean() + h, df=len(x) - 1, dff=len(x) - 1, P=len(x), all=len(allp))
    if len(common) >= 2 and all(len(common) >= COMMON_SHARE * len(r) for r in per_run):
        y = np.array([[r[p] for p in common] for r in per_run])
        m, lo, hi, df, dff = crossed(y)
        return dict(kind='crossed', m=m, lo=lo, hi=hi, df=df, dff=dff, P=len(common), all=len(allp))
    x = np.array([np.mean(list(r.values())) for r in per_run])
    h = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return dict(kind='over-runs (t over seeds)', m=x.mean(), lo=x.mean() - h, hi=x.mean() + h, df=len(x) - 1, dff=len(x) - 1, P=len(allp), all=len(allp))


def main():
    base, slw = load(sys.argv[1]), load(sys.argv[2])
    ks = sorted(base)
    if sorted(slw) != ks:
        print(f'the reports hold different seeds: base {ks}, slw4 {sorted(slw)}')
        sys.exit(2)
    print(f'{len(ks)} seed(s): {ks}')
    bad = False
    for k in ks:
        for side, get in (('warm start', lambda s: s['start']['gaussian']['perSample']), ('identity', lambda s: s['identity']['perSample'])):
            a, b = get(base[k]), get(slw[k])
            diff = [f for f in ('id', 'type', 'level', 'reward', 'ssim', 'psnr') if a[f] != b[f]]
            print(f'check seed {k} {side}: {len(a["id"])} draws, ' + ('equal draw for draw (id, type, level, reward, ssim, psnr)' if not diff else f'DIFFER in {diff}'))
            bad |= bool(diff)
        assert same_draws(arm(base[k], 'dense'), arm(slw[k], 'dense')), f'seed {k}: dense arms not on the same draws'
    if bad:
        print('STOP: the warm-start evaluations differ between the reports (preregistration.md: stop and report that)')
        sys.exit(2)
    dw = [arm(slw[k], 'dense') for k in ks]
    db = [arm(base[k], 'dense') for k in ks]
    sb = [arm(base[k], 'sft') for k in ks]
    hyps = [
        ('H1', 'scan_lines: dense(weighted) - dense(base)', list(zip(dw, db)), lambda t: t == 'scan_lines', 0.01),
        ('H2', 'other 15 types: dense(weighted) - dense(base)', list(zip(dw, db)), lambda t: t != 'scan_lines', -0.0010),
        ('H3', 'all 16 types: dense(weighted) - dense(base)', list(zip(dw, db)), lambda t: True, 0.0),
        ('H4', 'all 16 types: dense(weighted) - sft(base)', list(zip(dw, sb)), lambda t: True, 0.0),
    ]
    for name, label, pairs, keep, thr in hyps:
        r = pooled(pairs, keep)
        ok = r['lo'] > thr
        per_seed = []
        for k, (a, b) in zip(ks, pairs):
            sel = np.array([keep(t) for t in a['type']])
            per_seed.append(f'{k}: {(np.array(a["reward"]) - np.array(b["reward"]))[sel].mean():+.4f}')
        print(f'{name} {label} > {thr:+.4f}: {r["kind"]} {r["m"]:+.4f} [{r["lo"]:+.4f}, {r["hi"]:+.4f}] '
              f'df {r["df"]:.2f} (used {r["dff"]}); {r["P"]} photographs (of {r["all"]}) -> '
              f'{"CONFIRMED" if ok else "NOT CONFIRMED"}')
        print(f'    per seed, mean over draws: {", ".join(per_seed)}')


if __name__ == '__main__':
    main()
