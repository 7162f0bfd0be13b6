// `recovery-grpo sweep --pool`: one method-comparison report over the kept per-seed results of several runs with
// the same settings. The records are round 28's (docs/results/method-compare-warm28/compare.json.gz, seeds 25-29,
// written by five processes, one seed each, and reported by a sixth): split into two folders as seed-<k>.json files
// with that run's settings, pooled, they give round 28's report again. Settings that differ are refused, naming the
// setting; a seed twice must hold one result.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { poolComparisons, seedList, settingsDifference } from '../../lib/experiments/compare.ts';
import { cli } from '../helpers/cli.ts';

const STORED = new URL('../../docs/results/method-compare-warm28/compare.json.gz', import.meta.url);
interface Stored { seeds: Array<{ seed: number }>; summary: unknown; finals: unknown; paired_against_reference: unknown; paired_crossed_against_reference: unknown }
const stored = JSON.parse(gunzipSync(readFileSync(STORED)).toString('utf8')) as Stored;
/** Round 28's settings string, as lib/experiments/compare.ts wrote it into each seed-<k>.json (command.txt's command). */
const settings = (change: Record<string, unknown> = {}) => JSON.stringify({
  methods: ['dense', 'sft'], budget: 60, budgetClock: 'cpu', sftSteps: 1600, from: null, shared: false, samples: null, configFile: null,
  overrides: ['sft.loss=psnr', 'grpo.beta=0.05', 'grpo.ema=0.999', 'grpo.emaWarmup=true', 'eval.everyVersions=100'], familyOverrides: {}, ...change,
});
const seedOf = (k: number) => stored.seeds.find((s) => s.seed === k)!;
const writeSeeds = (dir: string, seeds: number[], s = settings()) => {
  mkdirSync(dir, { recursive: true });
  for (const k of seeds) writeFileSync(join(dir, `seed-${k}.json`), JSON.stringify({ settings: s, result: seedOf(k) }));
};
const close = (a: number, b: number) => Math.abs(a - b) < 1e-12;

test('seed lists as ranges; settings differences named by their option', () => {
  assert.equal(seedList([29, 25, 26, 27, 3, 5, 4, 10]), '3-5, 10, 25-27, 29');
  assert.equal(seedList([]), '');
  assert.equal(settingsDifference(settings(), settings(), 'a', 'b'), null);
  assert.equal(settingsDifference(settings(), settings({ budget: 90 }), 'a', 'b'), '--budget: 60 in a, 90 in b');
  // Files from before the CPU clock have no budgetClock: wall.
  const { budgetClock: _, ...wall } = JSON.parse(settings()) as Record<string, unknown>;
  assert.equal(settingsDifference(settings(), JSON.stringify(wall), 'a', 'b'), '--budget-clock: "cpu" in a, "wall" in b');
  assert.equal(settingsDifference(settings({ budgetClock: 'wall' }), JSON.stringify(wall), 'a', 'b'), null);
  assert.equal(
    settingsDifference(settings(), settings({ overrides: ['sft.loss=psnr', 'grpo.beta=0.1', 'grpo.ema=0.999', 'grpo.emaWarmup=true', 'eval.everyVersions=100'] }), 'a', 'b'),
    '--set: grpo.beta=0.05 in a only, grpo.beta=0.1 in b only',
  );
  assert.match(settingsDifference(settings(), settings({ methods: ['sft', 'dense'] }), 'a', 'b')!, /^--methods: \["dense","sft"\] in a, \["sft","dense"\] in b$/);
});

test('pooling two folders of round 28\'s seeds gives round 28\'s report; not-run-yet names only seeds asked for', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pool-'));
  try {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    writeSeeds(a, [25, 26, 27]);
    writeSeeds(b, [28, 29]);
    const out = join(dir, 'pooled');
    const lines: string[] = [];
    const r = await poolComparisons({ inputs: [a, b], out, log: (l) => lines.push(l) });
    assert.deepEqual(r.seeds.map((s) => s.seed), [25, 26, 27, 28, 29]);
    const j = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    // The statistics are round 28's own report's (computed there by the run over the same five seeds).
    assert.deepEqual(j.summary, stored.summary);
    assert.deepEqual(j.finals, stored.finals);
    assert.deepEqual(j.paired_against_reference, stored.paired_against_reference);
    assert.deepEqual(j.paired_crossed_against_reference, stored.paired_crossed_against_reference);
    assert.ok(close(j.paired_crossed_against_reference.sft.reward.ci.mean, 3.440373132810084e-5));
    assert.deepEqual(j.sft_steps, { gaussian: 1600 });
    assert.equal(j.budget_clock, 'cpu');
    assert.deepEqual(j.settings, JSON.parse(settings()));
    assert.equal(j.pooled_from['25'], a);
    assert.equal(j.pooled_from['29'], b);
    assert.equal(j.not_run_yet, undefined);
    const md = readFileSync(join(out, 'compare.md'), 'utf8');
    assert.match(md, /^# Method comparison at equal CPU-time compute/);
    assert.match(md, /dense GRPO, continued SFT; 5 seed\(s\) \(25-29\); 60 s of training \(process CPU time, all threads\) per method and seed, from a 1600-step SFT warm start per seed;/);
    assert.doesNotMatch(md, /not run yet/, 'round 28\'s report said "seeds 0-24 not run yet"');
    assert.ok(md.includes(`Pooled (\`sweep --pool\`, the same settings) from: ${a} (seeds 25-27); ${b} (seeds 28-29).`), md);
    assert.ok(lines.some((l) => l.includes('5 seed(s) (25-29) from 2 input(s)')), lines.join('\n'));

    // Seeds asked for: 25..30, so 30 is named not run yet; seeds outside are left out; per-seed files as inputs.
    const out2 = join(dir, 'asked');
    lines.length = 0;
    const r2 = await poolComparisons({ inputs: [join(a, 'seed-25.json'), join(a, 'seed-26.json'), b], out: out2, seeds: 31, firstSeed: 26, log: (l) => lines.push(l) });
    assert.deepEqual(r2.seeds.map((s) => s.seed), [26, 28, 29]);
    assert.ok(lines.some((l) => l === '[pool] seeds outside 26..30 left out: 25'), lines.join('\n'));
    const j2 = JSON.parse(readFileSync(join(out2, 'compare.json'), 'utf8'));
    assert.deepEqual(j2.not_run_yet, [27, 30]);
    assert.match(readFileSync(join(out2, 'compare.md'), 'utf8'), /; 3 seed\(s\) \(26, 28-29\); seeds 27, 30 asked for and not run yet; /);

    // A seed given twice with the same result counts once; with another result it is refused.
    const r3 = await poolComparisons({ inputs: [a, join(a, 'seed-25.json'), b], out: join(dir, 'twice') });
    assert.equal(r3.seeds.length, 5);
    const c = join(dir, 'c');
    mkdirSync(c);
    writeFileSync(join(c, 'seed-25.json'), JSON.stringify({ settings: settings(), result: { ...seedOf(26), seed: 25 } }));
    await assert.rejects(poolComparisons({ inputs: [a, c], out: join(dir, 'x') }), new RegExp(`seed 25 is in both ${a}/seed-25.json and ${c}/seed-25.json, with different results`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pooling refuses other settings (naming the setting and both files), empty folders and files that are not seed results', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pool-bad-'));
  try {
    const a = join(dir, 'a');
    writeSeeds(a, [25, 26]);
    const beta = join(dir, 'beta');
    writeSeeds(beta, [27], settings({ overrides: ['sft.loss=psnr', 'grpo.beta=0.1', 'grpo.ema=0.999', 'grpo.emaWarmup=true', 'eval.everyVersions=100'] }));
    await assert.rejects(poolComparisons({ inputs: [a, beta], out: join(dir, 'x') }),
      new RegExp(`pool: ${beta}/seed-27.json was run with other settings than ${a}/seed-25.json: --set: grpo.beta=0.05 in ${a}/seed-25.json only, grpo.beta=0.1 in ${beta}/seed-27.json only`));
    const budget = join(dir, 'budget');
    writeSeeds(budget, [28], settings({ budget: 90 }));
    await assert.rejects(poolComparisons({ inputs: [a, budget], out: join(dir, 'x') }), /--budget: 60 in .*seed-25\.json, 90 in .*seed-28\.json/);
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    await assert.rejects(poolComparisons({ inputs: [a, empty], out: join(dir, 'x') }), new RegExp(`'${empty}' holds no seed-<k>.json`));
    await assert.rejects(poolComparisons({ inputs: [join(dir, 'nowhere')], out: join(dir, 'x') }), /'.*nowhere' does not exist/);
    const notSeed = join(dir, 'compare.json');
    writeFileSync(notSeed, JSON.stringify({ seeds: [] }));
    await assert.rejects(poolComparisons({ inputs: [notSeed], out: join(dir, 'x') }), /compare\.json' is not a per-seed result of sweep --methods/);
    await assert.rejects(poolComparisons({ inputs: [a], out: join(dir, 'x'), firstSeed: 25 }), /--first-seed needs --seeds/);
    await assert.rejects(poolComparisons({ inputs: [a], out: join(dir, 'x'), seeds: 40, firstSeed: 30 }), /no seed of 30\.\.39/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sweep --pool through the command line; --pool with --methods is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pool-cli-'));
  try {
    writeSeeds(join(dir, 'a'), [25, 26]);
    writeSeeds(join(dir, 'b'), [29]);
    const out = join(dir, 'p');
    const { stdout } = await cli('sweep', '--pool', join(dir, 'a'), join(dir, 'b'), '--seeds', '30', '--first-seed', '25', '--out', out);
    assert.match(stdout, /\[pool\] asked for and not found: 27-28/);
    assert.match(stdout, /\[sweep\] pooled 3 seed\(s\): .*compare\.md/);
    assert.match(readFileSync(join(out, 'compare.md'), 'utf8'), /3 seed\(s\) \(25-26, 29\); seeds 27-28 asked for and not run yet;/);
    await assert.rejects(cli('sweep', '--pool', join(dir, 'a'), '--methods', 'dense,sft', '--out', out), /--pool only reads kept seed results: it does not combine with --methods/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
