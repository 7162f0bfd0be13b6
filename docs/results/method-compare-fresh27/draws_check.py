#!/usr/bin/env python3
"""Are a sweep's seeds the demo's evaluation draws and warm starts? For each seed of compare.json[.gz], checks that the
identity row's per-draw id, type, level, reward, SSIM and PSNR equal those of the demo summary of the same seed, and
that the warm start's per-draw scores equal the demo's "before" (after its 400 SFT steps).

usage: python3 draws_check.py compare.json[.gz] SEED=summary.json[.gz] ...
"""
import gzip
import json
import sys


def load(path):
    with (gzip.open if path.endswith('.gz') else open)(path, 'rt') as f:
        return json.load(f)


seeds = {s['seed']: s for s in load(sys.argv[1])['seeds']}
for arg in sys.argv[2:]:
    k, path = arg.split('=', 1)
    c, d = seeds[int(k)], load(path)
    ident = all(c['identity']['perSample'][f] == d['identity']['perSample'][f] for f in d['identity']['perSample'])
    start = all(c['start']['gaussian']['perSample'][f] == d['before']['perSample'][f] for f in d['before']['perSample'])
    print(f'seed {k}: {len(c["identity"]["perSample"]["id"])} draws; identity per draw equal to the demo\'s: {ident}; '
          f'warm start per draw equal to the demo\'s SFT: {start} (reward {c["start"]["gaussian"]["reward"]:.4f}, demo {d["reward_before"]:.4f})')
