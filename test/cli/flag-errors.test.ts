// A command's bad flag is refused naming the flag and what is wrong, before any work or output (review24c: `corrupt
// --size -5` blamed the image, `dataset preview --samples abc` said "Input Bit Array is empty", `eval --samples -1`
// "no samples", `rollout-worker --version-wait-ms abc` waited for ever, `corrupt --out x.xyz` wrote a PNG there, and
// `score --no-json` still printed JSON).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, inParallel } from '../helpers/cli.ts';
import { CONFIG_EXIT_CODE } from '../../lib/config/setup-error.ts';
import { imageFormatOf } from '../../lib/data/image-format.ts';
import { writeImage } from '../../lib/data/image.ts';
import { renderScene } from '../../lib/data/procedural.ts';

const dir = mkdtempSync(join(tmpdir(), 'flag-errors-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const run = (args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
  const child = execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, cwd: dir }, (_err, stdout, stderr) => done({ status: child.exitCode, stdout, stderr }));
});

test('imageFormatOf: the extension names the format, any case; another one is refused naming it', async () => {
  assert.deepEqual(['a.png', 'b.JPG', 'c.jpeg', 'd.WebP'].map(imageFormatOf), ['png', 'jpeg', 'jpeg', 'webp']);
  assert.throws(() => imageFormatOf('x.xyz'), /^Error: x\.xyz: the extension "\.xyz" is not an image format written here \(\.png, \.jpg, \.jpeg, \.webp\)$/);
  assert.throws(() => imageFormatOf('dir.d/out'), /no extension names an image format/);
  await assert.rejects(writeImage(renderScene(1, 16), join(dir, 'y.tiff')), /"\.tiff" is not an image format/);
  assert.equal(existsSync(join(dir, 'y.tiff')), false);
});

test('bad flags: one line naming the flag, before any work or output', { timeout: 180_000 }, async () => {
  const image = join(dir, 'in.png');
  await writeImage(renderScene(2, 32), image);
  const corrupt = ['corrupt', '--input', image, '--type', 'gaussian_noise'];
  const cases: Array<{ args: string[]; line: RegExp; status?: number; absent?: string }> = [
    { args: [...corrupt, '--out', 'o.png', '--size', '-5'], line: /^corrupt: --size must be an integer >= 1, got -5$/ },
    { args: [...corrupt, '--out', 'x.xyz'], line: /^corrupt: --out x\.xyz: the extension "\.xyz" is not an image format/, absent: 'x.xyz' },
    { args: ['dataset', 'preview', '--out', 'p.png', '--samples', 'abc'], line: /^dataset: --samples must be an integer >= 1, got NaN$/, absent: 'p.png' },
    { args: ['dataset', 'preview', '--out', 'p.gif'], line: /^dataset: --out p\.gif: the extension "\.gif" is not/, absent: 'p.gif' },
    { args: ['eval', '--checkpoint', 'c.safetensors', '--samples', '-1'], line: /^eval: --samples must be an integer >= 1, got -1$/ },
    { args: ['eval', '--checkpoint', 'c.safetensors', '--samples', 'abc'], line: /^eval: --samples must be an integer >= 1, got NaN$/ },
    { args: ['rollout-worker', '--version-wait-ms', 'abc'], line: /^rollout-worker: --version-wait-ms must be an integer >= 0, got NaN$/, status: CONFIG_EXIT_CODE },
  ];
  const results = await inParallel(cases.map((c) => () => run(c.args)), availableParallelism());
  for (const [i, c] of cases.entries()) {
    const r = results[i]!;
    const what = `recovery-grpo ${c.args.join(' ')}`;
    assert.equal(r.status, c.status ?? 1, `${what}: status ${r.status}\n${r.stderr}`);
    assert.match(r.stderr.trim(), c.line, what);
    if (c.absent) assert.equal(existsSync(join(dir, c.absent)), false, `${what} wrote ${c.absent}`);
  }
});

test('npm run deploy-check: a misspelt or bad flag is refused in one line before anything starts (it was ignored)', { timeout: 120_000 }, async () => {
  const script = join(import.meta.dirname, '../../scripts/deploy/check.ts');
  const check = (args: string[]) => new Promise<{ status: number | null; stderr: string }>((done) => {
    const child = execFile(process.execPath, ['--import', 'tsx', script, ...args], { encoding: 'utf8', timeout: 60_000, cwd: join(import.meta.dirname, '../..') }, (_err, _stdout, stderr) => done({ status: child.exitCode, stderr }));
  });
  const [misspelt, timeout] = await Promise.all([check(['--keeep']), check(['--timeout-s', 'abc'])]);
  assert.equal(misspelt.status, 2, misspelt.stderr);
  assert.equal(misspelt.stderr.trim(), "deploy-check: Unknown option '--keeep'");
  assert.equal(timeout.status, 2, timeout.stderr);
  assert.equal(timeout.stderr.trim(), 'deploy-check: --timeout-s must be a number of seconds > 0, got abc');
});

test('score --no-json prints a line of text per pair, --json (the default) a JSON line', { timeout: 120_000 }, async () => {
  const a = join(dir, 'a.png');
  await writeImage(renderScene(3, 32), a);
  const [text, json] = await Promise.all([run(['score', '--reference', a, '--candidate', a, '--no-json']), run(['score', '--reference', a, '--candidate', a])]);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout.trim(), /^\S+a\.png against \S+a\.png: reward \d\.\d{4} \(ssim 1\.0000, clip_cos \d\.\d{4}; encoder .+\)$/);
  assert.equal(json.status, 0, json.stderr);
  assert.equal((JSON.parse(json.stdout.trim()) as { ssim: number }).ssim, 1);
});
