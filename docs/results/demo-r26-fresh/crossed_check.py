#!/usr/bin/env python3
"""Independent check of scripts/demo-table.ts's pooled rows (lib/eval/crossed.ts), in numpy/scipy.

usage: python3 crossed_check.py runs/demo-r25-s10/summary.json ... (summary.json or .json.gz)

Per run, each photograph's mean difference over its draws (a - b); the runs x photographs table (photographs in
every run) as a two-way crossed random-effects layout without replication: Var(mean) = (MS_run + MS_photo -
MS_resid) / (R P), a component whose mean square falls below MS_resid is dropped (floored at 0), Satterthwaite df
(printed unrounded, and floored as the table prints it), t quantile from scipy. Also the plain t interval over the
runs' means (df R - 1), for comparison.
"""
import gzip
import json
import sys

import numpy as np
from scipy import stats


def load(path):
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rt') as f:
        return json.load(f)


def cells(runs, a, b, metric, key=None, name=None):
    per_run = []
    for r in runs:
        pa, pb = r[a]['perSample'], r[b]['perSample']
        assert pa['id'] == pb['id'] and pa['type'] == pb['type'] and pa['level'] == pb['level']
        acc = {}
        for i, pid in enumerate(pa['id']):
            if key is not None and pa[key][i] != name:
                continue
            acc.setdefault(pid, []).append(pa[metric][i] - pb[metric][i])
        per_run.append({k: float(np.mean(v)) for k, v in acc.items()})
    common = sorted(set.intersection(*(set(m) for m in per_run)))
    return np.array([[m[p] for p in common] for m in per_run])


def crossed(y):
    R, P = y.shape
    gm = y.mean()
    rm, pm = y.mean(axis=1), y.mean(axis=0)
    ms_run = P * ((rm - gm) ** 2).sum() / (R - 1)
    ms_photo = R * ((pm - gm) ** 2).sum() / (P - 1)
    resid = y - rm[:, None] - pm[None, :] + gm
    df_res = (R - 1) * (P - 1)
    ms_res = (resid ** 2).sum() / df_res
    c_run = 1.0 if ms_run >= ms_res else 0.0
    c_photo = 1.0 if ms_photo >= ms_res else 0.0
    c_res = 1.0 - c_run - c_photo
    terms = [(c_run * ms_run, R - 1), (c_photo * ms_photo, P - 1), (c_res * ms_res, df_res)]
    tot = sum(t for t, _ in terms)
    se = np.sqrt(tot / (R * P))
    df = tot ** 2 / sum(t ** 2 / d for t, d in terms)
    dff = max(1, int(np.floor(df + 1e-9)))
    h = stats.t.ppf(0.975, dff) * se
    return gm, gm - h, gm + h, df, dff


def main():
    runs = [load(p) for p in sys.argv[1:]]
    print(f'{len(runs)} runs: ' + ', '.join(sys.argv[1:]))
    for metric in ('reward', 'ssim'):
        for lab, a, b in (('GRPO - SFT', 'after', 'before'), ('SFT - identity', 'before', 'identity'), ('GRPO - identity', 'after', 'identity')):
            y = cells(runs, a, b, metric)
            m, lo, hi, df, dff = crossed(y)
            rm = y.mean(axis=1)
            th = stats.t.ppf(0.975, len(rm) - 1) * rm.std(ddof=1) / np.sqrt(len(rm))
            print(f'{metric:6s} {lab:16s} {m:+.4f} [{lo:+.4f}, {hi:+.4f}] df {df:.2f} (used {dff}); {y.shape[1]} photographs;'
                  f' per run {" ".join(f"{x:+.4f}" for x in rm)}; t over run means [{m - th:+.4f}, {m + th:+.4f}] df {len(rm) - 1}')
    types = sorted(set(runs[0]['after']['perSample']['type']))
    levels = sorted(set(runs[0]['after']['perSample']['level']), key=float)
    print('GRPO - identity per row (reward), crossed:')
    worst = None
    for key, names in (('type', types), ('level', levels)):
        for n in names:
            y = cells(runs, 'after', 'identity', 'reward', key, n)
            m, lo, hi, df, dff = crossed(y)
            per_run = y.mean(axis=1)
            print(f'  {n:24s} {m:+.3f} [{lo:+.3f}, {hi:+.3f}] df {dff}; per run min {per_run.min():+.4f}')
            if worst is None or per_run.min() < worst[1]:
                worst = (n, per_run.min())
    print(f'worst per-run row (photographs in every run): {worst[0]} {worst[1]:+.4f}')


if __name__ == '__main__':
    main()
