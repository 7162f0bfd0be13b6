#!/usr/bin/env python3
"""The pre-registered test of preregistration.md (round 32, flow32): one `sweep --pool` report of the 240-CPU-s flow
sweeps (arms flow:scalar = S, flow:dense = D, flow:sft = F, from each seed's 800-step flow warm start), paired by
seed and evaluation draw.

usage: python3 hypotheses.py BASE/compare.json[.gz]

1. The design's check: per seed, the warm start's, identity's and every arm's evaluations on the same draws (id,
   type, level, in order). Any difference: stop (exit 2) before reading a result.
2. H1-H8 with 95% crossed seeds x photographs intervals: round 28's crossed_check.py `crossed` (copied unchanged
   into crossed_check.py) applied as lib/eval/crossed.ts's pooledDifference applies it (round 31's hypotheses.py
   `pooled`, copied unchanged). A hypothesis on an arm that is not in the report is printed as not run.
3. Description: steps, CPU and wall seconds per arm and seed; gains over the warm start (reward, SSIM, PSNR,
   embedding cosine); movement; per type gains over the warm start.
"""
import gzip
import json
import sys

import numpy as np
from scipy import stats

from crossed_check import crossed  # round 28's `crossed`, unchanged (the file's other functions read flow arms)

COMMON_SHARE = 0.9
S_, D_, F_ = 'flow:scalar', 'flow:dense', 'flow:sft'


def load(path):
    with (gzip.open if path.endswith('.gz') else open)(path, 'rt') as f:
        return {s['seed']: s for s in json.load(f)['seeds']}


def run(seed, m):
    return next(r for r in seed['runs'] if r['method'] == m)


def has(seed, m):
    return any(r['method'] == m for r in seed['runs'])


def arm(seed, m):
    return run(seed, m)['final']['perSample']


def start(seed):
    return seed['start']['flow']['perSample']


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
    arms = [m for m in (S_, D_, F_) if all(has(base[k], m) for k in ks)]
    print(f'arms in every seed: {arms}')
    bad = False
    for k in ks:
        s = start(base[k])
        for name, p in [('identity', base[k]['identity']['perSample'])] + [(m, arm(base[k], m)) for m in arms]:
            ok = same_draws(s, p)
            print(f'check seed {k} warm start vs {name}: {len(s["id"])} / {len(p["id"])} draws, ' + ('same draws (id, type, level, in order)' if ok else 'DIFFERENT DRAWS'))
            bad |= not ok
    if bad:
        print('STOP: the evaluations are not on the same draws (preregistration.md: stop and report that)')
        sys.exit(2)
    if len(ks) < 3:
        print('fewer than 3 complete seeds: description only, no hypothesis decided (preregistration.md)')
    side = {'start': {k: start(base[k]) for k in ks}, 'identity': {k: base[k]['identity']['perSample'] for k in ks}}
    for m in arms:
        side[m] = {k: arm(base[k], m) for k in ks}
    all16 = lambda t: True
    sl = lambda t: t == 'scan_lines'
    o15 = lambda t: t != 'scan_lines'
    hyps = [
        ('H1 (primary)', '16: S (Flow-GRPO scalar) - F (continued SFT)', S_, F_, all16, '>'),
        ('H2', '16: D (flow dense) - F', D_, F_, all16, '>'),
        ('H3', '16: S - warm start', S_, 'start', all16, '>'),
        ('H4', '16: D - warm start', D_, 'start', all16, '>'),
        ('H5', '16: F - warm start', F_, 'start', all16, '>'),
        ('H6', '16: warm start - identity', 'start', 'identity', all16, '!='),
        ('H7', 'other 15: S - F', S_, F_, o15, '>'),
        ('H8', '16: D - S', D_, S_, all16, '>'),
    ]
    for name, label, x, y, keep, rule in hyps:
        if x not in side or y not in side:
            print(f'{name} {label} {rule} 0: NOT RUN (arm not in the report; preregistration.md)')
            continue
        X, Y = side[x], side[y]
        r = pooled([(X[k], Y[k]) for k in ks], keep)
        ok = r['lo'] > 0 if rule == '>' else (r['lo'] > 0 or r['hi'] < 0)
        verdict = ('CONFIRMED' if ok else 'NOT CONFIRMED') if len(ks) >= 3 else '(description: < 3 seeds)'
        per_seed = []
        for k in ks:
            sel = np.array([keep(t) for t in X[k]['type']])
            per_seed.append(f'{k}: {(np.array(X[k]["reward"]) - np.array(Y[k]["reward"]))[sel].mean():+.4f}')
        print(f'{name} {label} {rule} 0: {r["kind"]} {r["m"]:+.4f} [{r["lo"]:+.4f}, {r["hi"]:+.4f}] '
              f'df {r["df"]:.2f} (used {r["dff"]}); {r["P"]} photographs (of {r["all"]}) -> {verdict}')
        print(f'    per seed, mean over draws: {", ".join(per_seed)}')

    print('\n== description only')
    for m in arms:
        steps = [run(base[k], m)['steps'] for k in ks]
        secs = [run(base[k], m)['seconds'] for k in ks]
        wall = [run(base[k], m)['wallSeconds'] for k in ks]
        mv = [np.mean(np.abs(np.array(side[m][k]['reward']) - np.array(side['start'][k]['reward']))) for k in ks]
        g = gains(base, ks, m)
        cos = np.mean([run(base[k], m)['gain'].get('clip_cos') for k in ks])
        print(f'{m}: steps {steps}; CPU s {", ".join(f"{v:.1f}" for v in secs)}; wall s {", ".join(f"{v:.0f}" for v in wall)}')
        print(f'    gain over start (16) {g.mean():+.4f} (per seed {", ".join(f"{v:+.4f}" for v in g)}); '
              f'SSIM {gains(base, ks, m, "ssim").mean():+.4f}; PSNR {gains(base, ks, m, "psnr").mean():+.3f} dB; '
              f'embedding cosine {cos:+.4f}; movement mean|final-start| {np.mean(mv):.4f}')
    st = [np.mean(side['start'][k]['reward']) for k in ks]
    idn = [np.mean(side['identity'][k]['reward']) for k in ks]
    print(f'warm start reward per seed {", ".join(f"{v:.4f}" for v in st)}; identity {", ".join(f"{v:.4f}" for v in idn)}')
    S0 = side['start']
    types = sorted(set(S0[ks[0]]['type']))
    print('\nper type, gain over the warm start (mean over seeds and draws); warm start reward')
    print(f"{'type':24s} {'start':>7s} " + ' '.join(f'{m:>11s}' for m in arms))
    for t in types:
        def g(X):
            return np.mean([np.mean([X[k]['reward'][i] - S0[k]['reward'][i] for i, tt in enumerate(S0[k]['type']) if tt == t]) for k in ks])
        stt = np.mean([np.mean([S0[k]['reward'][i] for i, tt in enumerate(S0[k]['type']) if tt == t]) for k in ks])
        print(f'{t:24s} {stt:7.4f} ' + ' '.join(f'{g(side[m]):+11.4f}' for m in arms))


if __name__ == '__main__':
    main()
