#!/usr/bin/env python3
"""Independent check (numpy/scipy) of compare-paired.ts's rows for a `sweep --methods` report's compare.json.
Round 32 (flow32): round 31's (longer31) crossed_check.py with the flow family's arms and warm start
(`start.flow`); `crossed` unchanged (round 28's).

usage: python3 crossed_check.py compare.json[.gz]

For dense - sft (and each arm and the warm start against identity): per seed, each photograph's mean difference over
its draws; the seeds x photographs table as a two-way crossed random-effects layout without replication (the formula
of docs/results/demo-r26-fresh/crossed_check.py, stats26, written from the formula and not from lib/eval/crossed.ts):
Var(mean) = (MS_seed + MS_photo - MS_resid) / (S P), a component whose mean square is below MS_resid dropped,
Satterthwaite df (unrounded, and floored as the report prints it), t quantile from scipy. Also the t over the seeds'
means (df S - 1) and each seed's mean with its t interval over photographs (that seed's policies fixed).
"""
import gzip
import json
import sys

import numpy as np
from scipy import stats


def per_sample(seed, side):
    if side == 'identity':
        return seed['identity']['perSample']
    if side == 'start':
        return seed['start']['flow']['perSample']
    return next(r for r in seed['runs'] if r['method'] == side)['final']['perSample']


def table(seeds, a, b, metric):
    rows = []
    for s in seeds:
        pa, pb = per_sample(s, a), per_sample(s, b)
        assert pa['id'] == pb['id'] and pa['type'] == pb['type'] and pa['level'] == pb['level']
        acc = {}
        for i, pid in enumerate(pa['id']):
            acc.setdefault(pid, []).append(pa[metric][i] - pb[metric][i])
        rows.append({k: float(np.mean(v)) for k, v in acc.items()})
    common = sorted(set.intersection(*(set(r) for r in rows)))
    return np.array([[r[p] for p in common] for r in rows])


def crossed(y):
    S, P = y.shape
    gm = y.mean()
    sm, pm = y.mean(axis=1), y.mean(axis=0)
    ms_seed = P * ((sm - gm) ** 2).sum() / (S - 1)
    ms_photo = S * ((pm - gm) ** 2).sum() / (P - 1)
    resid = y - sm[:, None] - pm[None, :] + gm
    df_res = (S - 1) * (P - 1)
    ms_res = (resid ** 2).sum() / df_res
    c_seed = 1.0 if ms_seed >= ms_res else 0.0
    c_photo = 1.0 if ms_photo >= ms_res else 0.0
    c_res = 1.0 - c_seed - c_photo
    terms = [(c_seed * ms_seed, S - 1), (c_photo * ms_photo, P - 1), (c_res * ms_res, df_res)]
    tot = sum(t for t, _ in terms)
    se = np.sqrt(tot / (S * P))
    df = tot ** 2 / sum(t ** 2 / d for t, d in terms)
    dff = max(1, int(np.floor(df + 1e-9)))
    h = stats.t.ppf(0.975, dff) * se
    return gm, gm - h, gm + h, df, dff


def main():
    path = sys.argv[1]
    with (gzip.open if path.endswith('.gz') else open)(path, 'rt') as f:
        seeds = json.load(f)['seeds']
    print(f'{len(seeds)} seeds: {[s["seed"] for s in seeds]}')
    arms = [m for m in ('flow:scalar', 'flow:dense', 'flow:sft') if all(any(r['method'] == m for r in s['runs']) for s in seeds)]
    pairs = [(a, b) for i, a in enumerate(arms) for b in arms[i + 1:]] + [(a, 'start') for a in arms] + [(a, 'identity') for a in arms + ['start']]
    for a, b in pairs:
        for metric in ('reward', 'ssim', 'psnr'):
            y = table(seeds, a, b, metric)
            m, lo, hi, df, dff = crossed(y)
            sm = y.mean(axis=1)
            th = stats.t.ppf(0.975, len(sm) - 1) * sm.std(ddof=1) / np.sqrt(len(sm))
            d = 2 if metric == 'psnr' else 4
            print(f'{a} - {b} {metric}: crossed {m:+.{d}f} [{lo:+.{d}f}, {hi:+.{d}f}] df {df:.2f} (used {dff}); '
                  f't over seeds [{m - th:+.{d}f}, {m + th:+.{d}f}] df {len(sm) - 1}; {y.shape[1]} photographs')
            if (a, b) == ('flow:scalar', 'flow:sft'):
                for s, row in zip(seeds, y):
                    h = stats.t.ppf(0.975, len(row) - 1) * row.std(ddof=1) / np.sqrt(len(row))
                    print(f'    seed {s["seed"]}: {row.mean():+.{d}f} [{row.mean() - h:+.{d}f}, {row.mean() + h:+.{d}f}] over photographs')


if __name__ == '__main__':
    main()
