// Round 28 (orch28) reads each received action, logp map and SSIM map once for its checks (orchestrator/results.ts):
// finiteness with the largest |value| or with the range in one pass, the old checks run in their old order only when
// a value fails. Here against round 27's code, written out below: on random results with NaN, infinities and values
// out of range planted anywhere, the same decoded values or the same error (message and class), every time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeTensor, encodeTensor, TensorError, type RolloutResult__Output, type ScoreResult__Output } from '../../lib/transport/index.ts';
import { checkLogp, checkLogpMap, logpRange, maxAbs, LEARNED_LOG_STD_RANGE, type LogStdRange } from '../../lib/grpo/logp-bounds.ts';
import { decodeRolloutResult, decodeScoreResult, finiteMaxAbs, SSIM_ROUNDING } from '../../orchestrator/results.ts';
import { within } from '../../lib/grpo/logp-bounds.ts';
import { ssimMapSize } from '../../lib/models/ssim.ts';

const H = 12; // SSIM maps of 2x2
const PIX = 3 * H * H;

/** Round 27's decodeRolloutResult for the Gaussian policy. */
function oldRollout(r: RolloutResult__Output, groupSize: number, size: number, dense: boolean, logStd: LogStdRange) {
  if (r.items.length !== groupSize) throw new Error(`rollout_result: ${r.items.length} actions, expected ${groupSize}`);
  const shape = [3, size, size];
  const actions = r.items.map((it, i) => {
    const t = decodeTensor(it.action, { field: `rollout_result.items[${i}].action`, expectShape: shape });
    if (it.group_index !== i) throw new Error(`rollout_result.items[${i}].group_index is ${it.group_index}`);
    return t.data;
  });
  const what = logStd.lo === logStd.hi ? `log-std ${logStd.lo} (model.logStd)` : 'a learned log-std (model.learnLogStd)';
  const ranges = actions.map((a) => logpRange(logStd, maxAbs(a)));
  r.items.forEach((it, i) => checkLogp(it.logp, `rollout_result.items[${i}].logp`, ranges[i]!, what));
  const logpMaps = dense
    ? r.items.map((it, i) => {
      const map = decodeTensor(it.logp_map, { field: `rollout_result.items[${i}].logp_map`, expectShape: shape }).data;
      checkLogpMap(map, `rollout_result.items[${i}].logp_map`, ranges[i]!, what);
      return map;
    })
    : undefined;
  return { actions, logps: r.items.map((it) => it.logp), ...(logpMaps ? { logpMaps } : {}), version: r.policy_version };
}

/** Round 27's decodeScoreResult's map check. */
function oldScoreMaps(r: ScoreResult__Output, groupSize: number, size: number): Float32Array {
  const h = ssimMapSize(size);
  const maps = decodeTensor(r.ssim_map, { field: 'score_result.ssim_map', expectShape: [groupSize, 3, h, h] }).data;
  for (let i = 0; i < maps.length; i++) {
    if (Math.abs(maps[i]!) > 1 + SSIM_ROUNDING) throw new Error(`score_result.ssim_map[${i}] is ${maps[i]}, outside [-1, 1]`);
  }
  return maps;
}

/** What a call gives: its value, or its error's class and message. */
function outcome<T>(f: () => T): { ok: T } | { error: string; tensor: boolean } {
  try {
    return { ok: f() };
  } catch (e) {
    return { error: (e as Error).message, tensor: e instanceof TensorError };
  }
}

const BAD = [Number.NaN, Infinity, -Infinity, 1e30, -1e30, 2, -2, 1.01, 500, -500];
/** n values in [lo, hi], then up to 3 planted values (from BAD or `extra`) at random places. */
const values = (n: number, lo: number, hi: number, extra: number[]) =>
  fc.tuple(
    fc.array(fc.float({ min: Math.fround(lo), max: Math.fround(hi), noNaN: true }), { minLength: n, maxLength: n }),
    fc.array(fc.tuple(fc.nat(n - 1), fc.constantFrom(...BAD, ...extra)), { maxLength: 3 }),
  ).map(([v, planted]) => {
    const a = Float32Array.from(v);
    for (const [i, x] of planted) a[i] = x;
    return a;
  });

test('decodeRolloutResult: the same actions, maps and logps, or the same error, as round 27\'s checks one after the other', () => {
  const G = 2;
  for (const logStd of [{ lo: Math.fround(-1), hi: Math.fround(-1) }, { ...LEARNED_LOG_STD_RANGE }]) {
    fc.assert(fc.property(
      fc.array(values(PIX, -1.5, 1.5, [1e38, -3.4e38]), { minLength: G, maxLength: G }),
      fc.array(values(PIX, -6, 0.5, [-1e6, 3]), { minLength: G, maxLength: G }),
      fc.array(fc.double({ min: -6, max: 0.5, noNaN: true }), { minLength: G, maxLength: G }),
      fc.boolean(),
      (actions, maps, logps, dense) => {
        const r = {
          task_id: 't', attempt: 1, policy_version: 2, compute_ms: 0,
          items: actions.map((a, g) => ({
            sample_id: 's', group_index: g, mean: null, flow_steps: [], logp: logps[g]!,
            action: encodeTensor({ dtype: 'float32', shape: [3, H, H], data: a }, { allowNonFinite: true }),
            logp_map: encodeTensor({ dtype: 'float32', shape: [3, H, H], data: maps[g]! }, { allowNonFinite: true }),
          })),
        } as unknown as RolloutResult__Output;
        const got = outcome(() => decodeRolloutResult(r, G, H, dense, { logStd }));
        const want = outcome(() => oldRollout(r, G, H, dense, logStd));
        assert.deepStrictEqual(got, want);
      },
    ), { numRuns: 150 });
  }
});

test('decodeScoreResult: the same SSIM maps, or the same error, as round 27\'s finiteness check then range check', () => {
  const G = 3;
  const h = ssimMapSize(H);
  fc.assert(fc.property(values(G * 3 * h * h, -1, 1, [1.0009, -1.0011, 1 + SSIM_ROUNDING]), (maps) => {
    const r = {
      task_id: 't', attempt: 1, compute_ms: 0, clip_encoder: 'toy',
      components: Array.from({ length: G }, () => ({ ssim: 0.5, clip_cos: 0.25 })),
      ssim_map: encodeTensor({ dtype: 'float32', shape: [G, 3, h, h], data: maps }, { allowNonFinite: true }),
    } as unknown as ScoreResult__Output;
    const got = outcome(() => {
      const s = decodeScoreResult(r, G, H, true).ssimMaps!;
      return Float32Array.from(s.flatMap((m) => [...m]));
    });
    const want = outcome(() => oldScoreMaps(r, G, H));
    assert.deepStrictEqual(got, want);
  }), { numRuns: 300 });
});

test('finiteMaxAbs and within, any length (the four-at-a-time loops and their tails): maxAbs and the plain range test', () => {
  const special = [0, -0, 1e-45, -1e-45, 1.1754943508222875e-38, 3.4028234663852886e38, -3.4028234663852886e38, Number.NaN, Infinity, -Infinity, 0.5, -2];
  fc.assert(fc.property(
    fc.array(fc.oneof(fc.float(), fc.constantFrom(...special)), { maxLength: 13 }),
    fc.float({ noNaN: true }), fc.float({ noNaN: true }),
    (v, a, b) => {
      const x = Float32Array.from(v);
      const finite = x.every((y) => Number.isFinite(y));
      const got = outcome(() => finiteMaxAbs(x, 'f'));
      assert.deepStrictEqual(got, finite ? { ok: maxAbs(x) } : outcome(() => decodeTensor(encodeTensor({ dtype: 'float32', shape: [x.length], data: x }, { allowNonFinite: true }), { field: 'f' })));
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      assert.equal(within(x, lo, hi), x.every((y) => Number.isFinite(y) && y >= lo && y <= hi));
    },
  ), { numRuns: 2000 });
});

test('decodeRolloutResult: an infinite logp_map value is refused as round 27 did when the log-std bound overflows to -Infinity', () => {
  // logpRange's min is -Infinity once z*z overflows: a log-std below about -370 (any action), or one near -300 with
  // |action| near FLT_MAX. -Infinity >= -Infinity held, so within accepted the map (round 28's review).
  const size = 2;
  const n = 3 * size * size;
  const cases = [
    { logStd: Math.fround(-400), action: 0.5, logp: 398 },
    { logStd: Math.fround(-300), action: 3.4e38, logp: 298 },
  ];
  for (const c of cases) {
    const logStd = { lo: c.logStd, hi: c.logStd };
    const act = new Float32Array(n).fill(0.5);
    act[2] = c.action;
    assert.equal(logpRange(logStd, maxAbs(act)).min, -Infinity, `the bound overflows for log-std ${c.logStd}, |action| ${c.action}`);
    for (const bad of [-Infinity, Infinity, Number.NaN]) {
      const map = new Float32Array(n).fill(c.logp);
      map[5] = bad;
      const r = {
        task_id: 't', attempt: 1, policy_version: 2, compute_ms: 0,
        items: [{
          sample_id: 's', group_index: 0, mean: null, flow_steps: [], logp: c.logp,
          action: encodeTensor({ dtype: 'float32', shape: [3, size, size], data: act }),
          logp_map: encodeTensor({ dtype: 'float32', shape: [3, size, size], data: map }, { allowNonFinite: true }),
        }],
      } as unknown as RolloutResult__Output;
      const got = outcome(() => decodeRolloutResult(r, 1, size, true, { logStd }));
      assert.deepStrictEqual(got, { error: `rollout_result.items[0].logp_map: non-finite value ${bad} at flat index 5`, tensor: true });
      assert.deepStrictEqual(got, outcome(() => oldRollout(r, 1, size, true, logStd)));
    }
    // and a finite map in the range is still accepted, as round 27 did
    const map = new Float32Array(n).fill(c.logp);
    const r = {
      task_id: 't', attempt: 1, policy_version: 2, compute_ms: 0,
      items: [{
        sample_id: 's', group_index: 0, mean: null, flow_steps: [], logp: c.logp,
        action: encodeTensor({ dtype: 'float32', shape: [3, size, size], data: act }),
        logp_map: encodeTensor({ dtype: 'float32', shape: [3, size, size], data: map }),
      }],
    } as unknown as RolloutResult__Output;
    assert.deepStrictEqual(outcome(() => decodeRolloutResult(r, 1, size, true, { logStd })), outcome(() => oldRollout(r, 1, size, true, logStd)));
    assert.ok('ok' in outcome(() => decodeRolloutResult(r, 1, size, true, { logStd })));
  }
});
