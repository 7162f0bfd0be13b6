// `recovery-grpo demo --config FILE`: the demo's settings (lib/local/demo-defaults.ts) apply only where the file
// leaves a field unset; --set, --steps and --sft-steps win over the file (review24c M8: they used to be passed as
// overrides, which beat the file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoRunOptions, type DemoArgs } from '../../cli/commands/demo.ts';
import { localRunConfig } from '../../lib/local/local-run.ts';
import { DEMO_GRPO_STEPS, DEMO_SFT_STEPS } from '../../lib/local/demo-defaults.ts';
import { BIN, inParallel } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'demo-config-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const args = (extra: Partial<DemoArgs>): DemoArgs => ({ seed: 0, out: join(dir, 'out'), rolloutWorkers: 1, rewardWorkers: 1, ...extra });

test('demo --config FILE: the file beats the demo settings, --set and the step flags beat the file', () => {
  const file = join(dir, 'run.yaml');
  writeFileSync(file, [
    'eval: { everyVersions: 7 }',
    'grpo: { beta: 0.01, ema: 0.5, emaWarmup: false, steps: 12 }',
    'sft: { loss: l2, steps: 34 }',
  ].join('\n'));
  const c = localRunConfig(demoRunOptions(args({ config: file })));
  assert.deepEqual(
    [c.eval.everyVersions, c.grpo.beta, c.grpo.ema, c.grpo.emaWarmup, c.sft.loss, c.grpo.steps, c.sft.steps],
    [7, 0.01, 0.5, false, 'l2', 12, 34],
  );
  const set = localRunConfig(demoRunOptions(args({ config: file, set: ['grpo.beta=0.2', 'sft.loss=l1'], steps: 3, sftSteps: 4 })));
  assert.deepEqual([set.grpo.beta, set.sft.loss, set.grpo.steps, set.sft.steps, set.grpo.ema], [0.2, 'l1', 3, 4, 0.5]);
});

test('demo without --config, or with a file silent on them, gets the demo settings', () => {
  const partial = join(dir, 'partial.yaml');
  writeFileSync(partial, 'grpo: { groupSize: 4 }\n');
  for (const config of [undefined, partial]) {
    const c = localRunConfig(demoRunOptions(args(config ? { config } : {})));
    assert.deepEqual(
      [c.eval.everyVersions, c.grpo.beta, c.grpo.ema, c.grpo.emaWarmup, c.sft.loss, c.grpo.steps, c.sft.steps],
      [100, 0.05, 0.999, true, 'psnr', DEMO_GRPO_STEPS, DEMO_SFT_STEPS],
      String(config),
    );
  }
  assert.equal(localRunConfig(demoRunOptions(args({ config: partial }))).grpo.groupSize, 4);
});

test('demo: bad worker counts, an empty --out or a refused setting are refused before anything is written', { timeout: 300_000 }, async () => {
  const cases: Array<{ args: string[]; line: RegExp }> = [
    { args: ['--rollout-workers', '0'], line: /^demo: --rollout-workers must be an integer >= 1, got 0$/ },
    { args: ['--rollout-workers', '-1'], line: /^demo: --rollout-workers must be an integer >= 1, got -1$/ },
    { args: ['--reward-workers', '1.5'], line: /^demo: --reward-workers must be an integer >= 1, got 1\.5$/ },
    // round 35 (review35 F8): named as the flags the user typed; they reached the schema as "override grpo.steps=NaN"
    { args: ['--steps', '-1'], line: /^demo: --steps must be an integer >= 0, got -1$/ },
    { args: ['--steps', 'abc'], line: /^demo: --steps must be an integer >= 0, got NaN$/ },
    { args: ['--sft-steps', '-5'], line: /^demo: --sft-steps must be an integer >= 0, got -5$/ },
    { args: ['--seed', '1.5'], line: /^demo: --seed must be an integer >= 0, got 1\.5$/ },
    // round 25: the crash-loop limits (lib/local/supervisor.ts)
    { args: ['--crash-loop-exits', '0'], line: /^demo: --crash-loop-exits must be an integer >= 1, got 0$/ },
    { args: ['--crash-loop-exits', '2.5'], line: /^demo: --crash-loop-exits must be an integer >= 1, got 2\.5$/ },
    { args: ['--crash-loop-seconds', '0'], line: /^demo: --crash-loop-seconds must be a number > 0, got 0$/ },
    { args: ['--crash-loop-seconds', 'abc'], line: /^demo: --crash-loop-seconds must be a number > 0, got NaN$/ },
    // round 26 (review26b): a training folder that does not exist (README's `--set data.source.path=DIR`); it used to
    // start the run, replace config.json and the credentials in --out, and crash-loop the orchestrator 5 times
    { args: ['--set', 'data.source.kind=folder', '--set', `data.source.path=${join(dir, 'no-photos')}`], line: /^demo: data\.source \(folder\): \S*no-photos: dataset folder does not exist$/ },
  ];
  const run = (args: string[]) => new Promise<{ status: number | null; stderr: string }>((done) => {
    const child = execFile(process.execPath, [BIN, 'demo', ...args], { encoding: 'utf8', timeout: 60_000, cwd: dir }, (_err, _stdout, stderr) => done({ status: child.exitCode, stderr }));
  });
  const results = await inParallel(cases.map((c, i) => () => run([...c.args, '--out', join(dir, `refused-${i}`)])), availableParallelism());
  for (const [i, c] of cases.entries()) {
    const r = results[i]!;
    assert.equal(r.status, 1, `demo ${c.args.join(' ')}: status ${r.status}\n${r.stderr}`);
    assert.match(r.stderr.trim(), c.line);
    assert.equal(existsSync(join(dir, `refused-${i}`)), false, `demo ${c.args.join(' ')} left its --out folder`);
  }
  // an earlier run's folder keeps its files when the next run is refused for its data
  const earlier = join(dir, 'earlier-run');
  mkdirSync(earlier);
  writeFileSync(join(earlier, 'config.json'), '{"earlier":true}');
  const refused = await run(['--set', 'data.source.kind=folder', '--set', `data.source.path=${join(dir, 'no-photos')}`, '--out', earlier]);
  assert.equal(refused.status, 1, refused.stderr);
  assert.deepEqual(readdirSync(earlier), ['config.json']);
  assert.equal(readFileSync(join(earlier, 'config.json'), 'utf8'), '{"earlier":true}');
  const empty = await run(['--out', '']);
  assert.equal(empty.status, 1);
  assert.match(empty.stderr.trim(), /^demo: --out must name a folder for the run \(got ""\)$/);
});

// Round 25 (fix25): the local run's crash-loop limits were fixed (5 exits within 30 s); the demo's flags set them.
test('demo --crash-loop-exits / --crash-loop-seconds reach the local run, which refuses limits it cannot use before writing anything', async () => {
  assert.deepEqual(demoRunOptions(args({ crashLoopExits: 2, crashLoopSeconds: 5 })).crashLoop, { exits: 2, withinMs: 5000 });
  assert.deepEqual(demoRunOptions(args({ crashLoopSeconds: 60 })).crashLoop, { withinMs: 60_000 });
  assert.equal(demoRunOptions(args({})).crashLoop, undefined, 'the defaults (DEFAULT_CRASH_LOOP) unless a flag is given');
  const { runLocal } = await import('../../lib/local/local-run.ts');
  const out = join(dir, 'crash-loop-refused');
  await assert.rejects(runLocal({ out, crashLoop: { exits: 0 } }), /^Error: crashLoop\.exits must be an integer >= 1 .*got 0$/);
  await assert.rejects(runLocal({ out, crashLoop: { withinMs: Number.NaN } }), /^Error: crashLoop\.withinMs must be a number > 0 .*got NaN$/);
  assert.equal(existsSync(out), false, 'the refused run made its output folder');
});
