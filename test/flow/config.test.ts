// The flow configuration section: flow_grpo's defaults, and windows the step plan would refuse refused at
// load time, naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flowConfigSchema, flowSpaceOf, samplerSpecOf, velocitySpecOf } from '../../lib/flow/config.ts';
import { rolloutPlan } from '../../lib/flow/sampler.ts';
import { loadConfig, parseConfig } from '../../lib/config/index.ts';
import { configHash } from '../../lib/checkpoint/digest.ts';

test('flow config: defaults give a valid plan; the specs carry every field', () => {
  const f = flowConfigSchema.parse({});
  assert.equal(f.steps, 10);
  assert.equal(f.evalSteps, 40);
  assert.deepEqual(f.sde, { type: 'sde', a: 0.7, window: { size: 2, start: 'random' }, lastStepSde: false, trainLastStep: false });
  assert.equal('trainLastStep' in samplerSpecOf(f), false, 'the default leaves the sampler spec as it was');
  assert.equal(samplerSpecOf(flowConfigSchema.parse({ steps: 8, sde: { window: { start: 6, size: 2 }, trainLastStep: true } })).trainLastStep, true);
  assert.throws(() => flowConfigSchema.parse({ steps: 8, sde: { window: { start: 6, size: 2 } } }), /never trained/);
  assert.throws(() => flowConfigSchema.parse({ sde: { trainLastStep: true } }), /trainLastStep needs a numeric window/);
  assert.throws(() => flowConfigSchema.parse({ steps: 8, sde: { window: { start: 1, size: 2 }, trainLastStep: true } }), /leave it untrained/);
  assert.throws(() => flowConfigSchema.parse({ steps: 8, sde: { type: 'cps', a: 0.5, window: { start: 6, size: 2 }, trainLastStep: true } }), /trainLastStep|cps/);
  assert.equal('lastStepSde' in samplerSpecOf(f), false, 'the default leaves the sampler spec as it was');
  assert.equal(samplerSpecOf(flowConfigSchema.parse({ sde: { lastStepSde: true } })).lastStepSde, true);
  const plan = rolloutPlan(samplerSpecOf(f), 0.99);
  assert.equal(plan.length, 10);
  assert.equal(plan.filter((p) => p.trained).length, 2);
  assert.deepEqual(velocitySpecOf({ arch: 'unet', width: 8, depth: 2 }, f), { arch: 'unet', width: 8, depth: 2, timeFrequencies: 8, timeWidth: 32 });
  assert.equal(f.predict, 'velocity');
  assert.equal(velocitySpecOf({ arch: 'unet', width: 8, depth: 2 }, flowConfigSchema.parse({ predict: 'residual' })).predict, 'residual');
  assert.equal(f.space, 'image');
  assert.deepEqual(flowSpaceOf(f), { kind: 'image' });
  assert.deepEqual(flowSpaceOf(flowConfigSchema.parse({ space: 'residual', scale: 0.5 })), { kind: 'residual', scale: 0.5 });
  assert.equal(velocitySpecOf({ arch: 'unet', width: 8, depth: 2 }, flowConfigSchema.parse({ space: 'residual' })).space, 'residual');
  assert.equal('space' in velocitySpecOf({ arch: 'unet', width: 8, depth: 2 }, f), false, 'the image space leaves the spec as it was');
  assert.equal(f.inputGate, false);
  assert.equal('inputGate' in velocitySpecOf({ arch: 'unet', width: 8, depth: 2 }, f), false);
  assert.equal(velocitySpecOf({ arch: 'unet', width: 8, depth: 2 }, flowConfigSchema.parse({ inputGate: true })).inputGate, true);
  assert.equal(f.klForm, 'exact', 'the KL term stays the exact one unless flow_grpo\'s form is asked for');
  assert.equal(flowConfigSchema.parse({ klForm: 'flow_grpo' }).klForm, 'flow_grpo');
});

test('flow config: a window reaching the last step, a random window past the first half and cps with a >= 1 are refused by name', () => {
  const issues = (input: unknown) => {
    const r = flowConfigSchema.safeParse(input);
    assert.equal(r.success, false);
    return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  assert.match(issues({ steps: 4, sde: { window: { size: 3, start: 1 } } })[0], /^sde\.window: .*never trained/);
  assert.match(issues({ steps: 4, sde: { window: { size: 3 } } })[0], /^sde\.window: .*first half/);
  assert.match(issues({ sde: { type: 'cps', a: 1.3 } })[0], /^sde\.a: must be < 1/);
  assert.match(issues({ sde: { window: { start: 'middle' } } })[0], /^sde\.window\.start/);
  assert.match(issues({ predict: 'x0' })[0], /^predict: /);
  assert.match(issues({ space: 'latent' })[0], /^space: /);
  assert.match(issues({ scale: 0 })[0], /^scale: /);
  assert.match(issues({ klForm: 'kl' })[0], /^klForm: /);
});

// Round 33 (docs/flow.md, "Round 33: flow33"): the flow family's default advantage mode is scalar (Flow-GRPO's);
// dense stays the Gaussian family's default and is still chosen explicitly.
test('flow config: grpo.advantageMode defaults to scalar for the flow family, dense for the Gaussian, and an explicit setting wins', () => {
  assert.equal(loadConfig(undefined, []).grpo.advantageMode, 'dense', 'the Gaussian family (the default family) keeps dense');
  assert.equal(loadConfig(undefined, ['model.family=gaussian']).grpo.advantageMode, 'dense');
  assert.equal(loadConfig(undefined, ['model.family=flow']).grpo.advantageMode, 'scalar');
  assert.equal(loadConfig(undefined, ['model.family=flow', 'grpo.advantageMode=dense']).grpo.advantageMode, 'dense', 'an override wins');
  // an override inside the grpo section creates it from the schema's defaults; the mode is still unset by the user
  assert.equal(loadConfig(undefined, ['model.family=flow', 'grpo.beta=0.04']).grpo.advantageMode, 'scalar');
  assert.equal(loadConfig(undefined, ['grpo.beta=0.04', 'model.family=flow']).grpo.beta, 0.04);
  assert.equal(loadConfig(undefined, ['model.family=flow', 'grpo={"advantageMode":"dense","steps":2}']).grpo.advantageMode, 'dense', 'a section-valued override that holds the mode sets it');
  assert.equal(loadConfig(undefined, ['model.family=flow', 'grpo={"steps":2}']).grpo.advantageMode, 'scalar');
  // from a file: the family in the file, the mode unset, set in the file, or set by an override over the file
  assert.equal(parseConfig({ model: { family: 'flow' } }).grpo.advantageMode, 'scalar');
  assert.equal(parseConfig({ model: { family: 'flow' }, grpo: { advantageMode: 'dense' } }).grpo.advantageMode, 'dense', 'the file wins');
  assert.equal(parseConfig({ model: { family: 'flow' }, grpo: { steps: 3 } }).grpo.advantageMode, 'scalar', 'a grpo section without the mode still gets the family default');
  assert.equal(parseConfig({ model: { family: 'flow' }, grpo: { steps: 3 } }).grpo.steps, 3);
  assert.equal(parseConfig({ grpo: { advantageMode: 'scalar' } }, { overrides: ['model.family=flow', 'grpo.advantageMode=dense'] }).grpo.advantageMode, 'dense');
  // a program's defaults (the demo's) lie under the file; the family default fills only what all of them leave unset
  assert.equal(parseConfig({}, { defaults: ['model.family=flow'] }).grpo.advantageMode, 'scalar');
  assert.equal(parseConfig({}, { defaults: ['grpo.steps=3'], overrides: ['model.family=flow'] }).grpo.advantageMode, 'scalar');
  assert.equal(parseConfig({}, { defaults: ['grpo.advantageMode=dense'], overrides: ['model.family=flow'] }).grpo.advantageMode, 'dense');
  // the validated configuration holds the value, so the hash tells an explicit dense flow run from the default one
  assert.notEqual(configHash(loadConfig(undefined, ['model.family=flow'])), configHash(loadConfig(undefined, ['model.family=flow', 'grpo.advantageMode=dense'])));
  assert.equal(configHash(loadConfig(undefined, ['model.family=flow'])), configHash(loadConfig(undefined, ['model.family=flow', 'grpo.advantageMode=scalar'])));
  // with the scalar default, the flow family accepts what only dense refuses (GDPO's normalize-then-sum)
  assert.equal(loadConfig(undefined, ['model.family=flow', 'grpo.multiRewardMode=normalize-then-sum']).grpo.multiRewardMode, 'normalize-then-sum');
});
