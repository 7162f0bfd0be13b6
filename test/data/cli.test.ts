import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import corruptCommand from '../../cli/commands/corrupt.ts';
import datasetCommand from '../../cli/commands/dataset.ts';
import { CORRUPTION_TYPES } from '../../lib/data/corruptions.ts';
import { decodeImage } from '../../lib/data/image.ts';
import { scene, tempDir, writeFixture } from './helpers.ts';

const run = promisify(execFile);
const main = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));

/** Runs the real entry point in a child process (one end-to-end check; about a second). */
async function spawnCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', main, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** Runs our command modules in this process through yargs, capturing console output and the exit code. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  const before = process.exitCode;
  process.exitCode = 0;
  console.log = (...a: unknown[]) => { out.push(a.join(' ')); };
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  try {
    await yargs(args).command(corruptCommand).command(datasetCommand).strict().exitProcess(false)
      .fail((msg, e) => { throw e ?? new Error(msg); }).parseAsync();
  } catch (e) {
    err.push((e as Error).message);
    process.exitCode = 1;
  } finally {
    console.log = log;
    console.error = error;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

test('corrupt --list prints the types and families as JSON (through the real entry point)', async () => {
  const r = await spawnCli('corrupt', '--list');
  assert.equal(r.code, 0);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.types, [...CORRUPTION_TYPES]);
  assert.deepEqual(Object.keys(j.families), ['capture', 'transmission', 'environment', 'post_processing']);
  assert.deepEqual(j.levels, { low: 0.23, mid: 0.45, high: 0.9 });
});

test('corrupt writes a seeded corrupted image; bad type and level are clear errors', async (t) => {
  const dir = tempDir(t);
  const input = await writeFixture(dir, 'in.png', scene(2, 40, 30));
  const a = join(dir, 'a.png'), b = join(dir, 'b.png');
  for (const out of [a, b]) {
    const r = await cli('corrupt', '--input', input, '--type', 'gaussian_noise', '--level', 'high', '--seed', '7', '--out', out);
    assert.equal(r.code, 0, r.stderr);
  }
  assert.deepEqual(readFileSync(a), readFileSync(b));
  const img = await decodeImage(a);
  assert.equal(img.width, 40);
  assert.equal(img.height, 30);
  const bad = await cli('corrupt', '--input', input, '--type', 'fog', '--out', a);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /unknown corruption type 'fog'; valid types: lens_blur, .*watermark_damage/);
  const range = await cli('corrupt', '--input', input, '--type', 'graffiti', '--level', '1.2', '--out', a);
  assert.notEqual(range.code, 0);
  assert.match(range.stderr, /intensity must be in \[0, 1\], got 1.2/);
});

test('dataset preview writes a grid of clean and corrupted examples', async (t) => {
  const dir = tempDir(t);
  const cfg = join(dir, 'run.yaml');
  writeFileSync(cfg, 'data:\n  size: 16\n  source: {kind: procedural, count: 8}\n  corruptions: {types: [graffiti, gaussian_noise]}\n');
  const out = join(dir, 'grid.png');
  const r = await cli('dataset', 'preview', '--config', cfg, '--out', out, '--cell', '32');
  assert.equal(r.code, 0, r.stderr);
  const img = await decodeImage(out);
  // 2 rows (types) of 32 px cells with 4 px gaps under a header; 4 columns (clean + 3 levels).
  assert.equal(img.height, 18 + 2 * 36 + 4);
  assert.ok(img.width > 4 * 36);
});
