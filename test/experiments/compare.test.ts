// `recovery-grpo sweep --methods`: the four training methods from the same warm start at equal wall-clock
// compute, on a tiny config through the real CLI; the report's numbers follow from its per-seed rows; bad
// method lists and a sweep axis are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import { compareMethods, parseFamilyOverrides, parseFrom, parseMethods, relativeUpdate, separated } from '../../lib/experiments/compare.ts';
import { loadCheckpoint } from '../../lib/checkpoint/index.ts';
import { startClock } from '../../lib/local/single-process.ts';
import { meanCI } from '../../lib/eval/stats.ts';
import { cli } from '../helpers/cli.ts';


const TINY_YAML = `
data: { size: 16, source: { count: 64 } }
model: { width: 4, depth: 1 }
sft: { steps: 4, batchSize: 4 }
grpo: { groupSize: 4, samplesPerBatch: 2 }
# one corruption draw per photograph: this test is about training, not eval.draws (every-type: test/eval/eval-cli.test.ts)
eval: { samples: 6, draws: one }
`;
/** Seconds of training per run: a step takes milliseconds, so this is still many steps (1.5 s cost the file ~12 s more). */
const BUDGET = 0.5;

test('method lists: known names, at least one, none repeated; disjoint intervals', () => {
  assert.deepEqual(parseMethods('dense, sft'), ['dense', 'sft']);
  assert.throws(() => parseMethods('dense,ppo'), /unknown 'ppo' \(choose among dense, scalar, sft, backprop, optionally prefixed by a family/);
  assert.deepEqual(parseMethods('dense'), ['dense']); // one arm, against its warm start (round 30)
  assert.throws(() => parseMethods(' , '), /at least one method/);
  assert.throws(() => parseMethods('sft,sft'), /repeated/);
  // Arms of a family: family:method; backprop is the Gaussian family's only.
  assert.deepEqual(parseMethods('flow:scalar,gaussian:dense,sft'), ['flow:scalar', 'gaussian:dense', 'sft']);
  assert.throws(() => parseMethods('mlp:dense,sft'), /unknown family 'mlp' in 'mlp:dense'/);
  assert.throws(() => parseMethods('flow:backprop,sft'), /'flow:backprop': direct reward backprop is defined for the Gaussian family only/);
  assert.throws(() => parseMethods('flow:dense,flow:dense'), /repeated/);
  assert.equal(parseFrom('ckpt/a.safetensors'), 'ckpt/a.safetensors');
  assert.deepEqual(parseFrom('flow=f.safetensors,gaussian=g.safetensors'), { flow: 'f.safetensors', gaussian: 'g.safetensors' });
  assert.throws(() => parseFrom('flow=f.safetensors,mlp=m.safetensors'), /'mlp=m.safetensors' is not FAMILY=PATH/);
  assert.throws(() => parseFrom('flow=a,flow=b'), /family 'flow' given twice/);
  assert.deepEqual(parseFamilyOverrides(['flow:sft.lr=2e-3', 'flow:grpo.beta=0', 'gaussian:sft.steps=9']), { flow: ['sft.lr=2e-3', 'grpo.beta=0'], gaussian: ['sft.steps=9'] });
  assert.throws(() => parseFamilyOverrides(['sft.lr=2e-3']), /'sft.lr=2e-3' is not FAMILY:key=value/);
  assert.equal(separated(meanCI([1, 1.1, 0.9]), meanCI([0, 0.1, -0.1])), true);
  assert.equal(separated(meanCI([1, 2, 0]), meanCI([0, 0.1, -0.1])), false);
});

test('a first seed outside [0, seeds) is refused before any work, naming it', async () => {
  const base = { methods: ['dense', 'sft'], seeds: 3, budgetSeconds: 1, out: '/nonexistent/never-written' };
  await assert.rejects(compareMethods({ ...base, firstSeed: 3 }), /the first seed must be an integer in \[0, seeds = 3\), got 3/);
  await assert.rejects(compareMethods({ ...base, firstSeed: -1 }), /got -1/);
});

test('budget clocks: CPU time advances with work and not while the process sleeps; an unknown clock is refused', async () => {
  const cpu = startClock('cpu');
  const wall = startClock('wall');
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(wall() >= 290, `wall ${wall()} ms`);
  assert.ok(cpu() < 150, `sleeping for 300 ms cost ${cpu()} ms of CPU`);
  let x = 0;
  const spin = startClock('cpu');
  while (spin() < 50) x += Math.sqrt(x + 1);
  assert.ok(x > 0 && spin() >= 50);
  assert.throws(() => startClock('gpu' as never), /'gpu' is neither 'wall' nor 'cpu'/);
});

test('sweep --methods: dense, scalar, continued SFT and direct backprop from one warm start per seed, at equal budget', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'compare-'));
  try {
    const cfg = join(dir, 'tiny.yaml');
    writeFileSync(cfg, TINY_YAML);
    const out = join(dir, 'out');
    const { stdout } = await cli('sweep', '--config', cfg, '--methods', 'dense,scalar,sft,backprop', '--seeds', '2', '--budget', String(BUDGET), '--out', out);
    assert.match(stdout, /compared dense, scalar, sft, backprop over 2 seed\(s\)/);
    const r = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    assert.deepEqual(r.methods, ['dense', 'scalar', 'sft', 'backprop']);
    assert.deepEqual(r.sft_steps, { gaussian: 4 });
    assert.equal(r.reference, 'dense');
    assert.equal(r.seeds.length, 2);
    for (const s of r.seeds) {
      assert.deepEqual(s.runs.map((x: { method: string }) => x.method), r.methods);
      for (const x of s.runs) {
        assert.ok(x.steps >= 1 && Number.isInteger(x.steps));
        // Each trains until its clock reaches the budget: the last step crosses it. A step here takes
        // milliseconds, the first one (graph start-up) up to a few seconds on a slow machine.
        assert.ok(x.seconds >= BUDGET && x.seconds < BUDGET + 10, `${x.method}: ${x.seconds} s for a ${BUDGET} s budget`);
        assert.equal(x.family, 'gaussian');
        for (const k of ['reward', 'ssim', 'clip_cos', 'psnr']) assert.ok(Math.abs(x.gain[k] - (x.final[k] - s.start.gaussian[k])) < 1e-9, `${x.method} ${k} gain`);
        // The trained weights are kept beside the report, and the update's size is theirs against the warm start's.
        assert.equal(x.weights, `arm-${x.method}-seed${s.seed}.safetensors`);
        const trained = (await loadCheckpoint(join(out, x.weights))).params;
        const warm = (await loadCheckpoint(join(out, `warm-gaussian-seed${s.seed}-sft4.safetensors`))).params;
        assert.ok(Math.abs(x.update - relativeUpdate(warm, trained)) < 1e-12 * x.update, `${x.method}: update ${x.update}`); // sums in the file's order
        assert.ok(x.update > 0, `${x.method} seed ${s.seed} moved the weights`);
      }
    }
    // The same trained weights give the same evaluation: what the report says of an arm is what its file holds.
    const arm = r.seeds[1].runs.find((x: { method: string }) => x.method === 'scalar');
    await cli('eval', '--config', cfg, '--set', 'run.seed=1', '--checkpoint', join(out, arm.weights), '--out', join(dir, 'eval-again'));
    const again = JSON.parse(readFileSync(join(dir, 'eval-again', 'eval.json'), 'utf8'));
    assert.ok(Math.abs(again.policy.reward - arm.final.reward) < 1e-9, `eval ${again.policy.reward}, sweep ${arm.final.reward}`);
    // The summary and the paired differences follow from the rows.
    const gains = (m: string) => r.seeds.map((s: { runs: Array<{ method: string; gain: Record<string, number> }> }) => s.runs.find((x) => x.method === m)!.gain.reward);
    assert.ok(Math.abs(r.summary.sft.reward.mean - (gains('sft')[0] + gains('sft')[1]) / 2) < 1e-12);
    // One warm start per seed: the paired difference of final values is the difference of gains.
    const diff = gains('dense').map((g: number, i: number) => g - gains('backprop')[i]);
    assert.ok(Math.abs(r.paired_against_reference.backprop.reward.mean - (diff[0] + diff[1]) / 2) < 1e-12);
    const md = readFileSync(join(out, 'compare.md'), 'utf8');
    for (const label of ['dense GRPO', 'scalar GRPO', 'continued SFT', 'direct reward backprop']) assert.match(md, new RegExp(`\\| ${label} \\|`));
    assert.match(md, /\| dense GRPO minus \| reward \(t over seeds\) \| SSIM \(t over seeds\) \| reward, seeds x photographs \(df\) \| SSIM, seeds x photographs \(df\) \| reward intervals disjoint \|/);
    // Beside the t over seeds, the crossed seeds x photographs interval from the kept per-draw scores: the same
    // mean (every photograph holds as many draws in every seed), its own interval and df.
    const crossed = r.paired_crossed_against_reference.backprop.reward;
    assert.equal(crossed.kind, 'crossed');
    assert.equal(crossed.runs, 2);
    assert.ok(Math.abs(crossed.ci.mean - r.paired_against_reference.backprop.reward.mean) < 1e-9, `crossed mean ${crossed.ci.mean}`);
    assert.ok(crossed.df >= 1 && crossed.ci.hi > crossed.ci.lo);
    assert.match(md, new RegExp(`\\| direct reward backprop \\| [^|]+ \\| [^|]+ \\| [+-][0-9.]+ \\[[+-][0-9.]+, [+-][0-9.]+\\] \\(${crossed.df}\\) \\|`));
    assert.match(md, /\| identity \(the corrupted input\) \| /);
    // The grid: six rows of corrupted | warm start | four methods | clean.
    const meta = await sharp(join(out, 'grid.png')).metadata();
    assert.ok(meta.width! > meta.height!, `grid ${meta.width}x${meta.height}`);

    // Run again with one more seed: the two seeds done are reused, only the third trains.
    const more = await cli('sweep', '--config', cfg, '--methods', 'dense,scalar,sft,backprop', '--seeds', '3', '--budget', String(BUDGET), '--out', out);
    assert.equal(more.stdout.match(/done before with the same settings, reusing/g)?.length, 2);
    const r3 = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    assert.deepEqual(r3.seeds.slice(0, 2), r.seeds);
    assert.equal(r3.seeds.length, 3);
    // A process that runs only the last seed (--first-seed) reports every seed on file (those below its first
    // seed included and listed), and its training minutes come from the kept results (not "0 minutes" for a run
    // that reused them all). Seeds below --first-seed were not asked for: a missing one is not "not run yet"
    // (round 28's report over --first-seed 25 --seeds 30 said "seeds 0-24 not run yet").
    rmSync(join(out, 'seed-1.json'));
    const last = await cli('sweep', '--config', cfg, '--methods', 'dense,scalar,sft,backprop', '--seeds', '3', '--first-seed', '2', '--budget', String(BUDGET), '--out', out);
    assert.match(last.stdout, /seeds below --first-seed 2 on file with the same settings, included in the report: 0\n/);
    assert.doesNotMatch(last.stdout, /not on file yet|asked for but not/);
    const rl = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    assert.deepEqual(rl.seeds.map((x: { seed: number }) => x.seed), [0, 2]);
    assert.equal(rl.not_run_yet, undefined);
    assert.equal(rl.settings.budget, BUDGET);
    const trained = rl.seeds.flatMap((x: { runs: Array<{ wallSeconds: number }> }) => x.runs).reduce((a: number, x: { wallSeconds: number }) => a + x.wallSeconds, 0) / 60;
    assert.notEqual(trained.toFixed(1), '0.0', 'the kept runs trained for a measurable time (else this check could not fail)');
    const mdl = readFileSync(join(out, 'compare.md'), 'utf8');
    assert.match(mdl, new RegExp(`; 2 seed\\(s\\) \\(0, 2\\); .* ${trained.toFixed(1)} minutes of training`));
    assert.doesNotMatch(mdl, /not run yet/);

    // Per-seed warm starts given with {seed} (here the ones kept above), on a CPU-time budget: each seed
    // starts from its own file, so its warm-start evaluation is that seed's above. One method: one more arm from an
    // earlier sweep's warm starts, reported against them (refused before round 30: "at least two methods").
    const out2 = join(dir, 'out-from');
    await cli('sweep', '--config', cfg, '--methods', 'dense', '--seeds', '2', '--budget', '0.5', '--budget-clock', 'cpu',
      '--from', join(out, 'warm-gaussian-seed{seed}-sft4.safetensors'), '--out', out2);
    const rf = JSON.parse(readFileSync(join(out2, 'compare.json'), 'utf8'));
    assert.equal(rf.budget_clock, 'cpu');
    assert.deepEqual(rf.sft_steps, { gaussian: null });
    assert.deepEqual(rf.methods, ['dense']);
    for (const [i, s] of rf.seeds.entries()) {
      assert.equal(s.start.gaussian.reward, r.seeds[i].start.gaussian.reward, `seed ${i}: its own warm start`);
      assert.deepEqual(s.runs.map((x: { method: string }) => x.method), ['dense']);
      for (const x of s.runs) assert.ok(x.seconds >= 0.5 && x.wallSeconds > 0, `${x.method}: ${x.seconds} CPU s, ${x.wallSeconds} s`);
    }
    assert.notEqual(rf.seeds[0].start.gaussian.reward, rf.seeds[1].start.gaussian.reward);
    const mdf = readFileSync(join(out2, 'compare.md'), 'utf8');
    assert.match(mdf, /equal CPU-time compute/);
    assert.match(mdf, /the given warm-start checkpoint of each seed/);
    assert.match(mdf, /\| warm-start reward \| final reward \| reward gain \|/); // one arm: its gain over its warm start, per seed
    assert.doesNotMatch(mdf, / minus \|/); // and no paired table (nothing to pair it with)
    await assert.rejects(cli('sweep', '--config', cfg, '--methods', 'sft,dense', '--seeds', '3', '--from', join(out, 'warm-gaussian-seed{seed}-sft9.safetensors'), '--out', out2), /seed0-sft9/);

    // Refused before any work; independent processes, so their start-ups overlap.
    await Promise.all([
      assert.rejects(cli('sweep', '--config', cfg, '--methods', 'dense,sft', '--set', 'grpo.beta=0,0.1', '--out', out), /compares methods under one configuration/),
      assert.rejects(cli('sweep', '--config', cfg, '--methods', 'dense,bogus', '--out', out), /unknown 'bogus'/),
      assert.rejects(cli('sweep', '--methods', 'dense,sft', '--k8s', '--out', out), /does not combine with --k8s/),
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sweep --methods with family arms: each family from its own warm start, shared by the seeds and kept for a re-run', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'compare-families-'));
  try {
    const cfg = join(dir, 'tiny.yaml');
    writeFileSync(cfg, TINY_YAML);
    const out = join(dir, 'out');
    const args = ['sweep', '--config', cfg, '--methods', 'flow:scalar,gaussian:dense,flow:sft', '--seeds', '2', '--budget', String(BUDGET), '--shared-warm-start',
      '--set', 'flow.steps=3', '--set', 'flow.evalSteps=2', '--set', 'flow.sde.window.size=1', '--set', 'flow.timeFrequencies=2', '--set', 'flow.timeWidth=4',
      '--set-for', 'flow:sft.steps=3', '--set-for', 'gaussian:sft.steps=2', '--out', out];
    const { stdout } = await cli(...args);
    // One warm start per family, trained once (seed 0) for both seeds.
    assert.equal(stdout.match(/flow warm start \(seed 0\): 3 SFT steps/g)?.length, 1, stdout);
    assert.equal(stdout.match(/gaussian warm start \(seed 0\): 2 SFT steps/g)?.length, 1, stdout);
    const r = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    assert.deepEqual(r.families, ['flow', 'gaussian']);
    assert.deepEqual(r.sft_steps, { flow: 3, gaussian: 2 });
    assert.equal(r.reference, 'flow:scalar');
    for (const s of r.seeds) {
      assert.deepEqual(s.runs.map((x: { method: string; family: string }) => [x.method, x.family]), [['flow:scalar', 'flow'], ['gaussian:dense', 'gaussian'], ['flow:sft', 'flow']]);
      for (const x of s.runs) assert.ok(Math.abs(x.gain.reward - (x.final.reward - s.start[x.family].reward)) < 1e-9);
      // The two families start from different networks: different warm-start evaluations of the same images.
      assert.notEqual(s.start.flow.reward, s.start.gaussian.reward);
      assert.equal(s.start.flow.count, s.identity.count);
    }
    // Shared warm start: one checkpoint per family (seed 0), kept in OUT beside each arm's trained weights.
    assert.deepEqual(readdirSync(out).filter((f) => f.startsWith('warm-') && f.endsWith('.safetensors')).sort(), ['warm-flow-seed0-sft3.safetensors', 'warm-gaussian-seed0-sft2.safetensors']);
    assert.deepEqual(r.seeds[1].runs.map((x: { weights: string }) => x.weights), ['arm-flow-scalar-seed1.safetensors', 'arm-gaussian-dense-seed1.safetensors', 'arm-flow-sft-seed1.safetensors']);
    // Paired differences are of final values, across families too.
    const finals = (m: string) => r.seeds.map((s: { runs: Array<{ method: string; final: Record<string, number> }> }) => s.runs.find((x) => x.method === m)!.final.ssim);
    const d = finals('flow:scalar').map((v: number, i: number) => v - finals('gaussian:dense')[i]);
    assert.ok(Math.abs(r.paired_against_reference['gaussian:dense'].ssim.mean - (d[0] + d[1]) / 2) < 1e-12);
    const md = readFileSync(join(out, 'compare.md'), 'utf8');
    for (const label of ['flow \\+ scalar GRPO', 'gaussian \\+ dense GRPO', 'flow \\+ continued SFT', 'flow warm start', 'gaussian warm start']) assert.match(md, new RegExp(`\\| ${label} \\|`));
    // corrupted | two warm starts | three arms | clean, six rows.
    const meta = await sharp(join(out, 'grid.png')).metadata();
    assert.ok(meta.width! > meta.height!, `grid ${meta.width}x${meta.height}`);

    // A re-run with a third seed trains no warm start again.
    const again = await cli(...args.map((a) => (a === '2' ? '3' : a)));
    assert.doesNotMatch(again.stdout, /warm start \(seed 0\): /);
    assert.equal(again.stdout.match(/done before with the same settings, reusing/g)?.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sweep --methods --from: a checkpoint whose fixed log_std differs from model.logStd is refused before any training, naming both; with --first-seed K only seeds K.. are read (round 29)', async () => {
  const { parseConfig } = await import('../../lib/config/index.ts');
  const { initPolicyParams } = await import('../../lib/models/policy.ts');
  const { policySpecOf } = await import('../../lib/models/bundle.ts');
  const { saveCheckpoint } = await import('../../lib/checkpoint/index.ts');
  const YAML = (await import('yaml')).default;
  const dir = mkdtempSync(join(tmpdir(), 'compare-logstd-'));
  try {
    const cfgFile = join(dir, 'tiny.yaml');
    writeFileSync(cfgFile, TINY_YAML);
    // a warm start written at the default std (log 0.01), as a run of the default config writes it
    const params = initPolicyParams(policySpecOf(parseConfig(YAML.parse(TINY_YAML))), 0);
    const from = join(dir, 'warm.safetensors');
    await saveCheckpoint(from, { meta: { runId: 't', version: 0, step: 0, lastBatchId: null, configHash: 'x' }, params });
    const o = { configFile: cfgFile, methods: ['dense', 'sft'], seeds: 1, budgetSeconds: BUDGET, from, out: join(dir, 'out') };
    // the user asks for another fixed std: before, the checkpoint's silently won
    await assert.rejects(compareMethods({ ...o, overrides: ['model.logStd=-5'] }),
      (e: Error) => /--from .*warm\.safetensors holds log_std -4\.60\d*, but model\.logStd is -5 with model\.learnLogStd false.*Run with --set model\.logStd=-4\.60/.test(e.message) && e.name === 'SetupError');
    assert.deepEqual(readdirSync(dir).sort(), ['tiny.yaml', 'warm.safetensors', 'warm.safetensors.sha256'].sort(), 'nothing trained or written');
    // --from with {seed} and --first-seed 1: only seed 1's file is read (before round 29 seed 0's was asked for, and
    // its absence failed the run: ENOENT), so the refusal named is seed 1's
    await saveCheckpoint(join(dir, 'warm-1.safetensors'), { meta: { runId: 't', version: 0, step: 0, lastBatchId: null, configHash: 'x' }, params });
    await assert.rejects(compareMethods({ ...o, from: join(dir, 'warm-{seed}.safetensors'), seeds: 2, firstSeed: 1, overrides: ['model.logStd=-5'] }),
      (e: Error) => /--from .*warm-1\.safetensors holds log_std/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('relativeUpdate: ||trained - start|| / ||start|| over every parameter, by hand; a missing or resized parameter is named', () => {
  const t = (...v: number[]) => ({ shape: [v.length], data: Float32Array.from(v) });
  const start = new Map([['a', t(3, 0)], ['b', t(4)]]); // ||start|| = 5
  assert.equal(relativeUpdate(start, new Map([['a', t(3, 0)], ['b', t(4)]])), 0);
  assert.equal(relativeUpdate(start, new Map([['a', t(0, 4)], ['b', t(4)]])), 1); // moved by (-3, 4): 5 / 5
  assert.equal(relativeUpdate(start, new Map([['a', t(3, 0)], ['b', t(4.5)], ['extra', t(9)]])), 0.1); // 0.5 / 5; extra ignored
  assert.throws(() => relativeUpdate(start, new Map([['a', t(3, 0)]])), /lack 'b'/);
  assert.throws(() => relativeUpdate(start, new Map([['a', t(3)], ['b', t(4)]])), /'a' or its size differs \(1 against 2\)/);
});
