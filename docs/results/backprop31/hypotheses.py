#!/usr/bin/env python3
"""The pre-registered test of preregistration.md (round 31, bp31): this round's `sweep --pool` report of the 240-CPU-s
reward-backprop sweeps (arm C) beside learn31's report (docs/results/longer31/base-compare.json.gz: arms dense = A,
sft = B, and the warm start), paired by seed and evaluation draw.

usage: python3 hypotheses.py BP/compare.json[.gz] LEARN31/base-compare.json[.gz] [RUN_LOG LEARN31_RUN_LOG]

1. The design check: per seed, (a) the warm-start file's sha256 in this round's run-log equals learn31's (with the two
   run logs given); (b) this report's warm-start and identity evaluations equal learn31's draw for draw (id, type,
   level, reward, ssim, psnr, in order); (c) C's evaluation is on the same draws (id, type, level). (c) failing: stop
   (exit 2). (a) or (b) failing for a seed: that seed's C is unpaired (reported), the hypotheses are still computed.
2. H1-H5 with 95% crossed seeds x photographs intervals: learn31's hypotheses.py `pooled` (copied unchanged), with
   round 28's crossed_check.py `crossed` (copied unchanged beside this file).
3. Description: steps, CPU and wall seconds of C per seed (A's and B's beside); per type gains of C, A, B over the
   warm start; movement; PSNR/SSIM/cosine gains; gain differences over each report's own warm start.
"""
import gzip
import json
import re
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


def shas(path):
    out = {}
    for line in open(path):
        m = re.match(r'seed (\d+) warm start \S+ sha256 ([0-9a-f]{64})', line)
        if m:
            out[int(m.group(1))] = m.group(2)
    return out


def main():
    bp = load(sys.argv[1])
    l31 = load(sys.argv[2])
    ks = sorted(k for k in bp if k in l31)
    print(f'{len(ks)} seed(s) in both reports: {ks} (this report: {sorted(bp)}; learn31: {sorted(l31)})')
    sha_bp, sha_l31 = (shas(sys.argv[3]), shas(sys.argv[4])) if len(sys.argv) > 4 else ({}, {})
    unpaired = []
    for k in ks:
        c = arm(bp[k], 'backprop')
        s_bp, s_l = start(bp[k]), start(l31[k])
        if not same_draws(s_bp, c):
            print(f'STOP: seed {k}: C was not evaluated on the warm start\'s draws (preregistration.md: stop and report)')
            sys.exit(2)
        fields = ('id', 'type', 'level', 'reward', 'ssim', 'psnr')
        eq_start = all(s_bp[f] == s_l[f] for f in fields)
        i_bp, i_l = bp[k]['identity']['perSample'], l31[k]['identity']['perSample']
        eq_id = all(i_bp[f] == i_l[f] for f in fields)
        eq_draws = same_draws(s_bp, s_l)
        sha = (sha_bp.get(k), sha_l31.get(k))
        eq_sha = sha[0] is not None and sha[0] == sha[1]
        print(f'check seed {k}: warm-start sha256 {"EQUAL" if eq_sha else "DIFFERENT/MISSING"} ({(sha[0] or "-")[:12]} vs {(sha[1] or "-")[:12]}); '
              f'warm-start evaluation {"equal draw for draw" if eq_start else "DIFFERENT"} ({len(s_bp["id"])} draws, same draws: {eq_draws}); '
              f'identity {"equal" if eq_id else "DIFFERENT"}; C on the same draws: yes')
        if not eq_start:
            d = np.abs(np.array(s_bp['reward']) - np.array(s_l['reward']))
            print(f'    warm-start reward |difference| max {d.max():.3g}, mean {d.mean():.3g}')
        if not (eq_start and (eq_sha or len(sys.argv) <= 4)):
            unpaired.append(k)
    if unpaired:
        print(f'UNPAIRED seeds (design check failed): {unpaired}: their C is not paired with learn31\'s A and B')
    if len(ks) < 3:
        print('fewer than 3 complete seeds: description only, no hypothesis decided (preregistration.md)')
    C = {k: arm(bp[k], 'backprop') for k in ks}
    A = {k: arm(l31[k], 'dense') for k in ks}
    B = {k: arm(l31[k], 'sft') for k in ks}
    S = {k: start(l31[k]) for k in ks}
    all16 = lambda t: True
    sl = lambda t: t == 'scan_lines'
    o15 = lambda t: t != 'scan_lines'
    hyps = [
        ('H1 (primary)', '16: C (backprop, 240 s) - B (sft, 240 s)', C, B, all16, '>'),
        ('H2', '16: C - A (dense, 240 s)', C, A, all16, '>'),
        ('H3', '16: C - warm start', C, S, all16, '>'),
        ('H4', 'scan_lines: C - B', C, B, sl, '!='),
        ('H5', 'other 15: C - B', C, B, o15, '>'),
    ]
    for name, label, X, Y, keep, rule in hyps:
        r = pooled([(X[k], Y[k]) for k in ks], keep)
        ok = r['lo'] > 0 if rule == '>' else (r['lo'] > 0 or r['hi'] < 0)
        verdict = ('CONFIRMED' if ok else 'NOT CONFIRMED') if len(ks) >= 3 else '(description: < 3 seeds)'
        if rule == '!=' and ok:
            verdict += ' (C above B)' if r['lo'] > 0 else ' (C below B)'
        if unpaired:
            verdict += f' [unpaired seeds {unpaired}]'
        per_seed = []
        for k in ks:
            sel = np.array([keep(t) for t in X[k]['type']])
            per_seed.append(f'{k}: {(np.array(X[k]["reward"]) - np.array(Y[k]["reward"]))[sel].mean():+.4f}')
        print(f'{name} {label} {rule} 0: {r["kind"]} {r["m"]:+.4f} [{r["lo"]:+.4f}, {r["hi"]:+.4f}] '
              f'df {r["df"]:.2f} (used {r["dff"]}); {r["P"]} photographs (of {r["all"]}) -> {verdict}')
        print(f'    per seed, mean over draws: {", ".join(per_seed)}')

    print('\n== description only')
    Sbp = {k: start(bp[k]) for k in ks}
    for label, rep, X, m, SS in (('C backprop', bp, C, 'backprop', Sbp), ('A dense', l31, A, 'dense', S), ('B sft', l31, B, 'sft', S)):
        steps = [run(rep[k], m)['steps'] for k in ks]
        secs = [run(rep[k], m)['seconds'] for k in ks]
        wall = [run(rep[k], m)['wallSeconds'] for k in ks]
        mv = [np.mean(np.abs(np.array(X[k]['reward']) - np.array(SS[k]['reward']))) for k in ks]
        def g(field):
            return np.array([np.mean(np.array(X[k][field]) - np.array(SS[k][field])) for k in ks])
        gr = g('reward')
        print(f'{label}: steps {steps}; CPU s {", ".join(f"{v:.1f}" for v in secs)}; wall s {", ".join(f"{v:.0f}" for v in wall)}')
        print(f'    gain over its own report\'s warm start (16) {gr.mean():+.4f} (per seed {", ".join(f"{v:+.4f}" for v in gr)}); '
              f'SSIM {g("ssim").mean():+.4f}; PSNR {g("psnr").mean():+.3f} dB; '
              f'movement mean|final-start| {np.mean(mv):.4f} (per seed {", ".join(f"{v:.4f}" for v in mv)})')
        print(f'    embedding-cosine gain (sweep\'s own): {np.mean([run(rep[k], m)["gain"].get("clip_cos") for k in ks]):+.4f}')
    if unpaired:
        gc = np.array([np.mean(np.array(C[k]['reward']) - np.array(Sbp[k]['reward'])) for k in ks])
        gb = np.array([np.mean(np.array(B[k]['reward']) - np.array(S[k]['reward'])) for k in ks])
        print(f'(C - own start) - (B - learn31 start), per seed: {", ".join(f"{v:+.4f}" for v in gc - gb)}; mean {np.mean(gc - gb):+.4f}')
    types = sorted(set(S[ks[0]]['type']))
    print('\nper type, gain over the warm start (mean over seeds and draws); warm start reward')
    print(f"{'type':24s} {'start':>7s} {'C bp':>8s} {'A dense':>8s} {'B sft':>8s} {'C-B':>8s} {'C-A':>8s}")
    for t in types:
        def g(X):
            return np.mean([np.mean([X[k]['reward'][i] - S[k]['reward'][i] for i, tt in enumerate(S[k]['type']) if tt == t]) for k in ks])
        st = np.mean([np.mean([S[k]['reward'][i] for i, tt in enumerate(S[k]['type']) if tt == t]) for k in ks])
        print(f'{t:24s} {st:7.4f} {g(C):+8.4f} {g(A):+8.4f} {g(B):+8.4f} {g(C) - g(B):+8.4f} {g(C) - g(A):+8.4f}')


if __name__ == '__main__':
    main()
