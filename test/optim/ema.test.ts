import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type TensorMap } from '../../lib/checkpoint/tensors.ts';
import { ParamEma } from '../../lib/optim/ema.ts';

const map = (a: number[], b: number[]): TensorMap => new Map([['a', tensor([a.length], a)], ['b.bias', tensor([b.length], b)]]);

test('EMA: three updates by hand, with the warm-up decays min(decay, k/(k+9)): 0.1, 2/11, 3/12', () => {
  const p = map([1, -2], [4]);
  const ema = new ParamEma(p, 0.2);
  assert.deepEqual([...ema.shadow.get('a')!.data], [1, -2], 'the shadow starts as a copy');
  assert.notEqual(ema.shadow.get('a')!.data, p.get('a')!.data, 'a copy, not the same array');
  // update 1: d = 0.1; update 2: d = 2/11; update 3: d = min(0.2, 3/12) = 0.2
  const steps = [map([3, 0], [2]), map([5, 2], [0]), map([7, 4], [-2])];
  const decays = [0.1, 2 / 11, 0.2];
  let a0 = 1, a1 = -2, b0 = 4;
  for (let k = 0; k < 3; k++) {
    assert.ok(Math.abs(ema.nextDecay() - decays[k]!) < 1e-15, `decay of update ${k + 1}`);
    ema.update(steps[k]!);
    const d = decays[k]!;
    const [x0, x1] = steps[k]!.get('a')!.data;
    a0 = d * a0 + (1 - d) * x0!;
    a1 = d * a1 + (1 - d) * x1!;
    b0 = d * b0 + (1 - d) * steps[k]!.get('b.bias')!.data[0]!;
  }
  assert.equal(ema.updates, 3);
  // by hand: a0: 0.1*1 + 0.9*3 = 2.8; (2/11)*2.8 + (9/11)*5 = 4.6; 0.2*4.6 + 0.8*7 = 6.52
  assert.ok(Math.abs(a0 - 6.52) < 1e-12);
  assert.ok(Math.abs(ema.shadow.get('a')!.data[0]! - 6.52) < 1e-6);
  assert.ok(Math.abs(ema.shadow.get('a')!.data[1]! - a1) < 1e-6);
  assert.ok(Math.abs(ema.shadow.get('b.bias')!.data[0]! - b0) < 1e-6);
  // copyTo writes in place
  const target = map([0, 0], [0]);
  const arr = target.get('a')!.data;
  ema.copyTo(target);
  assert.equal(target.get('a')!.data, arr);
  assert.deepEqual([...target.get('a')!.data], [...ema.shadow.get('a')!.data]);
});

test('EMA: bad decay and mismatched parameters are refused, naming them', () => {
  assert.throws(() => new ParamEma(map([1], [1]), 0), /decay must lie in \(0, 1\), got 0/);
  assert.throws(() => new ParamEma(map([1], [1]), 1), /got 1/);
  const ema = new ParamEma(map([1, 2], [1]), 0.9);
  assert.throws(() => ema.update(map([1, 2, 3], [1])), /parameter a has shape \[3\]/);
  assert.throws(() => ema.update(new Map([['a', tensor([2])], ['c', tensor([1])]])), /parameter b\.bias is missing/);
  assert.throws(() => ema.copyTo(new Map([['a', tensor([2])]])), /1 parameters given, the average holds 2/);
});

test('EMA without warm-up: every update uses the decay; a saved state resumed continues the same average', () => {
  const p = map([1, -2], [4]);
  const ema = new ParamEma(p, 0.5, { warmup: false });
  assert.equal(ema.nextDecay(), 0.5);
  ema.update(map([3, 0], [2]));
  // by hand: 0.5*1 + 0.5*3 = 2; 0.5*-2 + 0.5*0 = -1; 0.5*4 + 0.5*2 = 3
  assert.deepEqual([...ema.shadow.get('a')!.data], [2, -1]);
  assert.deepEqual([...ema.shadow.get('b.bias')!.data], [3]);
  const saved = ema.exportState();
  assert.equal(saved.updates, 1);
  ema.update(map([6, 1], [0]));
  // 0.5*2 + 0.5*6 = 4; 0.5*-1 + 0.5*1 = 0; 0.5*3 + 0 = 1.5
  assert.deepEqual([...ema.shadow.get('a')!.data], [4, 0]);
  assert.deepEqual([...saved.shadow.get('a')!.data], [2, -1], 'the exported state is a copy');
  const resumed = new ParamEma(saved.shadow, 0.5, { warmup: false, updates: saved.updates });
  resumed.update(map([6, 1], [0]));
  assert.deepEqual([...resumed.shadow.get('a')!.data], [4, 0]);
  assert.deepEqual([...resumed.shadow.get('b.bias')!.data], [1.5]);
  assert.equal(resumed.updates, 2);
  // with the warm-up, the count carries the warm-up on: update 2 uses 2/11, not 1/10
  const w = new ParamEma(map([0, 0], [0]), 0.9, { updates: 1 });
  assert.ok(Math.abs(w.nextDecay() - 2 / 11) < 1e-15);
  assert.throws(() => new ParamEma(p, 0.5, { updates: -1 }), /updates must be a non-negative integer, got -1/);
});
