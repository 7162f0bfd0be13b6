import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdamW, ADAMW_DEFAULTS, adamWOptionsFromConfig, biasAndLogStdNoDecay, globalGradNorm, noDecayFromPatterns } from '../../lib/optim/adamw.ts';
import { cloneTensorMap, type TensorMap } from '../../lib/checkpoint/tensors.ts';
import { decodeCheckpoint, encodeCheckpoint } from '../../lib/checkpoint/checkpoint.ts';
import { loadConfig } from '../../lib/config/load.ts';

const tm = (entries: Record<string, number[]>): TensorMap =>
  new Map(Object.entries(entries).map(([k, v]) => [k, { shape: [v.length], data: Float32Array.from(v) }]));
const arr = (m: TensorMap, k: string): number[] => [...m.get(k)!.data];

function close(actual: number, expected: number, rel = 2e-6, what = ''): void {
  const tol = rel * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs expected ${expected} (tol ${tol})`);
}

function bitsEqual(a: TensorMap, b: TensorMap): void {
  for (const [k, t] of a) assert.deepEqual(new Uint32Array(b.get(k)!.data.buffer), new Uint32Array(t.data.buffer), k);
}

test('defaults are the design values', () => {
  const opt = new AdamW(tm({ w: [1] }));
  assert.equal(opt.lr, 1e-4);
  assert.deepEqual([opt.beta1, opt.beta2], [0.9, 0.999]);
  assert.equal(opt.eps, 1e-8);
  assert.equal(opt.weightDecay, 1e-4);
  assert.equal(opt.maxGradNorm, 1.0);
  assert.deepEqual(ADAMW_DEFAULTS.betas, [0.9, 0.999]);
});

test('two steps by hand (lr 0.1, wd 0.01, no clipping)', () => {
  // Worked by hand, step 1, element 0: p = 1*(1 - 0.1*0.01) = 0.999; m = 0.1*0.5 = 0.05; v = 0.001*0.25 = 0.00025;
  //   mhat = 0.05/0.1 = 0.5; vhat = 0.00025/0.001 = 0.25; p = 0.999 - 0.1*0.5/(0.5 + 1e-8) = 0.899000002.
  // Element 1 (g = -0.25): p = -1.998 + 0.1*0.25/(0.25 + 1e-8) = -1.898000004.
  // Step 2, element 0 (g = 0.1): p = 0.899000002*0.999 = 0.898101002; m = 0.045 + 0.01 = 0.055;
  //   v = 0.00024975 + 0.00001 = 0.00025975; mhat = 0.055/0.19 = 0.289473684; vhat = 0.00025975/0.001999 = 0.129939970;
  //   p = 0.898101002 - 0.1*0.289473684/0.360471871 = 0.817796906.
  const params = tm({ w: [1, -2] });
  const opt = new AdamW(params, { lr: 0.1, weightDecay: 0.01, maxGradNorm: null });
  const r1 = opt.step(tm({ w: [0.5, -0.25] }));
  assert.deepEqual(r1, { applied: true, gradNorm: Math.hypot(0.5, 0.25), clipped: false, step: 1 });
  close(arr(params, 'w')[0]!, 0.899000002, 1e-7, 'step1 p0');
  close(arr(params, 'w')[1]!, -1.898000004, 1e-7, 'step1 p1');
  const s1 = opt.exportState();
  close(arr(s1.m, 'w')[0]!, 0.05, 1e-7, 'm');
  close(arr(s1.v, 'w')[1]!, 6.25e-5, 1e-7, 'v');
  opt.step(tm({ w: [0.1, 0.3] }));
  close(arr(params, 'w')[0]!, 0.817796906, 1e-7, 'step2 p0');
  close(arr(params, 'w')[1]!, -1.910396477, 1e-7, 'step2 p1');
  assert.equal(opt.stepCount, 2);
});

/** Independent float64 reference: PyTorch AdamW + clip_grad_norm_, written out plainly. */
function reference(p0: Record<string, number[]>, grads: Record<string, number[]>[], o: { lr: number; wd: number; maxNorm: number; noDecay: string[] }) {
  const p = structuredClone(p0);
  const m: Record<string, number[]> = {};
  const v: Record<string, number[]> = {};
  for (const k in p) { m[k] = p[k]!.map(() => 0); v[k] = p[k]!.map(() => 0); }
  const norms: number[] = [];
  grads.forEach((g, idx) => {
    const t = idx + 1;
    let sq = 0;
    for (const k in g) for (const x of g[k]!) sq += x * x;
    const norm = Math.sqrt(sq);
    norms.push(norm);
    const c = Math.min(1, o.maxNorm / (norm + 1e-6));
    for (const k in p) {
      for (let i = 0; i < p[k]!.length; i++) {
        const gi = g[k]![i]! * c;
        if (!o.noDecay.includes(k)) p[k]![i]! *= 1 - o.lr * o.wd;
        m[k]![i] = 0.9 * m[k]![i]! + 0.1 * gi;
        v[k]![i] = 0.999 * v[k]![i]! + 0.001 * gi * gi;
        const mhat = m[k]![i]! / (1 - 0.9 ** t);
        const vhat = v[k]![i]! / (1 - 0.999 ** t);
        p[k]![i]! -= o.lr * mhat / (Math.sqrt(vhat) + 1e-8);
      }
    }
  });
  return { p, norms };
}

test('six steps match a float64 reference (3 elements in 2 tensors, clipping, bias excluded from decay)', () => {
  const p0 = { 'conv.weight': [0.3, -0.7], 'conv.bias': [0.05] };
  const grads = [
    { 'conv.weight': [0.9, -1.2], 'conv.bias': [0.4] },  // norm 1.552: clipped to 0.5
    { 'conv.weight': [0.1, 0.2], 'conv.bias': [-0.05] },  // norm 0.229: not clipped
    { 'conv.weight': [-2.0, 0.0], 'conv.bias': [1.5] },   // clipped
    { 'conv.weight': [1e-3, -1e-3], 'conv.bias': [0] },
    { 'conv.weight': [0.3, 0.3], 'conv.bias': [0.3] },
    { 'conv.weight': [-0.4, 0.1], 'conv.bias': [0.2] },
  ];
  const o = { lr: 0.01, wd: 0.1, maxNorm: 0.5, noDecay: ['conv.bias'] };
  const ref = reference(p0, grads, o);
  const params = tm(p0);
  const opt = new AdamW(params, { lr: o.lr, weightDecay: o.wd, maxGradNorm: o.maxNorm, noDecay: biasAndLogStdNoDecay });
  grads.forEach((g, i) => {
    const r = opt.step(tm(g));
    assert.ok(r.applied);
    close(r.gradNorm, ref.norms[i]!, 1e-6, `norm ${i}`);
    assert.equal(r.clipped, ref.norms[i]! > 0.5, `clipped flag at step ${i + 1}`);
  });
  for (const k of Object.keys(p0)) arr(params, k).forEach((x, i) => close(x, ref.p[k]![i]!, 2e-6, `${k}[${i}]`));
  // With decay on the bias too, the bias ends elsewhere: the exclusion is real.
  const ref2 = reference(p0, grads, { ...o, noDecay: [] });
  assert.ok(Math.abs(ref2.p['conv.bias']![0]! - ref.p['conv.bias']![0]!) > 1e-6);
});

test('clipping: scale = maxNorm / (norm + 1e-6), gradNorm reported before clipping, input grads untouched', () => {
  const params = tm({ a: [0, 0], b: [0] });
  const opt = new AdamW(params, { maxGradNorm: 1.0 });
  const g = tm({ a: [3, 0], b: [4] });
  const r = opt.step(g);
  assert.deepEqual(r, { applied: true, gradNorm: 5, clipped: true, step: 1 });
  const scale = 1 / (5 + 1e-6);
  const st = opt.exportState();
  close(arr(st.m, 'a')[0]!, 0.1 * 3 * scale, 1e-7, 'm.a');
  close(arr(st.m, 'b')[0]!, 0.1 * 4 * scale, 1e-7, 'm.b');
  close(arr(st.v, 'b')[0]!, 0.001 * (4 * scale) ** 2, 1e-6, 'v.b');
  assert.deepEqual(arr(g, 'a'), [3, 0]);
  // Below the limit nothing is scaled.
  const opt2 = new AdamW(tm({ a: [0] }), { maxGradNorm: 1.0 });
  const r2 = opt2.step(tm({ a: [0.5] }));
  assert.ok(r2.applied && !r2.clipped);
  close(arr(opt2.exportState().m, 'a')[0]!, 0.05, 1e-7, 'unclipped m');
  assert.equal(globalGradNorm(tm({ a: [3], b: [4] })), 5);
});

test('a non-finite gradient skips the step and leaves params, moments and t untouched', () => {
  const params = tm({ w: [1, 2], 'head.bias': [3] });
  const opt = new AdamW(params, { lr: 0.1 });
  opt.step(tm({ w: [0.1, 0.2], 'head.bias': [0.3] }));
  const before = cloneTensorMap(params);
  const stateBefore = opt.exportState();
  for (const bad of [NaN, Infinity, -Infinity]) {
    const r = opt.step(tm({ w: [0.1, 0.2], 'head.bias': [bad] }));
    assert.equal(r.applied, false);
    assert.ok(!r.applied && r.reason.startsWith('non-finite gradient in head.bias'), JSON.stringify(r));
    assert.ok(!Number.isFinite(r.gradNorm));
    bitsEqual(before, params);
    const s = opt.exportState();
    bitsEqual(stateBefore.m, s.m);
    bitsEqual(stateBefore.v, s.v);
    assert.equal(opt.stepCount, 1);
  }
  const ok = opt.step(tm({ w: [0.1, 0.2], 'head.bias': [0.3] }));
  assert.ok(ok.applied && ok.step === 2);
});

test('decoupled weight decay alone: zero gradients shrink p by (1 - lr*wd) per step', () => {
  const params = tm({ w: [2, -4] });
  const opt = new AdamW(params, { lr: 0.5, weightDecay: 0.1 });
  for (let i = 0; i < 3; i++) opt.step(tm({ w: [0, 0] }));
  close(arr(params, 'w')[0]!, 2 * 0.95 ** 3, 1e-7, 'w0');
  close(arr(params, 'w')[1]!, -4 * 0.95 ** 3, 1e-7, 'w1');
});

test('a parameter without a gradient is left alone; bad gradients are programming errors', () => {
  const params = tm({ w: [1], frozen: [5] });
  const opt = new AdamW(params, { lr: 0.1, weightDecay: 0.5 });
  opt.step(tm({ w: [1] }));
  assert.deepEqual(arr(params, 'frozen'), [5]);
  assert.throws(() => opt.step(tm({ nope: [1] })), /gradient "nope" has no matching parameter/);
  assert.throws(() => opt.step(tm({ w: [1, 2] })), /gradient "w" has shape \[2\], parameter has \[1\]/);
  assert.throws(() => new AdamW(params, { betas: [1, 0.999] }), /beta1 must be in \[0, 1\)/);
});

test('state export/import (also through a checkpoint) resumes bit-exactly', () => {
  const init = { a: [0.1, -0.2, 0.3], b: [1.5] };
  const gradsAt = (t: number) => tm({ a: [Math.sin(t), Math.cos(3 * t), 0.5 - t / 10], b: [t % 2 ? 0.7 : -0.3] });
  const opts = { lr: 1e-2, maxGradNorm: 0.8 };
  // Uninterrupted: 6 steps.
  const pA = tm(init);
  const A = new AdamW(pA, opts);
  for (let t = 1; t <= 6; t++) A.step(gradsAt(t));
  // Interrupted after 3, saved to checkpoint bytes, restored into a fresh optimizer.
  const pB = tm(init);
  const B = new AdamW(pB, opts);
  for (let t = 1; t <= 3; t++) B.step(gradsAt(t));
  const { bytes } = encodeCheckpoint({ meta: { runId: 'r', version: 3, step: 3, lastBatchId: 'b3', configHash: 'x' }, params: pB, optimizer: B.exportState() });
  const ck = decodeCheckpoint(bytes, { expectedShapes: pB });
  const C = new AdamW(ck.params, opts);
  C.importState(ck.optimizer!);
  assert.equal(C.stepCount, 3);
  for (let t = 4; t <= 6; t++) C.step(gradsAt(t));
  bitsEqual(pA, ck.params);
  bitsEqual(A.exportState().m, C.exportState().m);
  bitsEqual(A.exportState().v, C.exportState().v);
  // Exported state is a copy, and import refuses mismatches.
  const s = C.exportState();
  s.m.get('a')!.data[0] = 99;
  assert.notEqual(C.exportState().m.get('a')!.data[0], 99);
  s.v.delete('b');
  assert.throws(() => C.importState(s), /v\."b" is missing/);
  assert.throws(() => C.importState({ ...C.exportState(), step: -1 }), /step must be an integer/);
});

test('noDecay predicates', () => {
  for (const n of ['conv1.bias', 'head.b', 'log_std', 'policy.logStd']) assert.ok(biasAndLogStdNoDecay(n), n);
  for (const n of ['conv1.weight', 'bias_gate.weight', 'blob']) assert.ok(!biasAndLogStdNoDecay(n), n);
  const p = noDecayFromPatterns(['\\.bias$', '^norm']);
  assert.ok(p('x.bias') && p('norm1.weight') && !p('x.weight'));
});

test('options from the run config: defaults match, maxGradNorm 0 disables clipping, patterns exclude decay', () => {
  const opt = new AdamW(tm({ w: [1] }), adamWOptionsFromConfig(loadConfig().optim));
  assert.deepEqual([opt.lr, opt.beta1, opt.beta2, opt.eps, opt.weightDecay, opt.maxGradNorm], [1e-4, 0.9, 0.999, 1e-8, 1e-4, 1.0]);
  const c = loadConfig(undefined, ['optim.maxGradNorm=0', 'optim.excludeFromWeightDecay=["\\\\.bias$"]', 'optim.lr=0.5', 'optim.weightDecay=0.1']);
  const params = tm({ 'x.bias': [2], 'x.weight': [2] });
  const o2 = new AdamW(params, adamWOptionsFromConfig(c.optim));
  assert.equal(o2.maxGradNorm, null);
  const r = o2.step(tm({ 'x.bias': [0], 'x.weight': [0] }));
  assert.ok(r.applied && !r.clipped);
  assert.deepEqual(arr(params, 'x.bias'), [2]);
  close(arr(params, 'x.weight')[0]!, 2 * 0.95, 1e-7, 'decayed weight');
});
