#!/usr/bin/env python3
"""The pre-registered test of preregistration.md (round 30, drgrpo30): three `sweep --pool` reports, base (arms
dense = A, sft = B), nostd (dense = C) and nostdkl (dense = D), paired by seed and evaluation draw.

usage: python3 hypotheses.py BASE/compare.json[.gz] NOSTD/compare.json[.gz] NOSTDKL/compare.json[.gz]

1. The design's check: per seed, the three reports' warm-start evaluations (and identity's) equal draw for draw
   (id, type, level, reward, ssim, psnr). Any difference: stop (exit 2) before reading a result.
2. H1-H7 with 95% crossed seeds x photographs intervals: round 28's crossed_check.py `crossed` (copied unchanged),
   applied as lib/eval/crossed.ts's pooledDifference applies it (weight30's hypotheses.py `pooled`, copied unchanged).
3. Description: per type gains of A-D over the warm start; movement (mean |final - start| of the per-draw reward);
   PSNR; steps per arm.
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


def run(seed, m):
    return next(r for r in seed['runs'] if r['method'] == m)


def arm(seed, m):
    return run(seed, m)['final']['perSample']


def start(seed):
    return seed['start']['gaussian']['perSample']


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
    base, nostd, kl = (load(p) for p in sys.argv[1:4])
    ks = sorted(set(base) & set(nostd) & set(kl))
    for name, r in (('base', base), ('nostd', nostd), ('nostdkl', kl)):
        if sorted(r) != ks:
            print(f'{name} holds seeds {sorted(r)}; seeds in all three: {ks} (only those are used)')
    print(f'{len(ks)} seed(s) in all three reports: {ks}')
    bad = False
    for k in ks:
        for side, get in (('warm start', start), ('identity', lambda s: s['identity']['perSample'])):
            a = get(base[k])
            for name, other in (('nostd', nostd), ('nostdkl', kl)):
                b = get(other[k])
                diff = [f for f in ('id', 'type', 'level', 'reward', 'ssim', 'psnr') if a[f] != b[f]]
                print(f'check seed {k} {side} base vs {name}: {len(a["id"])} draws, ' + ('equal draw for draw (id, type, level, reward, ssim, psnr)' if not diff else f'DIFFER in {diff}'))
                bad |= bool(diff)
    if bad:
        print('STOP: the warm-start evaluations differ between the reports (preregistration.md: stop and report that)')
        sys.exit(2)
    if len(ks) < 3:
        print('fewer than 3 complete seeds: description only, no hypothesis decided (preregistration.md)')
    A = {k: arm(base[k], 'dense') for k in ks}
    B = {k: arm(base[k], 'sft') for k in ks}
    C = {k: arm(nostd[k], 'dense') for k in ks}
    Dd = {k: arm(kl[k], 'dense') for k in ks}
    S = {k: start(base[k]) for k in ks}
    all16 = lambda t: True
    sl = lambda t: t == 'scan_lines'
    o15 = lambda t: t != 'scan_lines'
    hyps = [
        ('H1 (primary)', '16: D (nostd, matched beta) - B (sft)', Dd, B, all16, ('>', 0.0)),
        ('H2', '16: D - A (dense, std)', Dd, A, all16, ('>', 0.0)),
        ('H3', 'scan_lines: D - A', Dd, A, sl, ('>', 0.0)),
        ('H4', 'other 15: D - A', Dd, A, o15, ('>', -0.0010)),
        ('H5', 'scan_lines: C (nostd, beta 0.05) - A', C, A, sl, ('>', 0.0)),
        ('H6', '16: C - warm start', C, S, all16, ('inside', 0.0005)),
        ('H7', '16: C - B', C, B, all16, ('>', 0.0)),
    ]
    for name, label, X, Y, keep, (rule, thr) in hyps:
        r = pooled([(X[k], Y[k]) for k in ks], keep)
        ok = r['lo'] > thr if rule == '>' else (r['lo'] > -thr and r['hi'] < thr)
        rs = f'> {thr:+.4f}' if rule == '>' else f'inside (-{thr:.4f}, +{thr:.4f})'
        verdict = ('CONFIRMED' if ok else 'NOT CONFIRMED') if len(ks) >= 3 else ('(description: < 3 seeds)')
        per_seed = []
        for k in ks:
            sel = np.array([keep(t) for t in X[k]['type']])
            per_seed.append(f'{k}: {(np.array(X[k]["reward"]) - np.array(Y[k]["reward"]))[sel].mean():+.4f}')
        print(f'{name} {label} {rs}: {r["kind"]} {r["m"]:+.4f} [{r["lo"]:+.4f}, {r["hi"]:+.4f}] '
              f'df {r["df"]:.2f} (used {r["dff"]}); {r["P"]} photographs (of {r["all"]}) -> {verdict}')
        print(f'    per seed, mean over draws: {", ".join(per_seed)}')

    print('\n== description only')
    arms = (('A dense', A, base, 'dense'), ('B sft', B, base, 'sft'), ('C nostd', C, nostd, 'dense'), ('D nostdkl', Dd, kl, 'dense'))
    for label, X, rep, m in arms:
        steps = [run(rep[k], m)['steps'] for k in ks]
        mv = [np.mean(np.abs(np.array(X[k]['reward']) - np.array(S[k]['reward']))) for k in ks]
        gain = [np.mean(np.array(X[k]['reward']) - np.array(S[k]['reward'])) for k in ks]
        dpsnr = [np.mean(np.array(X[k]['psnr']) - np.array(S[k]['psnr'])) for k in ks]
        print(f'{label:10s} steps {steps}; gain over start (16) {np.mean(gain):+.4f} (per seed {", ".join(f"{g:+.4f}" for g in gain)}); '
              f'movement mean|final-start| {np.mean(mv):.4f} (per seed {", ".join(f"{v:.4f}" for v in mv)}); PSNR change {np.mean(dpsnr):+.3f} dB')
    types = sorted(set(S[ks[0]]['type']))
    print(f'\nper type, gain over the warm start (mean over seeds and draws); warm start reward')
    print(f"{'type':24s} {'start':>7s} {'A dense':>8s} {'B sft':>8s} {'C nostd':>8s} {'D nostdkl':>9s} {'D-A':>8s}")
    for t in types:
        def g(X):
            return np.mean([np.mean([X[k]['reward'][i] - S[k]['reward'][i] for i, tt in enumerate(S[k]['type']) if tt == t]) for k in ks])
        st = np.mean([np.mean([S[k]['reward'][i] for i, tt in enumerate(S[k]['type']) if tt == t]) for k in ks])
        print(f'{t:24s} {st:7.4f} {g(A):+8.4f} {g(B):+8.4f} {g(C):+8.4f} {g(Dd):+9.4f} {g(Dd) - g(A):+8.4f}')


if __name__ == '__main__':
    main()
