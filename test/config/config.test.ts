import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError, configFieldPaths, configSchema, DEFAULT_REWARD_EXPRESSION, listSections, loadConfig, parseConfig,
  renderConfigReference,
} from '../../lib/config/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'config-test-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(name: string, text: string): string {
  const p = join(dir, `${n++}-${name}`);
  writeFileSync(p, text);
  return p;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return e;
  }
  assert.fail('expected a ConfigError');
}

test('defaults validate and carry the design values', () => {
  const c = loadConfig();
  assert.deepEqual(c.run, { id: 'local', seed: 0, outDir: 'runs/local' });
  assert.deepEqual(c.data, {
    source: { kind: 'photos', count: 256 }, size: 32, evalImages: 64, valImages: 0, augment: false, evalFraction: 0.125,
    corruptions: { types: 'all', levels: [0.23, 0.45, 0.9] },
  });
  assert.deepEqual(c.model, { arch: 'resnet', family: 'gaussian', width: 16, depth: 4, logStd: Math.log(0.01), learnLogStd: false });
  assert.deepEqual(c.reward, { expression: DEFAULT_REWARD_EXPRESSION, weights: { ssim: 1.0, clip: 0.2 }, alpha: 5 });
  assert.equal(c.grpo.groupSize, 8);
  assert.equal(c.grpo.clipLow, 1e-4);
  assert.equal(c.grpo.beta, 0.004);
  assert.equal(c.grpo.advantageClip, 5);
  assert.equal(c.grpo.advantageMode, 'dense');
  assert.equal(c.grpo.multiRewardMode, 'sum');
  assert.equal(c.grpo.maxStaleness, 0);
  assert.equal(c.grpo.quarantineAfter, 3);
  assert.deepEqual(c.optim, { lr: 1e-4, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-4, maxGradNorm: 1.0, excludeFromWeightDecay: [] });
  assert.deepEqual(c.sft, { steps: 400, batchSize: 32, lr: 3e-4, schedule: 'cosine', ema: 0, loss: 'l1' });
  assert.equal(c.orchestrator.listen, '127.0.0.1:50051');
  assert.equal(c.nats.url, 'nats://127.0.0.1:4222');
  // An empty file, an empty JSON object and explicit empty sections give the same.
  assert.deepEqual(loadConfig(file('empty.yaml', '')), c);
  assert.deepEqual(loadConfig(file('empty.json', '{}')), c);
  assert.deepEqual(loadConfig(file('sections.yaml', 'run: {}\ngrpo: {}\ndata: { source: {} }\n')), c);
});

test('YAML and JSON files both load, to the same configuration', () => {
  const yaml = file('run.yaml', `# an ablation
run:
  id: clip-05
  seed: 3
grpo:
  groupSize: 16
  clipHigh: 2.8e-4
optim:
  betas: [0.9, 0.99]
reward:
  weights: { ssim: 1.0, clip: 0.5 }
data:
  corruptions:
    types: [gaussian_noise, motion_blur]
    weights: { gaussian_noise: 2 }
`);
  const json = file('run.json', JSON.stringify({
    run: { id: 'clip-05', seed: 3 }, grpo: { groupSize: 16, clipHigh: 2.8e-4 }, optim: { betas: [0.9, 0.99] },
    reward: { weights: { ssim: 1.0, clip: 0.5 } },
    data: { corruptions: { types: ['gaussian_noise', 'motion_blur'], weights: { gaussian_noise: 2 } } },
  }));
  const a = loadConfig(yaml);
  assert.deepEqual(loadConfig(json), a);
  assert.equal(a.grpo.groupSize, 16);
  assert.equal(a.grpo.clipHigh, 2.8e-4);
  assert.equal(a.grpo.clipLow, 1e-4);
  assert.deepEqual(a.optim.betas, [0.9, 0.99]);
  assert.deepEqual(a.data.corruptions.types, ['gaussian_noise', 'motion_blur']);
  assert.equal(a.run.id, 'clip-05');
});

test('a bad value names the field, the problem, the value and the file', () => {
  const p = file('run.yaml', 'grpo:\n  clipLow: -1\n');
  const e = configError(() => loadConfig(p));
  assert.equal(e.message, `config error: grpo.clipLow: must be > 0 (got -1) in ${p}`);
  assert.deepEqual(e.issues.map((i) => i.path), ['grpo.clipLow']);
  const cases: [string, RegExp][] = [
    ['model: { arch: transformer }', /^config error: model\.arch: must be one of "resnet", "unet" \(got "transformer"\) in /],
    ['grpo: { groupSize: 2.5 }', /^config error: grpo\.groupSize: expected integer in \[2, 1024\] \(got 2\.5\)/],
    ['grpo: { groupSize: 1 }', /^config error: grpo\.groupSize: must be >= 2 \(got 1\)/],
    ['grpo: { quarantineAfter: -1 }', /^config error: grpo\.quarantineAfter: must be >= 0 \(got -1\)/],
    ['grpo: { quarantineAfter: 1.5 }', /^config error: grpo\.quarantineAfter: expected integer/],
    ['grpo: { stdNormalize: "yes" }', /^config error: grpo\.stdNormalize: expected boolean \(got "yes"\)/],
    ['optim: { betas: [0.9] }', /^config error: optim\.betas: must have at least 2 items/],
    ['optim: { betas: [0.9, 1.0] }', /^config error: optim\.betas\.1: must be < 1 \(got 1\)/],
    ['data: { evalFraction: 1 }', /^config error: data\.evalFraction: must be < 1 \(got 1\)/],
    ['data: { corruptions: { types: 5 } }', /^config error: data\.corruptions\.types: expected 'all' \| string\[\] \(got 5\)/],
    ['data: { corruptions: { levels: [] } }', /^config error: data\.corruptions\.levels: must have at least 1 item /],
    ['data: { source: { kind: folder } }', /^config error: data\.source\.path: is required when kind is 'folder'/],
    ['data: { corruptions: { types: [jpeg_compression], weights: { gaussian_noise: 1 } } }', /data\.corruptions\.weights\.gaussian_noise: 'gaussian_noise' is not one of data\.corruptions\.types/],
    ['orchestrator: { leaseSeconds: 5, heartbeatSeconds: 10 }', /^config error: orchestrator\.heartbeatSeconds: must be < leaseSeconds \(5\) \(got 10\)/],
    ['orchestrator: { listen: "50051" }', /^config error: orchestrator\.listen: must be host:port \(got "50051"\)/],
    ['nats: { url: "http://x" }', /^config error: nats\.url: must be a nats:\/\//],
    ['run: { id: "" }', /^config error: run\.id: must be 1 to 64 letters/],
    ['optim: { excludeFromWeightDecay: ["(" ] }', /^config error: optim\.excludeFromWeightDecay\.0: must be a valid regular expression/],
    ['reward: { expression: "weights.ssim * ssim + weights.pix * ssim" }', /reward\.expression: uses weights\.pix, which reward\.weights does not define/],
    ['reward: { weights: { ssim: 1, clip: 0.2, extra: 3 } }', /reward\.weights\.extra: is not used by reward\.expression/],
    // weights that can never train (review24b): all zero, negative without the flag, large enough to overflow
    ['reward: { weights: { ssim: 0, clip: 0 } }', /^config error: reward\.weights: with reward\.weights\.clip=0, reward\.weights\.ssim=0, reward\.expression is the constant 0 at every sampled point of clip_cos and ssim in \[-1, 1\] \(the range's grid, the expression's numbers and their midpoints\): every group's rewards would be equal/],
    ['reward: { expression: "2 + 0 * ssim", weights: {} }', /^config error: reward\.expression: is the constant 2 at every sampled point of ssim in \[-1, 1\]/],
    ['reward: { expression: "ssim > 0.6 ? 0.5 : 0.5", weights: {} }', /^config error: reward\.expression: is the constant 0\.5 at every sampled point of ssim/],
    ['reward: { weights: { ssim: -1, clip: 0.2 } }', /^config error: reward\.weights\.ssim: is negative \(-1\): .*worse restorations.*reward\.allowNegativeWeights=true/],
    ['reward: { weights: { ssim: 1e308, clip: 0.2 } }', /^config error: reward\.weights\.ssim: must be <= 1000000 \(got 1e\+308\)/],
    ['reward: { weights: { ssim: 1, clip: -1e7 } }', /^config error: reward\.weights\.clip: must be >= -1000000 \(got -10000000\)/],
  ];
  for (const [yaml, re] of cases) assert.match(configError(() => loadConfig(file('bad.yaml', yaml))).message, re, yaml);
});

test('reward.allowNegativeWeights admits a negative weight (an ablation that trains toward what it weighs less)', () => {
  const c = parseConfig({ reward: { weights: { ssim: -1, clip: 0.2 }, allowNegativeWeights: true } });
  assert.deepEqual(c.reward.weights, { ssim: -1, clip: 0.2 });
  assert.match(configError(() => parseConfig({ reward: { weights: { ssim: -1, clip: 0.2 }, allowNegativeWeights: false } })).message, /reward\.weights\.ssim: is negative/);
  // the flag does not admit weights that cannot train
  assert.match(configError(() => parseConfig({ reward: { weights: { ssim: -0, clip: 0 }, allowNegativeWeights: true } })).message, /reward\.expression is the constant 0/);
});

test('reward.expression: a band narrower than the constant check\'s fixed grid is accepted (review24f)', () => {
  for (const expression of ['ssim > 0.6 ? (ssim < 0.7 ? 1 : 0) : 0', 'abs(ssim - 0.8) < 0.05 ? 1 : 0', 'ssim > 0.55 ? (clip_cos > 0.25 ? (clip_cos < 0.3 ? 1 : 0) : 0) : 0']) {
    assert.equal(parseConfig({ reward: { expression, weights: {} }, grpo: { advantageMode: 'scalar' } }).reward.expression, expression);
  }
});

test('several problems are all reported, one line each', () => {
  const e = configError(() => parseConfig({ grpo: { clipLow: 0, groupSize: 0 }, model: { width: -1 } }, { source: 'inline' }));
  assert.deepEqual(e.issues.map((i) => i.path).sort(), ['grpo.clipLow', 'grpo.groupSize', 'model.width']);
  assert.equal(e.message.split('\n').length, 3);
  assert.ok(e.message.split('\n').every((l) => l.startsWith('config error: ') && l.endsWith(' in inline')));
});

test('unknown keys are refused, at any depth, naming the key and the known ones', () => {
  let e = configError(() => loadConfig(file('typo.yaml', 'grpo:\n  groupsize: 8\n')));
  assert.match(e.message, /^config error: grpo\.groupsize: unknown key \(known: groupSize, samplesPerBatch, .*\) in /);
  e = configError(() => loadConfig(file('section.yaml', 'training: {}\n')));
  assert.match(e.message, /^config error: training: unknown key \(known: run, data, model, reward, grpo, sft, optim, orchestrator, nats, metrics, eval, flow\)/);
  e = configError(() => loadConfig(file('deep.json', '{"data": {"source": {"kind": "procedural", "dir": "x"}}}')));
  assert.match(e.message, /^config error: data\.source\.dir: unknown key/);
});

test('dotted-key overrides: numbers, booleans, arrays, items, records, strings', () => {
  const c = loadConfig(undefined, {
    'reward.weights.clip': '0.5',
    'grpo.stdNormalize': 'false',
    'optim.betas': '[0.8,0.9]',
    'data.corruptions.levels': '[0.5, 1]',
    'data.corruptions.types': '["gaussian_noise","lens_blur"]',
    'run.id': '123',
    'model.arch': 'unet',
    'grpo.multiRewardMode': 'normalize-then-sum',
    'grpo.advantageMode': 'scalar', // GDPO does not combine with dense advantages (refused at load)
  });
  assert.deepEqual(c.reward.weights, { ssim: 1.0, clip: 0.5 });
  assert.equal(c.grpo.stdNormalize, false);
  assert.deepEqual(c.optim.betas, [0.8, 0.9]);
  assert.deepEqual(c.data.corruptions.levels, [0.5, 1]);
  assert.deepEqual(c.data.corruptions.types, ['gaussian_noise', 'lens_blur']);
  assert.equal(c.run.id, '123');
  assert.equal(c.model.arch, 'unet');
  assert.equal(c.grpo.multiRewardMode, 'normalize-then-sum');
  // key=value list form; one item of a default list; overrides win over the file, the rest of the file stays.
  const p = file('base.yaml', 'grpo: { groupSize: 16, clipLow: 2e-4 }\nreward: { weights: { ssim: 0.9, clip: 0.1 } }\n');
  const d = loadConfig(p, ['grpo.groupSize=4', 'optim.betas.1=0.95', 'reward.weights.clip=0', 'reward.clipModel=models/clip.onnx', 'run.id="quoted"']);
  assert.equal(d.grpo.groupSize, 4);
  assert.equal(d.grpo.clipLow, 2e-4);
  assert.deepEqual(d.optim.betas, [0.9, 0.95]);
  assert.deepEqual(d.reward.weights, { ssim: 0.9, clip: 0 });
  assert.equal(d.reward.clipModel, 'models/clip.onnx');
  assert.equal(d.run.id, 'quoted');
  // a list or map as a YAML run file writes it (a flow collection, names unquoted), as docs/config.md's examples do
  const y = loadConfig(undefined, ['data.corruptions.types=[scan_lines, gaussian_noise]', 'data.corruptions.weights={scan_lines: 4}']);
  assert.deepEqual(y.data.corruptions.types, ['scan_lines', 'gaussian_noise']);
  assert.deepEqual(y.data.corruptions.weights, { scan_lines: 4 });
  // neither JSON nor YAML: refused naming the override
  assert.match(configError(() => loadConfig(undefined, ['data.corruptions.types=[scan_lines'])).message, /data\.corruptions\.types: .* in override data\.corruptions\.types=\[scan_lines$/);
});

test('a bad override is reported as coming from the override', () => {
  let e = configError(() => loadConfig(file('ok.yaml', 'run: { seed: 1 }\n'), ['grpo.clipLow=-1']));
  assert.equal(e.message, 'config error: grpo.clipLow: must be > 0 (got -1) in override grpo.clipLow=-1');
  e = configError(() => loadConfig(undefined, ['reward.weights.cilp=0.5']));
  assert.match(e.message, /^config error: reward\.weights\.cilp: is not used by reward\.expression .* in override reward\.weights\.cilp=0\.5$/);
  e = configError(() => loadConfig(undefined, ['grpo.groupsize=4']));
  assert.match(e.message, /^config error: grpo\.groupsize: unknown key .* in override grpo\.groupsize=4$/);
  e = configError(() => loadConfig(undefined, ['grpo.groupSize=eight']));
  assert.match(e.message, /grpo\.groupSize: expected integer in \[2, 1024\] \(got "eight"\) in override/);
  e = configError(() => loadConfig(undefined, ['data.source.kind=folder']));
  assert.equal(e.message, "config error: data.source.path: is required when kind is 'folder' in defaults with override data.source.kind=folder");
  assert.match(configError(() => loadConfig(undefined, ['novalue'])).message, /override "novalue" must look like key\.path=value/);
  assert.match(configError(() => loadConfig(undefined, ['run.id.x=1'])).message, /run\.id is "local", not an object/);
  // prototype keys are refused, and nothing leaks onto Object.prototype
  for (const key of ['__proto__.x', 'run.__proto__.polluted', 'constructor.prototype.x']) {
    assert.match(configError(() => loadConfig(undefined, [`${key}=1`])).message, /is not a configuration key \(prototype keys are refused\) in override/, key);
  }
  assert.equal(({} as Record<string, unknown>).x, undefined);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('run.id is refused at load unless the transport accepts it (one pattern, shared)', async () => {
  const { checkRunId } = await import('../../lib/transport/run-id.ts');
  for (const id of ['a.b', 'x'.repeat(65), '-lead', 'sp ace', '']) {
    assert.match(configError(() => loadConfig(undefined, [`run.id=${id}`])).message, /run\.id: must be 1 to 64 letters, digits, "_" or "-"/, id);
    assert.throws(() => checkRunId(id), /must be 1 to 64/, id);
  }
  for (const id of ['a', 'A-b_9', 'x'.repeat(64)]) {
    assert.equal(loadConfig(undefined, [`run.id=${id}`]).run.id, id);
    assert.equal(checkRunId(id), id);
  }
});

test('reward.encoder onnx without reward.clipModel, or another encoder with one, is refused at load', () => {
  assert.equal(configError(() => loadConfig(undefined, ['reward.encoder=onnx'])).message,
    'config error: reward.clipModel: is required when reward.encoder is onnx (the path of the ONNX vision tower) in defaults with override reward.encoder=onnx');
  assert.match(configError(() => loadConfig(undefined, ['reward.encoder=mobilenet-v2', 'reward.clipModel=c.onnx'])).message,
    /reward\.clipModel: conflicts with reward\.encoder mobilenet-v2/);
  assert.equal(loadConfig(undefined, ['reward.clipModel=c.onnx']).reward.clipModel, 'c.onnx');
  assert.equal(loadConfig(undefined, ['reward.encoder=onnx', 'reward.clipModel=c.onnx']).reward.encoder, 'onnx');
});

test('sizes and counts have upper bounds: data.size=100000 and the like are refused at load', () => {
  const cases: Array<[string, RegExp]> = [
    ['data.size=100000', /data\.size: must be <= 1024 \(got 100000\)/],
    ['grpo.groupSize=100000', /grpo\.groupSize: must be <= 1024 \(got 100000\)/],
    ['grpo.samplesPerBatch=1000000', /grpo\.samplesPerBatch: .*4096/],
    ['grpo.steps=1e12', /grpo\.steps: .*10000000/],
    ['model.width=100000', /model\.width: .*1024/],
    ['data.source.count=1e9', /data\.source\.count: .*10000000/],
    ['orchestrator.maxInFlightPerWorker=100000', /orchestrator\.maxInFlightPerWorker: .*1024/],
    ['orchestrator.maxTaskSeconds=10', /orchestrator\.maxTaskSeconds: must be >= leaseSeconds \(60\) \(got 10\)/],
  ];
  for (const [o, pattern] of cases) assert.match(configError(() => loadConfig(undefined, [o])).message, pattern, o);
});

test('unreadable and unparsable files name the file', () => {
  assert.match(configError(() => loadConfig(join(dir, 'missing.yaml'))).message, /missing\.yaml/);
  assert.match(configError(() => loadConfig(file('bad.json', '{"run": '))).message, /invalid JSON.* in .*bad\.json$/);
  // the yaml parser's first line ends with ':' before its excerpt; the message reads on into " in FILE" without it
  assert.match(configError(() => loadConfig(file('bad.yaml', 'run: [\n'))).message, /invalid YAML: .* at line 2, column 1 in \S*bad\.yaml$/);
  assert.match(configError(() => loadConfig(file('dup.yaml', 'run: {}\nrun: {}\n'))).message, /invalid YAML.*[Dd]uplicate|invalid YAML.*unique/);
  // JSON too (JSON.parse kept the last): the key and its line named
  assert.equal(configError(() => loadConfig(file('dup.json', '{"run": {"seed": 1},\n "grpo": {"beta": 0.1, "beta": 0.2}}'))).message.replace(/ in .*$/, ''),
    'config error: invalid JSON: duplicate key "beta" at line 2');
  assert.equal(loadConfig(file('ok.json', '{"run": {"seed": 1}, "grpo": {"beta": 0.1}}')).grpo.beta, 0.1);
  // YAML's .nan and .inf are named as such, not as JSON's null
  assert.match(configError(() => loadConfig(file('nan.yaml', 'grpo: { beta: .nan }\n'))).message, /grpo\.beta: .*\(got NaN\)/);
  assert.match(configError(() => loadConfig(file('inf.yaml', 'grpo: { clipLow: .inf }\n'))).message, /grpo\.clipLow: .*\(got Infinity\)/);
  assert.match(configError(() => loadConfig(file('list.yaml', '- 1\n- 2\n'))).message, /must be a mapping of sections/);
});

test('the reference lists every field, with its type, default and description', () => {
  // Leaf fields derived independently: walk the validated defaults (records count as leaves), plus the
  // optional fields, which have no default.
  const leaves: string[] = [];
  const walk = (o: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(o)) {
      const p = prefix ? `${prefix}.${k}` : k;
      if (v && typeof v === 'object' && !Array.isArray(v) && p !== 'reward.weights') walk(v as Record<string, unknown>, p);
      else leaves.push(p);
    }
  };
  walk(loadConfig() as unknown as Record<string, unknown>, '');
  leaves.push('data.source.path', 'data.evalSize', 'data.corruptions.weights', 'reward.clipModel', 'reward.encoder', 'reward.device', 'reward.allowNegativeWeights');
  // the optional sections of an imported network (issue #14)
  leaves.push(...['onnx', 'weights', 'image', 'frozen', 'time', 'condition'].map((k) => `model.network.${k}`), ...['kind', 'rank', 'alpha', 'targets', 'trainBiases'].map((k) => `model.adapter.${k}`));
  assert.deepEqual([...configFieldPaths()].sort(), leaves.sort());
  const ref = renderConfigReference();
  for (const path of leaves) assert.match(ref, new RegExp(`^\\| \`${path.replace(/\./g, '\\.')}\` \\| [^|]`, 'm'), path);
  for (const s of listSections(configSchema)) {
    for (const f of s.fields) assert.ok(f.description && f.description.length > 10, `${f.path} needs a description`);
    assert.ok(s.description, `section ${s.path} needs a description`);
  }
  assert.match(ref, /\| `grpo\.clipLow` \| number in \(0, 1\) \| `0\.0001` \| /);
  assert.match(ref, /\| `reward\.weights` \| record<string, number in \[-1000000, 1000000\]> \| `\{ ssim: 1, clip: 0\.2 \}` \| /);
});
