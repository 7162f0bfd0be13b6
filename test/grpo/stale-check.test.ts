// The stale-row check (lib/grpo/stale-check.ts): at grpo.maxStaleness > 0 a row of an older behaviour version is
// recomputed under that version's kept parameters. Before round 26 such rows were not checked at all: a lie of 0.5
// nats (ratio 1.65, under the dual clip's c = 3) weighed 1.65x its honest weight. Checked here on hand-made batches:
// honest stale rows pass, forged ones (a shifted mean, and in dense mode per-element lies that keep the mean) are
// excluded; the row log-density and ratio against the GRPO graph's own outputs (an independent computation: ONNX
// float32 there, float64 here); the keyed sample's determinism and rate; the history's copies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, type RunConfig } from '../../lib/config/index.ts';
import { initPolicyParams, LOG_STD } from '../../lib/models/policy.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { PolicyTrainer } from '../../lib/models/trainer.ts';
import { cloneTensorMap, type TensorMap } from '../../lib/checkpoint/tensors.ts';
import { grpoHyper } from '../../lib/grpo/algorithm.ts';
import { STALE_CHECK_FRACTION_DEFAULT } from '../../lib/grpo/logp-check.ts';
import { gaussianRowLogp, ParamHistory, policyRecompute, STALE_CHECK_KEY_ENV, staleCheck, staleCheckKey, staleGroupChecked } from '../../lib/grpo/stale-check.ts';
import { testRandom } from '../graph/gradcheck.ts';
import { parseConfig } from '../../lib/config/index.ts';
import { initialParamsOf } from '../../lib/models/bundle.ts';
import { FlowRunner, FlowTrainer, flowRowsOf, type FlowStepRecord } from '../../lib/flow/family.ts';
import { MIN_STEP_STD } from '../../lib/flow/graphs.ts';
import { rolloutNoiseSeed } from '../../lib/grpo/sampling.ts';
import { flowRecompute } from '../../lib/grpo/stale-check.ts';

const S = 16;
const N = 8;
const P = 3 * S * S;
const settings = (mode: 'scalar' | 'dense') => [`data.size=${S}`, 'model.width=8', 'model.depth=2', 'model.logStd=-1', `grpo.advantageMode=${mode}`, 'grpo.maxStaleness=1'];
const KEY = Buffer.from('a test key of the learner, 32 b.');
/** Groups of two rows: rows 2g and 2g + 1 share image g and sample id g<g>. */
const SAMPLE_IDS = Array.from({ length: N }, (_, i) => `g${i >> 1}`);

/** Version 0 (the seed's parameters), version 1 (each weight moved a little), and rows rolled out at version 0. */
async function fixture(config: RunConfig) {
  const rand = testRandom(5);
  const images = new Float32Array(N * P);
  for (let g = 0; g < N / 2; g++) {
    const img = Float32Array.from({ length: P }, () => 0.2 + 0.6 * rand());
    images.set(img, 2 * g * P);
    images.set(img, (2 * g + 1) * P);
  }
  const v0 = initPolicyParams(policySpecOf(config), 1);
  const v1 = cloneTensorMap(v0);
  for (const [k, t] of v1) if (k !== LOG_STD) t.data.forEach((x, i) => (t.data[i] = x + 0.05 * (rand() - 0.5)));
  const runner = await PolicyRunner.create(config);
  const noise = Float32Array.from({ length: N * P }, () => rand() * 2 - 1);
  const roll = await runner.run(v0, images, noise, N);
  return { images, v0, v1, runner, roll, logpOld: config.grpo.advantageMode === 'dense' ? roll.logpMap : roll.logp };
}

function check(config: RunConfig, f: Awaited<ReturnType<typeof fixture>>, o: { logpOld: Float32Array; versions?: number[]; version?: number; history?: ParamHistory; fraction?: number; key?: Uint8Array; seq?: number }) {
  const history = o.history ?? new ParamHistory(1);
  if (!o.history) history.keep(0, f.v0);
  return staleCheck({
    batch: { rows: N, versions: o.versions ?? Array(N).fill(0), groups: SAMPLE_IDS, logpOld: o.logpOld },
    version: o.version ?? 1, seq: o.seq ?? 7, history, tolerance: config.grpo.logpTolerance, fraction: o.fraction ?? 1, key: o.key ?? KEY,
    recompute: policyRecompute({ n: N, images: f.images, actions: f.roll.action, logpOld: o.logpOld }, LOG_STD, (params, images, n) => f.runner.mean(params, images, n)),
  });
}

for (const mode of ['scalar', 'dense'] as const) {
  test(`stale check (${mode}): honest rows of version 0 pass at version 1; forged ones are excluded; it agrees with the GRPO graph`, async () => {
    const config = loadConfig(undefined, settings(mode));
    assert.equal(config.grpo.staleCheckFraction, STALE_CHECK_FRACTION_DEFAULT);
    const f = await fixture(config);
    try {
      const per = mode === 'dense' ? P : 1;
      const honest = await check(config, f, { logpOld: f.logpOld });
      assert.deepEqual(honest, { excluded: [], checked: N, notSampled: 0, notHeld: 0, unchecked: [] });

      // row 3: 0.5 nats below the truth (ratio 1.65: under the dual clip's c = 3, so it weighed 1.65x unchecked);
      // row 5: scalar, 0.01 above it; dense, +-0.5 per element around the truth (its mean unchanged)
      const forged = f.logpOld.slice();
      for (let k = 3 * per; k < 4 * per; k++) forged[k]! -= 0.5;
      for (let k = 5 * per; k < 6 * per; k++) forged[k]! += mode === 'dense' ? (k % 2 ? 0.5 : -0.5) : 0.01;
      assert.deepEqual((await check(config, f, { logpOld: forged })).excluded, [3, 5]);

      // the row's log-density and ratio as the GRPO graph computes them at version 0, honest and forged
      const trainer = PolicyTrainer.create(config, cloneTensorMap(f.v0));
      const mean = await f.runner.mean(f.v0, f.images, N);
      for (const logpOld of [f.logpOld, forged]) {
        const out = await trainer.grpoForward({
          n: N, images: f.images, actions: f.roll.action, logpOld, advantages: new Float32Array(N), refMean: f.images,
          ...(mode === 'dense' ? { advantageMap: new Float32Array(N * 3 * (S - 10) * (S - 10)) } : {}),
        }, grpoHyper(config));
        const mine = gaussianRowLogp(f.roll.action, mean, -1, logpOld, N);
        for (let i = 0; i < N; i++) {
          assert.ok(Math.abs(mine.logp[i]! - out.logp!.data[i]!) <= 1e-5 * Math.abs(out.logp!.data[i]!), `row ${i}: logp ${mine.logp[i]} here, ${out.logp!.data[i]} in the graph`);
          assert.ok(Math.abs(mine.ratio[i]! - out.ratio!.data[i]!) <= 1e-5 * out.ratio!.data[i]!, `row ${i}: ratio ${mine.ratio[i]} here, ${out.ratio!.data[i]} in the graph`);
        }
      }
      await trainer.release();

      // the same rows judged against version 1's parameters are not theirs: all excluded (the check reads the row's version)
      const wrong = new ParamHistory(1);
      wrong.keep(0, f.v1);
      assert.deepEqual((await check(config, f, { logpOld: f.logpOld, history: wrong })).excluded, [0, 1, 2, 3, 4, 5, 6, 7]);

      // rows at the learner's own version are the same-version check's; a version not held is counted, not judged
      const mixed = await check(config, f, { logpOld: forged, versions: [0, 0, 1, 1, 0, 0, 1, 1] });
      assert.deepEqual(mixed, { excluded: [5], checked: 4, notSampled: 0, notHeld: 0, unchecked: [] });
      assert.deepEqual(await check(config, f, { logpOld: forged, versions: Array(N).fill(1), version: 2 }), { excluded: [], checked: 0, notSampled: 0, notHeld: N, unchecked: [0, 1, 2, 3, 4, 5, 6, 7] });
    } finally {
      await f.runner.release();
    }
  });
}

for (const mode of ['scalar', 'dense'] as const) {
  test(`stale check over flow rows (${mode}): real rollouts of version 0 pass at version 1; a forged step is excluded; it agrees with the Flow-GRPO graph`, async () => {
    const c = parseConfig({
      data: { size: 12, source: { kind: 'procedural', count: 16 } },
      model: { family: 'flow', arch: 'resnet', width: 4, depth: 1 },
      flow: { steps: 4, evalSteps: 3, shift: 1, timeFrequencies: 2, timeWidth: 4, sde: { window: { size: 2, start: 'random' } } },
      grpo: { groupSize: 3, samplesPerBatch: 2, steps: 2, advantageMode: mode, beta: 0.01, maxStaleness: 1 },
      sft: { steps: 2, batchSize: 2 },
      reward: { expression: 'ssim', weights: {} },
    });
    const pix = 3 * 12 * 12;
    const G = c.grpo.groupSize;
    const v0 = initialParamsOf(c);
    const rand = testRandom(9);
    for (const [, t] of v0) t.data.forEach((x, i) => (t.data[i] = x + 0.05 * (rand() - 0.5)));
    const v1 = cloneTensorMap(v0);
    for (const [, t] of v1) t.data.forEach((x, i) => (t.data[i] = x + 0.05 * (rand() - 0.5)));
    const runner = await FlowRunner.create(c);
    const records: FlowStepRecord[][] = [];
    const images = new Float32Array(2 * G * pix);
    const ids: string[] = [];
    for (const [g, id] of ['s0', 's1'].entries()) {
      const image = Float32Array.from({ length: pix }, (_, i) => ((i + g) % 7) / 7);
      const roll = await runner.rollout(v0, id, image, Array.from({ length: G }, (_, a) => rolloutNoiseSeed(c.run.seed, id, a)), mode === 'dense');
      records.push(...roll.steps);
      for (let a = 0; a < G; a++) { images.set(image, (g * G + a) * pix); ids.push(id); }
    }
    const flow = flowRowsOf(records, pix, mode === 'dense');
    const R = flow.rows;
    assert.ok(R >= 2, `${R} trained rows`);
    const per = mode === 'dense' ? pix : 1;
    const batch = { n: 2 * G, images, advantages: new Float32Array(2 * G), flow };
    const run = (logpOld: Float32Array, params = v0) => {
      const history = new ParamHistory(1);
      history.keep(0, params);
      const b = { ...batch, flow: { ...flow, logpOld } };
      return staleCheck({
        batch: { rows: R, versions: Array(R).fill(0), groups: Array.from(flow.actionIndex, (i) => ids[i]!), logpOld }, version: 1, seq: 3, history,
        tolerance: c.grpo.logpTolerance, fraction: 1, key: KEY, recompute: flowRecompute(b, MIN_STEP_STD, (p, rows) => runner.stepMeanStd(p, rows)),
      });
    };
    try {
      assert.deepEqual(await run(flow.logpOld), { excluded: [], checked: R, notSampled: 0, notHeld: 0, unchecked: [] });
      // the last row: 0.5 nats below
      const forged = flow.logpOld.map((v, k) => (k >= (R - 1) * per ? v - 0.5 : v));
      assert.deepEqual((await run(forged)).excluded, [R - 1]);
      // (a step of large std hardly tells the versions apart: at this perturbation 5 of the 12 rows do)
      assert.ok((await run(flow.logpOld, v1)).excluded.length > 0, 'rows judged against another version\'s parameters');
      // the Flow-GRPO graph's own logp and ratio of these rows at version 0
      const trainer = FlowTrainer.create(c, cloneTensorMap(v0));
      const out = await trainer.grpoForward({ ...batch, ...(mode === 'dense' ? { advantageMap: new Float32Array(2 * G * 3 * 2 * 2) } : {}), flow: { ...flow, logpOld: forged }, refMean: flow.x }, grpoHyper(c));
      await trainer.release();
      const mine = await flowRecompute({ ...batch, flow: { ...flow, logpOld: forged } }, MIN_STEP_STD, (p, rows) => runner.stepMeanStd(p, rows))(v0, Array.from({ length: R }, (_, i) => i));
      for (let i = 0; i < R; i++) {
        assert.ok(Math.abs(mine.logp[i]! - out.logp!.data[i]!) <= 1e-5 * Math.max(1, Math.abs(out.logp!.data[i]!)), `row ${i}: logp ${mine.logp[i]} here, ${out.logp!.data[i]} in the graph`);
        assert.ok(Math.abs(mine.ratio[i]! - out.ratio!.data[i]!) <= 1e-5 * out.ratio!.data[i]!, `row ${i}: ratio ${mine.ratio[i]} here, ${out.ratio!.data[i]} in the graph`);
      }
    } finally {
      await runner.release();
    }
  });
}

test('stale check sample: keyed, deterministic for a key, at the configured rate, nested in the fraction', async () => {
  const ids = Array.from({ length: 4000 }, (_, i) => `c0:photo-${i}`);
  const draw = (key: Uint8Array, f: number, seq = 3) => ids.map((id) => staleGroupChecked(key, seq, id, f));
  assert.deepEqual(draw(KEY, 0.25), draw(Buffer.from(KEY), 0.25), 'the same key, batch and group: the same choice');
  const other = draw(Buffer.from('another key of the learner, 32b'), 0.25);
  assert.notDeepEqual(draw(KEY, 0.25), other, 'another key: another choice');
  assert.notDeepEqual(draw(KEY, 0.25), draw(KEY, 0.25, 4), 'another batch: another choice');
  for (const f of [0.1, 0.25, 0.5]) {
    const rate = draw(KEY, f).filter(Boolean).length / ids.length;
    const sd = Math.sqrt((f * (1 - f)) / ids.length);
    assert.ok(Math.abs(rate - f) <= 4 * sd, `fraction ${f}: ${rate} of the groups checked`);
  }
  const quarter = draw(KEY, 0.25);
  draw(KEY, 0.5).forEach((c, i) => assert.ok(c || !quarter[i], `${ids[i]}: checked at 0.25, not at 0.5`));
  assert.ok(draw(KEY, 1).every(Boolean));
  assert.ok(!draw(KEY, 0).some(Boolean));
  assert.throws(() => staleGroupChecked(KEY, 1, 'a', 1.5), /fraction must be in \[0, 1\], got 1.5/);

  // the learner's key: from the environment (reproducible), else random at each start
  assert.deepEqual(staleCheckKey({ [STALE_CHECK_KEY_ENV]: 'k'.repeat(16) }), { key: Buffer.from('k'.repeat(16)), fromEnv: true });
  assert.throws(() => staleCheckKey({ [STALE_CHECK_KEY_ENV]: 'short' }), /RECOVERY_STALE_CHECK_KEY: must be at least 16 characters/);
  const a = staleCheckKey({});
  assert.equal(a.fromEnv, false);
  assert.equal(a.key.length, 32);
  assert.notDeepEqual(a.key, staleCheckKey({}).key);
});

test('stale check at fraction 0.5: the same key and batch check the same groups; every row of a checked group is checked', async () => {
  const config = loadConfig(undefined, settings('scalar'));
  const f = await fixture(config);
  try {
    // every row forged: the excluded rows are exactly the sampled groups'
    const forged = f.logpOld.map((v) => v - 1);
    const runs = [];
    for (let k = 0; k < 2; k++) runs.push(await check(config, f, { logpOld: forged, fraction: 0.5, seq: 11 }));
    assert.deepEqual(runs[0], runs[1]);
    const r = runs[0]!;
    assert.equal(r.checked + r.notSampled, N);
    const sampled = SAMPLE_IDS.map((id) => staleGroupChecked(KEY, 11, id, 0.5));
    assert.deepEqual(r.excluded, SAMPLE_IDS.flatMap((_, i) => (sampled[i] ? [i] : [])));
    // the rows left out are reported unchecked (TrainResult.check_coverage), exactly the groups not sampled
    assert.deepEqual(r.unchecked, SAMPLE_IDS.flatMap((_, i) => (sampled[i] ? [] : [i])));
    // seq 11 with this key samples some groups but not all (so the assertion above tells the two apart)
    assert.ok(r.checked > 0 && r.notSampled > 0, JSON.stringify(r));
  } finally {
    await f.runner.release();
  }
});

test('ParamHistory: copies, the last `capacity` versions, the forgotten copy reused', () => {
  const p: TensorMap = new Map([['w', { shape: [2], data: Float32Array.of(1, 2) }]]);
  const h = new ParamHistory(2);
  h.keep(4, p);
  p.get('w')!.data[0] = 10;
  h.keep(5, p);
  assert.deepEqual([...h.get(4)!.get('w')!.data], [1, 2], 'a copy, not the trainer\'s array');
  const four = h.get(4)!;
  p.get('w')!.data[0] = 20;
  h.keep(6, p);
  assert.deepEqual(h.versions(), [5, 6]);
  assert.equal(h.get(6), four, 'version 4\'s copy holds version 6');
  assert.deepEqual([...h.get(6)!.get('w')!.data], [20, 2]);
  assert.deepEqual([...h.get(5)!.get('w')!.data], [10, 2]);
  assert.equal(h.bytes(), 16);
  assert.throws(() => new ParamHistory(0), /capacity must be an integer >= 1, got 0/);
});
