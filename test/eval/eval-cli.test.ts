// `recovery-grpo eval` through the real CLI on a tiny run: a few SFT steps (the reference), a few GRPO steps (the
// checkpoint, which records extra.ref_version), config.json beside them, as a local run leaves them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import { loadConfig } from '../../lib/config/index.ts';
import { configHash } from '../../lib/checkpoint/digest.ts';
import { cloneTensorMap } from '../../lib/checkpoint/tensors.ts';
import { saveCheckpoint } from '../../lib/checkpoint/index.ts';
import { runSingleProcess } from '../../lib/local/single-process.ts';
import { initialParamsOf } from '../../lib/models/bundle.ts';
import { runEvalCommand } from '../../lib/eval/eval-run.ts';
import { cli } from '../helpers/cli.ts';


export const TINY = ['data.source.kind=procedural', 'data.size=16', 'data.source.count=64', 'model.width=4', 'model.depth=1', 'sft.batchSize=4', 'grpo.groupSize=4', 'grpo.samplesPerBatch=2', 'eval.samples=8'];

/** A tiny trained run in `dir`: config.json, reference.safetensors (SFT, v3) and final.safetensors (v5, ref_version 3). */
export async function tinyRun(dir: string): Promise<void> {
  const config = loadConfig(undefined, [...TINY, 'run.id=evaltest', 'sft.steps=3', 'grpo.steps=2']);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const r = await runSingleProcess(config);
  const meta = (version: number, extra: Record<string, string> = {}) => ({ runId: 'evaltest', version, step: version, lastBatchId: null, configHash: configHash(config), extra });
  await saveCheckpoint(join(dir, 'reference.safetensors'), { meta: meta(3), params: cloneTensorMap(r.sftParams) });
  await saveCheckpoint(join(dir, 'final.safetensors'), { meta: meta(5, { ref_version: '3' }), params: r.params });
}

const KEYS = ['reward', 'ssim', 'clip_cos', 'psnr'];

function checkReport(r: Record<string, unknown>, what: string): void {
  for (const k of KEYS) assert.ok(Number.isFinite(r[k]), `${what}.${k} is a number`);
  for (const by of ['byType', 'byLevel']) {
    const groups = r[by] as Record<string, Record<string, number>>;
    assert.ok(Object.keys(groups).length > 0, `${what}.${by} has groups`);
    for (const [g, s] of Object.entries(groups)) for (const k of KEYS) assert.ok(Number.isFinite(s[k]), `${what}.${by}.${g}.${k}`);
  }
}

test('eval: finds config and reference beside the checkpoint; writes eval.json (policy, reference, identity, policy_sampled), eval.md, report.html', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'eval-cli-'));
  try {
    await tinyRun(dir);
    const out = join(dir, 'report');
    const { stdout } = await cli('eval', '--checkpoint', join(dir, 'final.safetensors'), '--out', out, '--samples', '6');
    assert.match(stdout, /wrote .*eval\.json/);
    const j = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
    for (const k of ['policy', 'reference', 'identity', 'policy_sampled']) checkReport(j[k], k);
    assert.equal(j.sources.reference.version, 3);
    assert.equal(j.sources.reference.found, 'beside the checkpoint');
    assert.equal(j.sources.samples, 6);
    assert.match(j.sources.config, /config\.json \(beside the checkpoint\)/);
    // eval.draws every-type (the default): each of the 6 images once per corruption type of the mix (16).
    assert.equal(j.sources.draws_mode, 'every-type');
    assert.equal(j.sources.draws, 96);
    assert.equal(j.policy.count, 96);
    for (const row of Object.values(j.policy.byType) as Array<{ count: number }>) assert.equal(row.count, 6);
    assert.equal(j.policy.perSample.reward.length, 96);
    const md = readFileSync(join(out, 'eval.md'), 'utf8');
    assert.match(md, /\| policy \| reward \| SSIM \| embedding cos \| PSNR \(dB\) \|/);
    assert.match(md, /## reward by corruption type/);
    assert.match(md, /\| gaussian_noise \| 6 \| 6 \| .* \[[-+]\d\.\d{4}, [-+]\d\.\d{4}\] \|/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'no external assets');
    assert.ok((html.match(/<svg /g) ?? []).length >= 6, 'bar charts inline');
    assert.ok((html.match(/<rect class="bar"/g) ?? []).length > 0, 'bars drawn');
    const png = /src="data:image\/png;base64,([^"]+)"/.exec(html);
    assert.ok(png, 'grid embedded as PNG');
    const meta = await sharp(Buffer.from(png[1], 'base64')).metadata();
    assert.ok(meta.width! > 16 * 4 && meta.height! > 16, `grid ${meta.width}x${meta.height}`);
    assert.ok(existsSync(join(out, 'grid.png')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('eval: --data folder of clean images, explicit --config and --reference; a mismatched policy is refused by name', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'eval-cli-'));
  try {
    await tinyRun(dir);
    const imgs = join(dir, 'clean');
    mkdirSync(imgs);
    for (let i = 0; i < 3; i++) {
      const raw = Buffer.alloc(24 * 24 * 3, (i * 70 + 20) & 255);
      for (let p = 0; p < raw.length; p += 7) raw[p] = 255 - raw[p];
      await sharp(raw, { raw: { width: 24, height: 24, channels: 3 } }).png().toFile(join(imgs, `img${i}.png`));
    }
    const out = join(dir, 'r2');
    // One draw per image: folder images are evaluated whole at 128 px, and every type would cost 16 times as much here.
    await cli('eval', '--checkpoint', join(dir, 'final.safetensors'), '--config', join(dir, 'config.json'), '--reference', join(dir, 'reference.safetensors'), '--data', imgs, '--out', out, '--set', 'eval.draws=one');
    const j = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
    assert.equal(j.sources.samples, 3);
    assert.equal(j.sources.draws, 3);
    assert.match(j.sources.data, /clean images of/);
    assert.equal(j.sources.reference.found, 'given');
    checkReport(j.reference, 'reference');
    // The defaults describe a bigger policy than the checkpoint: refused, saying what to do.
    const bad = await cli('eval', '--checkpoint', join(dir, 'final.safetensors'), '--config', '/dev/null', '--out', join(dir, 'r3')).then(
      () => null,
      (e: { stderr: string }) => e,
    );
    assert.ok(bad, 'refused');
    assert.match(bad.stderr, /does not fit the policy of this configuration.*--config/);
    // --device: where the reward graph runs, the caller's (default cpu), never the run config's. A config.json written
    // before round 18 (reward.device cpu) still loads; a device this machine lacks ends in the device's error.
    const old = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { reward: Record<string, unknown> };
    old.reward.device = 'cpu';
    writeFileSync(join(dir, 'old-config.json'), JSON.stringify(old));
    const onCuda = await cli('eval', '--checkpoint', join(dir, 'final.safetensors'), '--config', join(dir, 'old-config.json'), '--device', 'cuda', '--samples', '2', '--out', join(dir, 'r4')).then(
      () => null,
      (e: { stderr: string }) => e,
    );
    if (onCuda) assert.match(onCuda.stderr, /^eval: device cuda: onnxruntime could not create the session on its cuda execution provider/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('eval: a flow-family checkpoint is evaluated with its own parameter shapes (before round 32 it was checked against the Gaussian policy\'s and refused)', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'eval-flow-'));
  try {
    const config = loadConfig(undefined, [
      'data.source.kind=procedural', 'data.size=12', 'data.evalSize=12', 'data.source.count=16', 'model.family=flow', 'model.arch=resnet', 'model.width=4', 'model.depth=1',
      'flow.steps=4', 'flow.evalSteps=2', 'flow.timeFrequencies=2', 'flow.timeWidth=4', 'eval.samples=2', 'eval.draws=one', 'run.id=evalflow',
    ]);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    await saveCheckpoint(join(dir, 'flow.safetensors'), { meta: { runId: 'evalflow', version: 0, step: 0, lastBatchId: null, configHash: configHash(config) }, params: initialParamsOf(config) });
    const { json } = await runEvalCommand({ checkpoint: join(dir, 'flow.safetensors'), out: join(dir, 'out'), log: () => undefined });
    assert.equal(json.sources.samples, 2);
    for (const k of KEYS) assert.ok(Number.isFinite(json.policy[k as 'reward']), `policy.${k} is a number`);
    assert.equal(json.reference, null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
