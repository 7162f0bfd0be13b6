// Every CLI command turns bad input into one line on stderr (prefixed by the command) and exit status 1 (a role,
// such as the orchestrator: CONFIG_EXIT_CODE, so no supervisor restarts it as it is): no help text, no stack trace
// (issue #16: `score` on an unreadable image printed the help and a stack).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, inParallel } from '../helpers/cli.ts';
import { CONFIG_EXIT_CODE } from '../../lib/config/setup-error.ts';

test('bad input to a command: one line on stderr, exit status 1 (a role: CONFIG_EXIT_CODE)', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-errors-'));
  const broken = join(dir, 'broken.png');
  writeFileSync(broken, 'not an image');
  const cases: Array<{ args: string[]; line: RegExp; status?: number }> = [
    { args: ['score', '--reference', broken, '--candidate', broken], line: /^score: .*broken\.png: cannot read image/ },
    { args: ['score', '--reference', broken], line: /^score: give either --reference and --candidate, or --pairs$/ },
    { args: ['score', '--pairs', join(dir, 'missing.jsonl')], line: /^score: .*missing\.jsonl: cannot read/ },
    { args: ['orchestrator', '--set', '__proto__.x=1', '--nats', 'nats://127.0.0.1:1'], line: /^orchestrator: config error: __proto__\.x: "__proto__" is not a configuration key/, status: CONFIG_EXIT_CODE },
    { args: ['orchestrator', '--await-workers', 'rollout=two', '--nats', 'nats://127.0.0.1:1'], line: /^orchestrator: --await-workers: "rollout=two" is not ROLE=COUNT/, status: CONFIG_EXIT_CODE },
    { args: ['rollout-worker', '--threads', '-1'], line: /^rollout-worker: --threads must be an integer >= 0/, status: CONFIG_EXIT_CODE },
    { args: ['score', '--set', 'data.size=100000', '--reference', broken, '--candidate', broken], line: /^score: config error: data\.size: must be <= 1024 \(got 100000\)/ },
    { args: ['no-such-command'], line: /Unknown argument: no-such-command/ },
  ];
  // The processes are independent: one per core at a time, so their start-ups overlap (one after another,
  // the test was six start-ups in a row).
  const run = (args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
    const child = execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 }, (_err, stdout, stderr) => done({ status: child.exitCode, stdout, stderr }));
  });
  const results = await inParallel(cases.map((c) => () => run(c.args)), availableParallelism());
  for (const [i, c] of cases.entries()) {
    const r = results[i]!;
    const what = `recovery-grpo ${c.args.join(' ')}`;
    assert.equal(r.status, c.status ?? 1, `${what}: status ${r.status}\n${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${what}: one line, got\n${r.stderr}`);
    assert.match(lines[0]!, c.line, what);
    assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at |Options:/, `${what}: no stack trace, no help`);
  }
});
