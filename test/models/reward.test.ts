// The reward graph: SSIM against scikit-image's values (test/fixtures/ssim, copied from
// shared/reference with their provenance), and the embedding cosine of the built-in or a user encoder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import { z } from 'zod';
import { buildRewardGraph } from '../../lib/models/graphs.ts';
import { builtinEncoderModel, clipPreprocess, resizeMatrix, BUILTIN_ENCODER_NAME } from '../../lib/models/encoder.ts';
import { Graph } from '../../lib/graph/graph.ts';
import { avgPool, conv, reduceMean, reshape, transpose } from '../../lib/graph/ops.ts';
import { SetupError } from '../../lib/config/setup-error.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession } from '../../lib/graph/runtime.ts';
import { loadEncoder } from '../../lib/models/reward.ts';
import { testRandom } from '../graph/gradcheck.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/ssim');
const casesSchema = z.object({
  cases: z.array(z.object({ reference: z.string(), distorted: z.string(), height: z.number(), width: z.number(), ssim: z.number() })),
});

async function readCHW(file: string): Promise<{ data: Float32Array; h: number; w: number }> {
  const { data, info } = await sharp(join(FIXTURES, file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const { width: w, height: h } = info;
  const out = new Float32Array(3 * h * w);
  for (let i = 0; i < h * w; i++) for (let c = 0; c < 3; c++) out[c * h * w + i] = data[i * 3 + c] / 255;
  return { data: out, h, w };
}

test('SSIM agrees with scikit-image to 1e-4 on every reference case', async () => {
  const { cases } = casesSchema.parse(JSON.parse(readFileSync(join(FIXTURES, 'cases.json'), 'utf8')));
  assert.ok(cases.length >= 40);
  const encoder = builtinEncoderModel();
  const sessions = new Map<string, GraphSession>();
  let worst = 0;
  for (const c of cases) {
    const key = `${c.height}x${c.width}`;
    if (!sessions.has(key)) sessions.set(key, await GraphSession.create(serialize(buildRewardGraph({ height: c.height, width: c.width }, { encoder, encoderName: BUILTIN_ENCODER_NAME }))));
    const ref = await readCHW(c.reference);
    const dist = await readCHW(c.distorted);
    const dims = [1, 3, ref.h, ref.w];
    const out = await sessions.get(key)!.run({ candidate: { data: dist.data, dims }, reference: { data: ref.data, dims } }, ['ssim']);
    const err = Math.abs(out.ssim.data[0] - c.ssim);
    worst = Math.max(worst, err);
    assert.ok(err < 1e-4, `${c.distorted}: ${out.ssim.data[0]} vs scikit-image ${c.ssim}`);
  }
  console.log(`# ${cases.length} cases, worst |error| ${worst.toExponential(2)}`);
});

test('embedding cosine: 1 for identical images, lower for different ones, batch items independent', async () => {
  const rand = testRandom(4);
  const r = { height: 24, width: 32 };
  const n = 3 * r.height * r.width;
  const s = await GraphSession.create(serialize(buildRewardGraph(r, { encoder: builtinEncoderModel(), encoderName: BUILTIN_ENCODER_NAME })));
  const a = Float32Array.from({ length: n }, () => rand());
  const b = Float32Array.from({ length: n }, () => rand());
  const both = (x: Float32Array, y: Float32Array) => Float32Array.from([...x, ...y]);
  const dims = [2, 3, r.height, r.width];
  const out = await s.run({ candidate: { data: both(a, b), dims }, reference: { data: both(a, a), dims } });
  assert.ok(Math.abs(out.clip_cos.data[0] - 1) < 1e-5, `identical: ${out.clip_cos.data[0]}`);
  assert.ok(out.clip_cos.data[1] < 0.99, `different: ${out.clip_cos.data[1]}`);
  assert.ok(Math.abs(out.ssim.data[0] - 1) < 1e-6);
  const single = await s.run({ candidate: { data: b, dims: [1, 3, r.height, r.width] }, reference: { data: a, dims: [1, 3, r.height, r.width] } });
  assert.ok(Math.abs(single.clip_cos.data[0] - out.clip_cos.data[1]) < 1e-5, 'batching does not mix items');
  assert.deepEqual(out.ssim_map.dims, [2, 3, r.height - 10, r.width - 10]);
});

test('an encoder loaded from a file is spliced the same way, and a bad file is refused by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'enc-'));
  const path = join(dir, 'vision.onnx');
  writeFileSync(path, builtinEncoderModel());
  const loaded = await loadEncoder(path);
  assert.equal(loaded.name, `vision.onnx`);
  const bad = join(dir, 'bad.onnx');
  writeFileSync(bad, 'not a model');
  await assert.rejects(loadEncoder(bad), /bad\.onnx/);
  await assert.rejects(loadEncoder(join(dir, 'missing.onnx')), /missing\.onnx/);
});

/**
 * A toy vision tower with HF CLIPVisionModel's output layout: `tokens` [N,49,8] listed first (last_hidden_state),
 * then `embeds` [N,8] (their mean), under the names given. `extra`: a second [N,8] output.
 */
function twoOutputTower(tokensName: string, embedsName: string, extra?: string): Uint8Array {
  const g = new Graph(17);
  const x = g.input('pixel_values', ['N', 3, 224, 224]);
  const w = g.constant(Float32Array.from({ length: 8 * 3 }, (_, i) => Math.sin(i + 1)), [8, 3, 1, 1]);
  const tokens = transpose(reshape(conv(avgPool(x, 32), w), ['N', 8, 49]), [0, 2, 1]);
  g.output(tokensName, tokens);
  g.output(embedsName, reduceMean(tokens, [1]));
  if (extra) g.output(extra, reduceMean(tokens, [1]));
  return serialize(g);
}

test('an encoder with several outputs: the embedding is image_embeds, else pooler_output, else the only [N,D]; anything else is refused by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'enc-outputs-'));
  const r = { height: 32, width: 32 };
  const rand = testRandom(9);
  const ref = Float32Array.from({ length: 3 * 32 * 32 }, () => rand());
  const cand = Float32Array.from(ref, (v, i) => (i % 7 === 0 ? 1 - v : v));
  const dims = [1, 3, r.height, r.width];
  // each output's cosine, outside the reward graph (clipPreprocess, then the tower on its own)
  const towerBytes = twoOutputTower('last_hidden_state', 'image_embeds');
  const pg = new Graph(17);
  pg.output('p', clipPreprocess(pg.input('x', dims)));
  const pre = await GraphSession.create(serialize(pg));
  const tower = await GraphSession.create(towerBytes);
  const features = async (img: Float32Array) => tower.run({ pixel_values: (await pre.run({ x: { data: img, dims } })).p! });
  const [a, b] = [await features(cand), await features(ref)];
  await pre.release();
  await tower.release();
  const cosine = (u: Float32Array, v: Float32Array) => {
    let d = 0, nu = 0, nv = 0;
    for (let i = 0; i < u.length; i++) { d += u[i]! * v[i]!; nu += u[i]! ** 2; nv += v[i]! ** 2; }
    return d / Math.sqrt(nu * nv);
  };
  const embedsCos = cosine(a.image_embeds!.data, b.image_embeds!.data);
  const tokensCos = cosine(a.last_hidden_state!.data, b.last_hidden_state!.data);
  assert.ok(Math.abs(embedsCos - tokensCos) > 1e-2, `the two outputs must tell apart: ${embedsCos} vs ${tokensCos}`);

  for (const [tokensName, embedsName] of [['last_hidden_state', 'image_embeds'], ['last_hidden_state', 'pooler_output'], ['tokens', 'embedding']]) {
    const path = join(dir, `${embedsName}.onnx`);
    writeFileSync(path, twoOutputTower(tokensName!, embedsName!));
    const m = await loadEncoder(path);
    const s = await GraphSession.create(serialize(buildRewardGraph(r, { encoder: m.bytes, encoderName: m.name })));
    const out = await s.run({ candidate: { data: cand, dims }, reference: { data: ref, dims } }, ['clip_cos']);
    await s.release();
    assert.ok(Math.abs(out.clip_cos.data[0]! - embedsCos) < 1e-5, `${embedsName}: clip_cos ${out.clip_cos.data[0]} is the cosine of ${embedsName} (${embedsCos}), not of the flattened tokens (${tokensCos})`);
  }
  // two [N,D] outputs and neither name: ambiguous, refused at load naming the file, the outputs and their shapes
  const ambiguous = join(dir, 'ambiguous.onnx');
  writeFileSync(ambiguous, twoOutputTower('tokens', 'mean_a', 'mean_b'));
  await assert.rejects(loadEncoder(ambiguous), (e: unknown) => e instanceof SetupError
    && /ambiguous\.onnx: has 3 outputs \(tokens \[N,49,8\], mean_a \[N,8\], mean_b \[N,8\]\)/.test(e.message) && /image_embeds or pooler_output/.test(e.message));
  assert.throws(() => buildRewardGraph(r, { encoder: twoOutputTower('tokens', 'mean_a', 'mean_b'), encoderName: 'given.onnx' }), /given\.onnx: has 3 outputs/);
});

test('resize matrices: rows sum to 1, identity at equal size', () => {
  for (const [i, o] of [[32, 224], [224, 32], [48, 224], [17, 17]]) {
    const m = resizeMatrix(i, o);
    for (let r = 0; r < o; r++) {
      let s = 0;
      for (let c = 0; c < i; c++) s += m[r * i + c];
      assert.ok(Math.abs(s - 1) < 1e-5, `${i}->${o} row ${r} sums to ${s}`);
    }
  }
  const id = resizeMatrix(5, 5);
  for (let r = 0; r < 5; r++) for (let c = 0; c < 5; c++) assert.ok(id[r * 5 + c] === (r === c ? 1 : 0), `identity resize at (${r}, ${c})`);
});

test('RewardScorer: a batch scored in slices (SSIM_RUN_BATCH items on one lane, SSIM_LANE_RUN_BATCH on two) gives each item the values it gets alone', async () => {
  const { RewardScorer } = await import('../../lib/models/scorer.ts');
  const { SSIM_RUN_BATCH } = await import('../../lib/models/ssim.ts');
  const rand = testRandom(9);
  const [h, w, n] = [24, 20, 2 * SSIM_RUN_BATCH + 1]; // three slices, the last one partial
  const per = 3 * h * w;
  const candidates = Float32Array.from({ length: n * per }, () => rand());
  const references = Float32Array.from(candidates, (v) => Math.min(1, Math.max(0, v + 0.3 * (rand() - 0.5))));
  const scorer = new RewardScorer({ encoder: 'random-features' });
  // two lanes even at 24x20: the slices run on the main thread and a worker thread at once
  const twoLanes = new RewardScorer({ encoder: 'random-features' }, 'cpu', { lanes: 2, laneMinPixels: 0 });
  try {
    for (const s of [scorer, twoLanes]) {
      const all = await s.score({ candidates, references, n, height: h, width: w }, true);
      const mapPer = 3 * (h - 10) * (w - 10);
      assert.equal(all.ssim_map!.length, n * mapPer);
      for (let i = 0; i < n; i++) {
        const one = await scorer.score({ candidates: candidates.subarray(i * per, (i + 1) * per), references: references.subarray(i * per, (i + 1) * per), n: 1, height: h, width: w }, true);
        assert.equal(all.ssim[i], one.ssim[0], `ssim of item ${i}`);
        assert.equal(all.clip_cos[i], one.clip_cos[0], `clip_cos of item ${i}`);
        assert.deepEqual(all.ssim_map!.subarray(i * mapPer, (i + 1) * mapPer), one.ssim_map, `ssim_map of item ${i}`);
      }
    }
    // The scorer is the one check of its inputs: a non-finite value anywhere (a corner pixel too, in one
    // valid window only) makes that item's SSIM non-finite, and the error names the value.
    for (const [what, item, at, v] of [['candidates', 0, 0, Infinity], ['references', 5, per - 1, -Infinity], ['candidates', 8, 3 * h * w - w, NaN]] as const) {
      const c = candidates.slice();
      const r = references.slice();
      (what === 'candidates' ? c : r)[item * per + at] = v;
      await assert.rejects(twoLanes.score({ candidates: c, references: r, n, height: h, width: w }),
        (e: Error & { code?: string; item?: number }) => e.code === 'non_finite' && e.item === item && e.message === `${what}[${item}]: value ${v} at flat index ${at} is not finite`);
    }
    await assert.rejects(scorer.score({ candidates: candidates.subarray(0, 3 * 10 * 10), references: references.subarray(0, 3 * 10 * 10), n: 1, height: 10, width: 10 }),
      (e: Error & { code?: string }) => e.code === 'bad_input' && /10x10 is smaller than the 11x11 SSIM window/.test(e.message));
    await assert.rejects(scorer.score({ candidates, references: references.subarray(1), n, height: h, width: w }), (e: Error & { code?: string }) => e.code === 'bad_input');
  } finally {
    await scorer.close();
    await twoLanes.close();
  }
});

test('RewardScorer on one lane: candidates sharing a reference (encoded once per graph run) get the bytes of the plain reward graph', async () => {
  const { RewardScorer, SMALL_RUN_BATCH } = await import('../../lib/models/scorer.ts');
  const { rewardModel } = await import('../../lib/models/bundle.ts');
  const { rewardRowFeeds } = await import('../../lib/models/feeds.ts');
  const { REFERENCE_ROWS, PAIR_ROWS } = await import('../../lib/models/encoder.ts');
  const rand = testRandom(21);
  const [h, w] = [24, 20];
  const per = 3 * h * w;
  // groups of 3, 8, 1 and 6 candidates (slices of SMALL_RUN_BATCH cut through groups), and two neighbouring
  // groups whose references are equal (one run)
  const groups = [3, 8, 1, 6, 2];
  const n = groups.reduce((a, b) => a + b, 0);
  assert.ok(n > 2 * SMALL_RUN_BATCH);
  const candidates = Float32Array.from({ length: n * per }, () => rand());
  const references = new Float32Array(n * per);
  let at = 0;
  let image = Float32Array.from({ length: per }, () => rand());
  for (const [k, g] of groups.entries()) {
    if (k !== 4) image = Float32Array.from({ length: per }, () => rand()); // group 4 repeats group 3's reference
    for (let i = 0; i < g; i++) references.set(image, (at + i) * per);
    at += g;
  }
  assert.deepEqual(rewardRowFeeds(references.subarray(0, 12 * per), 12), {
    [REFERENCE_ROWS]: { data: Float32Array.of(0, 3, 11), dims: [3] },
    [PAIR_ROWS]: { data: Float32Array.from([0, 12, 1, 12, 2, 12, 3, 13, 4, 13, 5, 13, 6, 13, 7, 13, 8, 13, 9, 13, 10, 13, 11, 14]), dims: [12, 2] },
  });
  const plain = await GraphSession.create((await rewardModel({ height: h, width: w }, { encoder: 'random-features' })).bytes, { device: 'cpu' });
  const scorer = new RewardScorer({ encoder: 'random-features' });
  const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  try {
    const want = await plain.run({ candidate: { data: candidates, dims: [n, 3, h, w] }, reference: { data: references, dims: [n, 3, h, w] } });
    const got = await scorer.score({ candidates, references, n, height: h, width: w }, true);
    assert.ok(bytes(got.clip_cos).equals(bytes(want.clip_cos!.data)), 'clip_cos');
    assert.ok(bytes(got.ssim).equals(bytes(want.ssim!.data)), 'ssim');
    assert.ok(bytes(got.ssim_map!).equals(bytes(want.ssim_map!.data)), 'ssim_map');
    // a non-finite value in a shared reference is still named, for the first candidate of its group
    const r = references.slice();
    r[11 * per + 7] = NaN; // group 2's one candidate, item 11
    r[12 * per + 7] = NaN; // group 3's first candidate, item 12: now unequal to its neighbours
    await assert.rejects(scorer.score({ candidates, references: r, n, height: h, width: w }),
      (e: Error & { code?: string; item?: number }) => e.code === 'non_finite' && e.item === 11 && e.message === 'references[11]: value NaN at flat index 7 is not finite');
  } finally {
    await plain.release();
    await scorer.close();
  }
});
