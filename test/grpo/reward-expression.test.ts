import { DEFAULT_REWARD_EXPRESSION as RUNTIME_DEFAULT } from '../../lib/config/schema.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  compileRewardExpression, constantReward, decomposeForDense, rewardPartials, rewardTerms, MAX_EXPRESSION_LENGTH,
} from '../../lib/grpo/reward-expression.ts';

// The expression runs use by default (the schema's), and the paper's reward written out with its numbers.
const WEIGHTED = RUNTIME_DEFAULT;
const DEFAULT_REWARD_EXPRESSION = '1.0 * ssim + 0.2 * exp(-5 * (1 - clamp(clip_cos, 0, 1)))';
const PAPER = { weights: { ssim: 1.0, clip: 0.2 }, alpha: 5 };

function close(actual: number, expected: number, tol = 1e-12, what = ''): void {
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

test('default expression, hand-computed', () => {
  const r = compileRewardExpression(DEFAULT_REWARD_EXPRESSION, {});
  assert.deepEqual(r.variables, ['clip_cos', 'ssim']);
  // 0.2 * exp(-5 * (1 - 1)) = 0.2
  close(r.evaluate({ ssim: 0.9, clip_cos: 1 }), 0.9 + 0.2);
  // clip_cos 0.8: 0.2 * exp(-1) = 0.0735758882342885
  close(r.evaluate({ ssim: 0.5, clip_cos: 0.8 }), 0.5 + 0.0735758882342885);
  // clip_cos clamped: 1.3 -> 1, -0.4 -> 0: 0.2 * exp(-5) = 0.0013475893998170934
  close(r.evaluate({ ssim: 0.25, clip_cos: 1.3 }), 0.25 + 0.2);
  close(r.evaluate({ ssim: -0.1, clip_cos: -0.4 }), -0.1 + 0.0013475893998170934);
  // clip_cos 0.9: 0.2 * exp(-0.5) = 0.12130613194252668
  close(r.evaluate({ ssim: 0.7, clip_cos: 0.9 }), 0.7 + 0.12130613194252668);
});

test('weights-record style equals the literal default; nested and dotted constants agree', () => {
  const literal = compileRewardExpression(DEFAULT_REWARD_EXPRESSION, {});
  const nested = compileRewardExpression(WEIGHTED, PAPER);
  const dotted = compileRewardExpression(WEIGHTED, { 'weights.ssim': 1, 'weights.clip': 0.2, alpha: 5 });
  assert.deepEqual(nested.constantsUsed, ['alpha', 'weights.clip', 'weights.ssim']);
  for (const [ssim, clip_cos] of [[0.1, 0.2], [0.93, 0.88], [0.5, 1]] as const) {
    close(nested.evaluate({ ssim, clip_cos }), literal.evaluate({ ssim, clip_cos }));
    close(dotted.evaluate({ ssim, clip_cos }), literal.evaluate({ ssim, clip_cos }));
  }
  const flat = compileRewardExpression('w_ssim * ssim + w_clip * clip_cos', { w_ssim: 2, w_clip: 3 });
  close(flat.evaluate({ ssim: 0.5, clip_cos: 0.25 }), 1.75);
});

test('ablation weights', () => {
  const ssimOnly = compileRewardExpression(WEIGHTED, { weights: { ssim: 1, clip: 0 }, alpha: 5 });
  close(ssimOnly.evaluate({ ssim: 0.8, clip_cos: 0.3 }), 0.8);
  const clipOnly = compileRewardExpression(WEIGHTED, { weights: { ssim: 0, clip: 1 }, alpha: 5 });
  close(clipOnly.evaluate({ ssim: 0.8, clip_cos: 0.8 }), Math.exp(-1));
  const heavier = compileRewardExpression(WEIGHTED, { weights: { ssim: 0.5, clip: 0.5 }, alpha: 2 });
  close(heavier.evaluate({ ssim: 0.6, clip_cos: 0.5 }), 0.3 + 0.5 * Math.exp(-1));
});

test('extra components, functions, conditionals', () => {
  const r = compileRewardExpression('sigmoid(psnr / 10) + tanh(ssim) + max(ssim, 0.5, clip_cos) + pow(2, 3) + sqrt(abs(-4)) + log(exp(1))', {}, { components: ['ssim', 'clip_cos', 'psnr'] });
  close(r.evaluate({ ssim: 0.2, clip_cos: 0.6, psnr: 0 }), 0.5 + Math.tanh(0.2) + 0.6 + 8 + 2 + 1);
  const c = compileRewardExpression('ssim > 0.9 ? 1 : ssim', {});
  assert.equal(c.evaluate({ ssim: 0.95, clip_cos: 0 }), 1);
  assert.equal(c.evaluate({ ssim: 0.5, clip_cos: 0 }), 0.5);
  close(compileRewardExpression('2 ssim', {}).evaluate({ ssim: 0.25 }), 0.5);
});

test('refuses unsafe or malformed expressions with a clear error', () => {
  const refused: Array<[string, RegExp]> = [
    ['f(x) = x', /function definition is not allowed/],
    ['import({}, {})', /function 'import' is not allowed/],
    ['a = 1', /assignment is not allowed/],
    ['unknown_var', /unknown name 'unknown_var'/],
    ['constructor + __proto__', /unknown name 'constructor'/],
    ['ssim + unknown_var * 2', /unknown name 'unknown_var'/],
    ['x[1]', /indexing or property access is not allowed: x\[1\]/],
    ['weights["ssim"] * ssim', /indexing or property access is not allowed/],
    ['weights.nope * ssim', /unknown name 'weights.nope'/],
    ['evaluate("1")', /function 'evaluate' is not allowed/],
    ['parse("1")', /function 'parse' is not allowed/],
    ['createUnit("foo")', /function 'createUnit' is not allowed/],
    ['"abc"', /only numbers are allowed/],
    ['true', /only numbers are allowed/],
    ['[1, 2]', /matrix\/array literal is not allowed/],
    ['{a: 1}', /object literal is not allowed/],
    ['1:3', /range is not allowed/],
    ['ssim; clip_cos', /several statements is not allowed/],
    ['ssim < clip_cos', /only allowed as the condition/],
    ['0 < ssim < 1', /chained comparison is not allowed/],
    ['5!', /operator '!' is not allowed/],
    ['ssim mod 2', /operator 'mod' is not allowed/],
    ['clamp(ssim, 0)', /clamp\(\) takes 3 argument/],
    ['exp', /is a function and must be called/],
    ['1e400 * ssim', /not finite/],
    ['ssim +', /does not parse/],
    ['   ', /is empty/],
    ['x'.repeat(MAX_EXPRESSION_LENGTH + 1), /longer than 1000 characters/],
    ['('.repeat(100) + 'ssim' + ')'.repeat(100), /nested deeper than 64/],
    ['-'.repeat(200) + 'ssim', /nested deeper than 64/],
  ];
  for (const [expr, pattern] of refused) {
    assert.throws(() => compileRewardExpression(expr, PAPER), (e: unknown) => {
      assert.ok(e instanceof Error, `${expr}: not an Error`);
      assert.match(e.message, /^reward expression "/, expr);
      assert.match(e.message, pattern, `${expr}: ${e.message}`);
      return true;
    });
  }
});

test('refuses bad constants', () => {
  assert.throws(() => compileRewardExpression('ssim', { alpha: Number.NaN }), /reward constant 'alpha': must be a finite number/);
  assert.throws(() => compileRewardExpression('ssim', { ssim: 1 }), /has the name of a component/);
  assert.throws(() => compileRewardExpression('ssim', { 'bad-name': 1 }), /not an identifier/);
});

test('a non-finite result is an error on that evaluation, never 0', () => {
  const r = compileRewardExpression('log(ssim) + 1 / clip_cos', {});
  assert.ok(Number.isFinite(r.evaluate({ ssim: 0.5, clip_cos: 0.5 })));
  assert.throws(() => r.evaluate({ ssim: 0, clip_cos: 0.5 }), /evaluated to -Infinity .*"ssim":0/);
  assert.throws(() => r.evaluate({ ssim: -1, clip_cos: 0.5 }), /evaluated to NaN/);
  assert.throws(() => r.evaluate({ ssim: 0.5, clip_cos: 0 }), /evaluated to Infinity/);
  assert.throws(() => r.evaluate({ ssim: 0.5 }), /component 'clip_cos' must be a finite number, got undefined/);
  assert.throws(() => r.evaluate({ ssim: Number.NaN, clip_cos: 0.5 }), /component 'ssim' must be a finite number, got NaN/);
});

test('property: arbitrary strings compile or throw a clean Error, fast', () => {
  const tokens = ['ssim', 'clip_cos', 'weights.ssim', 'alpha', '1', '0.5', '1e308', '+', '-', '*', '/', '^', '(', ')', ',', '?', ':', '<', '=',
    'exp(', 'clamp(', 'min(', 'import(', 'evaluate(', 'f(x)', '[', ']', '{', '}', '.', '"', "'", ';', '!', ' ', 'x', 'e', 'pi'];
  const exprs = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.array(fc.constantFrom(...tokens), { maxLength: 30 }).map((t) => t.join('')),
  );
  fc.assert(fc.property(exprs, fc.double({ noNaN: true, min: -2, max: 2 }), fc.double({ noNaN: true, min: -2, max: 2 }), (expr, ssim, clip_cos) => {
    const t0 = performance.now();
    try {
      const r = compileRewardExpression(expr, PAPER);
      try {
        const v = r.evaluate({ ssim, clip_cos });
        assert.ok(Number.isFinite(v));
      } catch (e) {
        assert.ok(e instanceof Error && e.message.startsWith('reward expression'), String(e));
      }
    } catch (e) {
      assert.ok(e instanceof Error && e.message.startsWith('reward expression'), `${JSON.stringify(expr)}: ${String(e)}`);
    }
    assert.ok(performance.now() - t0 < 2000, `slow (a pathological expression, not machine load) on ${JSON.stringify(expr)}`);
  }), { numRuns: 3000 });
});

test('decomposeForDense: the paper reward is 1 * ssim + clip term', () => {
  for (const [expr, constants] of [[DEFAULT_REWARD_EXPRESSION, {}], [WEIGHTED, PAPER]] as const) {
    const { ssimWeight, rest } = decomposeForDense(expr, constants);
    assert.equal(ssimWeight, 1);
    assert.deepEqual(rest.variables, ['clip_cos']);
    close(rest.evaluate({ clip_cos: 0.8 }), 0.0735758882342885);
    close(rest.evaluate({ ssim: 123, clip_cos: 0.8 }), 0.0735758882342885, 1e-12, 'rest ignores ssim');
  }
  const ablation = decomposeForDense(WEIGHTED, { weights: { ssim: 0.7, clip: 0.5 }, alpha: 5 });
  close(ablation.ssimWeight, 0.7);
  close(ablation.rest.evaluate({ clip_cos: 1 }), 0.5);
  // Affine forms that are not written as w * ssim.
  close(decomposeForDense('(ssim - 1) / 2 + ssim + (clip_cos > 0.5 ? 1 : 0)', {}).ssimWeight, 1.5);
  close(decomposeForDense('3 * (ssim + clip_cos) - ssim * 2 + (clip_cos > 0.5 ? clip_cos : 0)', {}).ssimWeight, 1);
  close(decomposeForDense('-ssim / 4', {}).ssimWeight, -0.25);
});

test('decomposeForDense refuses non-affine rewards and says why', () => {
  const cases: Array<[string, RegExp]> = [
    ['ssim * ssim', /ssim is multiplied by a factor that also depends on it: ssim \* ssim/],
    // bounded work: mathjs's derivative of this product grows exponentially (32 factors stalled start-up)
    [Array.from({ length: 32 }, () => 'ssim').join(' * '), /ssim is multiplied by a factor that also depends on it/],
    [Array.from({ length: 17 }, () => 'ssim').join(' + '), /ssim appears 17 times; at most 16 are allowed/],
    ['ssim / (1 + ssim)', /ssim appears in a denominator/],
    ['(ssim + clip_cos) ^ 2', /ssim appears in a power/],
    ['ssim * clip_cos', /d reward \/ d ssim = \[clip_cos\] is not constant \(it depends on clip_cos\)/],
    ['clamp(ssim, 0, 1) + clip_cos', /non-affine construct.*clamp/],
    ['exp(ssim)', /not constant/],
    ['max(ssim, clip_cos)', /non-affine construct.*max/],
    ['ssim > 0.5 ? ssim : 0', /ssim appears in a conditional/],
    ['clip_cos', /does not use 'ssim'/],
  ];
  for (const [expr, pattern] of cases) {
    assert.throws(() => decomposeForDense(expr, {}), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /cannot be decomposed as w \* ssim \+ rest/, e.message);
      assert.match(e.message, pattern, e.message);
      return true;
    });
  }
});

test('rewardTerms splits the weighted sum (for normalize-then-sum)', () => {
  const { terms, offset } = rewardTerms(WEIGHTED, PAPER);
  assert.equal(offset, 0);
  assert.deepEqual(terms.map((t) => [t.label, t.weight]), [['ssim', 1], ['exp(-alpha * (1 - clamp(clip_cos, 0, 1)))', 0.2]]);
  close(terms[1]!.evaluate({ clip_cos: 0.8 }), Math.exp(-1));
  const odd = rewardTerms('1 + 2 * ssim * 3 - clip_cos / 4 - (-(ssim * clip_cos))', {});
  assert.equal(odd.offset, 1);
  assert.deepEqual(odd.terms.map((t) => [t.label, t.weight]), [['ssim', 6], ['clip_cos', -0.25], ['ssim * clip_cos', 1]]);
  // The terms reassemble the reward.
  const full = compileRewardExpression('1 + 2 * ssim * 3 - clip_cos / 4 - (-(ssim * clip_cos))', {});
  const c = { ssim: 0.3, clip_cos: 0.7 };
  close(odd.offset + odd.terms.reduce((s, t) => s + t.weight * t.evaluate(c), 0), full.evaluate(c));
});

test('constantReward: the value of a reward that is the same over the components\' range, undefined for one that varies', () => {
  const at = (expr: string, constants = {}, components?: string[]) => constantReward(compileRewardExpression(expr, constants, components ? { components } : {}));
  assert.equal(at(WEIGHTED, { weights: { ssim: 0, clip: 0 }, alpha: 5 }), 0);
  assert.equal(at('2'), 2);
  assert.equal(at('ssim - ssim + 0.5 * 2'), 1);
  assert.equal(at('clip_cos > 2 ? ssim : 3'), 3, 'a branch never taken in [-1, 1]');
  assert.equal(at(WEIGHTED, PAPER), undefined);
  assert.equal(at(WEIGHTED, { weights: { ssim: 0, clip: 0.2 }, alpha: 5 }), undefined, 'the CLIP term alone');
  assert.equal(at(WEIGHTED, { weights: { ssim: 1, clip: 0 }, alpha: 5 }), undefined, 'SSIM alone');
  assert.equal(at('clamp(ssim, 0.95, 1)'), undefined, 'varies only above 0.95');
  assert.equal(at('log(ssim)'), undefined, 'not finite for ssim <= 0 (skipped), varies above');
  // four components: a part of the grid, still over every axis
  assert.equal(at('0 * (a + b + c) + 0.01 * d', {}, ['a', 'b', 'c', 'd']), undefined);
  assert.equal(at('0 * (a + b + c + d) + 7', {}, ['a', 'b', 'c', 'd']), 7);
});

test('constantReward samples the expression\'s own numbers: a band narrower than the fixed grid varies (review24f)', () => {
  const at = (expr: string, constants = {}) => constantReward(compileRewardExpression(expr, constants));
  // each was refused as constant 0 by the 11 fixed points per component (none falls inside the band)
  assert.equal(at('ssim > 0.6 ? (ssim < 0.7 ? 1 : 0) : 0'), undefined, 'a band between two samples');
  assert.equal(at('abs(ssim - 0.8) < 0.05 ? 1 : 0'), undefined, 'a band around a literal');
  assert.equal(at('ssim > 0.55 ? (clip_cos > 0.25 ? (clip_cos < 0.3 ? 1 : 0) : 0) : 0'), undefined, 'a band in the second component');
  assert.equal(at('-ssim < -alpha ? 1 : 0', { alpha: 0.98 }), undefined, 'a threshold given by a constant, negated');
  // bounds the expression computes are not its literals: the confirming sweep finds the band
  assert.equal(at('ssim > 0.5 + 0.05 ? (ssim < 0.5 + 0.06 ? 1 : 0) : 0'), undefined, 'a band of computed bounds');
  assert.equal(at('clip_cos > 0.3 * 3 ? (clip_cos < 0.91 + 0.002 ? ssim : 0) : 0'), undefined, 'a computed band in the second component');
  // truly constant ones still are, at the literals too
  assert.equal(at('ssim > 0.6 ? 0.5 : 0.5'), 0.5);
  assert.equal(at('ssim > 0.5 + 0.05 ? (ssim < 0.5 + 0.06 ? 0 : 0) : 0'), 0);
  assert.equal(at('ssim > 0.6 ? (ssim < 0.7 ? 0 : 0) : 2 * 0'), 0);
});

test('rewardPartials: the paper reward differentiated by hand, and components it does not read', () => {
  const r = compileRewardExpression(DEFAULT_REWARD_EXPRESSION);
  for (const [ssim, cos] of [[0.4, 0.3], [0.9, 0.85], [0.1, -0.2], [0.7, 1.3]] as const) {
    const d = rewardPartials(r, { ssim, clip_cos: cos }, ['ssim', 'clip_cos', 'psnr']);
    assert.ok(Math.abs(d.ssim! - 1) < 1e-6);
    // d/dc 0.2 exp(-5 (1 - c)) = exp(-5 (1 - c)) inside [0, 1]; the clamp makes it 0 outside.
    const hand = cos > 0 && cos < 1 ? Math.exp(-5 * (1 - cos)) : 0;
    assert.ok(Math.abs(d.clip_cos! - hand) < 1e-6, `d/dclip_cos at ${cos}: ${d.clip_cos} vs ${hand}`);
    assert.equal(d.psnr, 0);
  }
});
