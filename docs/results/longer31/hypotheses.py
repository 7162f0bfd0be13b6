#!/usr/bin/env python3
"""The pre-registered test of preregistration.md (round 31, longer31): one `sweep --pool` report of the 240-CPU-s
base sweeps (arms dense = A, sft = B, from each seed's 1600-step warm start), paired by seed and evaluation draw.

usage: python3 hypotheses.py BASE/compare.json[.gz] [ROUND30_BASE/compare.json[.gz]]

1. The design's check: per seed, the warm start's, identity's, A's and B's evaluations on the same draws (id, type,
   level, in order). Any difference: stop (exit 2) before reading a result.
2. H1-H5 with 95% crossed seeds x photographs intervals: round 28's crossed_check.py `crossed` (copied unchanged),
   applied as lib/eval/crossed.ts's pooledDifference applies it (drgrpo30's hypotheses.py `pooled`, copied unchanged).
3. Description: steps, CPU and wall seconds per arm and seed; per type gains of A and B over the warm start;
   movement; PSNR/SSIM/cosine gains; with a second argument (round 30's 60-s base report, other seeds), A's and B's
   gains over their warm starts at 60 s beside 240 s (unpaired; Welch t over seeds' means, description only).
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


def gains(rep, ks, m, field='reward'):
    return np.array([np.mean(np.array(arm(rep[k], m)[field]) - np.array(start(rep[k])[field])) for k in ks])


def main():
    base = load(sys.argv[1])
    ks = sorted(base)
    print(f'{len(ks)} seed(s) in the report: {ks}')
    bad = False
    for k in ks:
        s = start(base[k])
        for name, p in (('identity', base[k]['identity']['perSample']), ('A dense', arm(base[k], 'dense')), ('B sft', arm(base[k], 'sft'))):
            ok = same_draws(s, p)
            print(f'check seed {k} warm start vs {name}: {len(s["id"])} / {len(p["id"])} draws, ' + ('same draws (id, type, level, in order)' if ok else 'DIFFERENT DRAWS'))
            bad |= not ok
    if bad:
        print('STOP: the evaluations are not on the same draws (preregistration.md: stop and report that)')
        sys.exit(2)
    if len(ks) < 3:
        print('fewer than 3 complete seeds: description only, no hypothesis decided (preregistration.md)')
    A = {k: arm(base[k], 'dense') for k in ks}
    B = {k: arm(base[k], 'sft') for k in ks}
    S = {k: start(base[k]) for k in ks}
    all16 = lambda t: True
    sl = lambda t: t == 'scan_lines'
    o15 = lambda t: t != 'scan_lines'
    hyps = [
        ('H1 (primary)', '16: A (dense, 240 s) - B (sft, 240 s)', A, B, all16, ('>', 0.0)),
        ('H2', '16: A - warm start', A, S, all16, ('>', 0.0)),
        ('H3', '16: B - warm start', B, S, all16, ('>', 0.0)),
        ('H4', 'scan_lines: A - warm start', A, S, sl, ('<', 0.0)),
        ('H5', 'other 15: A - B', A, B, o15, ('>', 0.0)),
    ]
    for name, label, X, Y, keep, (rule, thr) in hyps:
        r = pooled([(X[k], Y[k]) for k in ks], keep)
        ok = r['lo'] > thr if rule == '>' else r['hi'] < thr
        verdict = ('CONFIRMED' if ok else 'NOT CONFIRMED') if len(ks) >= 3 else '(description: < 3 seeds)'
        per_seed = []
        for k in ks:
            sel = np.array([keep(t) for t in X[k]['type']])
            per_seed.append(f'{k}: {(np.array(X[k]["reward"]) - np.array(Y[k]["reward"]))[sel].mean():+.4f}')
        print(f'{name} {label} {rule} {thr:+.4f}: {r["kind"]} {r["m"]:+.4f} [{r["lo"]:+.4f}, {r["hi"]:+.4f}] '
              f'df {r["df"]:.2f} (used {r["dff"]}); {r["P"]} photographs (of {r["all"]}) -> {verdict}')
        print(f'    per seed, mean over draws: {", ".join(per_seed)}')

    print('\n== description only')
    for label, X, m in (('A dense', A, 'dense'), ('B sft', B, 'sft')):
        steps = [run(base[k], m)['steps'] for k in ks]
        secs = [run(base[k], m)['seconds'] for k in ks]
        wall = [run(base[k], m)['wallSeconds'] for k in ks]
        mv = [np.mean(np.abs(np.array(X[k]['reward']) - np.array(S[k]['reward']))) for k in ks]
        g = gains(base, ks, m)
        print(f'{label}: steps {steps}; CPU s {", ".join(f"{v:.1f}" for v in secs)}; wall s {", ".join(f"{v:.0f}" for v in wall)}')
        print(f'    gain over start (16) {g.mean():+.4f} (per seed {", ".join(f"{v:+.4f}" for v in g)}); '
              f'SSIM {gains(base, ks, m, "ssim").mean():+.4f}; PSNR {gains(base, ks, m, "psnr").mean():+.3f} dB; '
              f'movement mean|final-start| {np.mean(mv):.4f} (per seed {", ".join(f"{v:.4f}" for v in mv)})')
    cos = {m: [run(base[k], m)['gain'].get('clip_cos') for k in ks] for m in ('dense', 'sft')}
    print(f'embedding-cosine gain (sweep\'s own): A {np.mean(cos["dense"]):+.4f}, B {np.mean(cos["sft"]):+.4f}')
    types = sorted(set(S[ks[0]]['type']))
    print('\nper type, gain over the warm start (mean over seeds and draws); warm start reward')
    print(f"{'type':24s} {'start':>7s} {'A dense':>8s} {'B sft':>8s} {'A-B':>8s}")
    for t in types:
        def g(X):
            return np.mean([np.mean([X[k]['reward'][i] - S[k]['reward'][i] for i, tt in enumerate(S[k]['type']) if tt == t]) for k in ks])
        st = np.mean([np.mean([S[k]['reward'][i] for i, tt in enumerate(S[k]['type']) if tt == t]) for k in ks])
        print(f'{t:24s} {st:7.4f} {g(A):+8.4f} {g(B):+8.4f} {g(A) - g(B):+8.4f}')

    if len(sys.argv) > 2:
        old = load(sys.argv[2])
        ok_ = sorted(old)
        print(f'\n240 s (seeds {ks}) beside 60 s (round 30 base, seeds {ok_}; other warm starts: unpaired, description only)')
        for label, m in (('A dense', 'dense'), ('B sft', 'sft')):
            g2, g6 = gains(base, ks, m), gains(old, ok_, m)
            t = stats.ttest_ind(g2, g6, equal_var=False)
            st6 = [run(old[k], m)['steps'] for k in ok_]
            print(f'{label}: gain 240 s {g2.mean():+.4f} (sd {g2.std(ddof=1):.4f}), 60 s {g6.mean():+.4f} (sd {g6.std(ddof=1):.4f}); '
                  f'difference {g2.mean() - g6.mean():+.4f}, Welch t {t.statistic:.2f} p {t.pvalue:.3f}; 60-s steps {st6}')
        d2 = gains(base, ks, 'dense') - gains(base, ks, 'sft')
        d6 = gains(old, ok_, 'dense') - gains(old, ok_, 'sft')
        t = stats.ttest_ind(d2, d6, equal_var=False)
        print(f'A - B: 240 s {d2.mean():+.4f} (sd {d2.std(ddof=1):.4f}), 60 s {d6.mean():+.4f} (sd {d6.std(ddof=1):.4f}); Welch t {t.statistic:.2f} p {t.pvalue:.3f}')


if __name__ == '__main__':
    main()
