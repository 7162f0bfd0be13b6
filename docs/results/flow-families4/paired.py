# Paired differences of final values between arms (same seed and images), t over seeds, from compare.json.
import json, math, sys
d = json.load(open(sys.argv[1]))
T = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776}
def ci(xs):
    n = len(xs); m = sum(xs) / n
    if n < 2: return m, float('nan')
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)); h = T[n] * sd / math.sqrt(n)
    return m, h
def fin(s, name):
    for r in s['runs']:
        if r['method'] == name: return r['final']
    return None
pairs = [('gaussian:dense', 'flow:scalar'), ('gaussian:dense', 'flow:dense'), ('flow:scalar', 'flow:dense'), ('flow:scalar', 'flow:sft'), ('flow:dense', 'flow:sft'), ('gaussian:dense', 'gaussian:sft')]
for a, b in pairs:
    for k in ['reward', 'ssim']:
        xs = [fin(s, a)[k] - fin(s, b)[k] for s in d['seeds'] if fin(s, a) and fin(s, b)]
        m, h = ci(xs)
        print(f"{a} - {b} {k}: {m:+.4f} ± {h:.4f} [{m-h:.4f}, {m+h:.4f}] per seed {', '.join(f'{x:+.4f}' for x in xs)}")
for a in ['flow:scalar', 'flow:dense', 'gaussian:dense', 'flow:sft', 'gaussian:sft']:
    xs = [fin(s, a)['reward'] - s['identity']['reward'] for s in d['seeds'] if fin(s, a)]
    m, h = ci(xs)
    print(f"{a} - identity reward: {m:+.4f} ± {h:.4f} per seed {', '.join(f'{x:+.4f}' for x in xs)}")
for f in ['flow', 'gaussian']:
    xs = [s['start'][f]['reward'] - s['identity']['reward'] for s in d['seeds']]
    m, h = ci(xs)
    print(f"{f} warm start - identity reward: {m:+.4f} ± {h:.4f} per seed {', '.join(f'{x:+.4f}' for x in xs)}")
for s in d['seeds']:
    print('seed', s['seed'], 'steps', {r['method']: r['steps'] for r in s['runs']})
