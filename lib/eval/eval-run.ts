// `recovery-grpo eval`: one checkpoint on held-out images (the eval split, or a folder of clean images corrupted
// with the configured mix and seed), its mean and sampled actions beside identity and the reference (SFT)
// checkpoint, written as eval.json, eval.md, report.html and grid.png.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { loadConfig, type RunConfig } from '../config/index.ts';
import type { Device } from '../graph/device.ts';
import { configHash } from '../checkpoint/digest.ts';
import { CheckpointError, loadCheckpoint, type DecodedCheckpoint } from '../checkpoint/index.ts';
import { dataConfigFrom, openDataset, type Sample } from '../data/dataset.ts';
import { DIGEST_PATTERN } from '../transport/nats.ts';
import { encodePng } from '../data/image.ts';
import { checkNetworkOf, paramShapesOf } from '../models/bundle.ts';
import { configEvalSamples, evalSamples, evaluate, gridIndices, imageCount, outputImage, type EvalResult, type Policy } from './evaluate.ts';
import { renderGrid } from './grid.ts';
import { writeEvalReport, type EvalJson, type EvalSources } from './report.ts';

export interface EvalCommandOptions {
  checkpoint: string;
  /** Run configuration file; default: config.json beside the checkpoint (a local run writes one), else the defaults. */
  config?: string;
  set?: string[];
  /** Reference (SFT) checkpoint; default: the checkpoint's extra.ref_version, looked up among the .safetensors beside it. */
  reference?: string;
  /** A folder of clean images instead of the eval split. */
  data?: string;
  out: string;
  /** Images to evaluate (default eval.samples). */
  samples?: number;
  /** Where the reward graph runs (the CLI's --device; default cpu): this machine's, not the run's (docs/gpu.md). */
  device?: Device;
  /** Rows in the image grid (default 8). */
  gridRows?: number;
  log?: (line: string) => void;
}

/** The config to evaluate with, and a sentence saying where it came from. */
function resolveConfig(o: EvalCommandOptions): { config: RunConfig; source: string } {
  if (o.config) return { config: loadConfig(o.config, o.set), source: o.config };
  const beside = join(dirname(resolve(o.checkpoint)), 'config.json');
  if (existsSync(beside)) return { config: loadConfig(beside, o.set), source: `${beside} (beside the checkpoint)` };
  return { config: loadConfig(undefined, o.set), source: 'the defaults (no --config, no config.json beside the checkpoint)' };
}

async function loadPolicyCheckpoint(path: string, config: RunConfig, what: string): Promise<DecodedCheckpoint> {
  try {
    return await loadCheckpoint(path, { expectedShapes: paramShapesOf(config) });
  } catch (e) {
    if (e instanceof CheckpointError && /shape|missing|unexpected|parameter/i.test(e.message)) {
      throw new Error(`${what} ${path} does not fit the policy of this configuration (model.*): ${e.message}; pass the run's --config`);
    }
    throw e;
  }
}

/**
 * The checkpoint of `runId` at `version` among the .safetensors files of `dir` (hit, or null). With `digest` (hex
 * sha256, what the evaluated checkpoint records as extra.ref_digest) only a file of those bytes is it: another
 * file of the same run and version (a run started again under the same id) is listed in `mismatched`, not used.
 */
export async function findCheckpointBeside(
  dir: string, runId: string, version: number, config: RunConfig, except: string, digest?: string,
): Promise<{ hit: { path: string; ckpt: DecodedCheckpoint } | null; mismatched: string[] }> {
  const mismatched: string[] = [];
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.safetensors')).sort();
  } catch {
    return { hit: null, mismatched };
  }
  for (const n of names) {
    const path = join(dir, n);
    if (resolve(path) === resolve(except)) continue;
    let ck: DecodedCheckpoint;
    try {
      ck = await loadCheckpoint(path, { expectedShapes: paramShapesOf(config) });
    } catch {
      continue; // not a checkpoint of this policy
    }
    if (ck.meta.runId !== runId || ck.meta.version !== version) continue;
    if (digest === undefined || ck.digest === digest.toLowerCase()) return { hit: { path, ckpt: ck }, mismatched };
    mismatched.push(path);
  }
  return { hit: null, mismatched };
}

async function openSamples(config: RunConfig, data: string | undefined, count: number): Promise<{ samples: Sample[]; label: string }> {
  const draws = config.eval.draws;
  if (!data) return { samples: await configEvalSamples(config, { count }), label: `the eval split (${config.data.source.kind === 'photos' ? `at least ${config.data.evalImages} whole photographs` : `evalFraction ${config.data.evalFraction}`}, ${config.data.source.kind} source)` };
  if (!existsSync(data)) throw new Error(`--data ${data}: no such folder`);
  // Every image of the folder is evaluated whole, shorter side evalSize (as the photo set's eval split).
  const d = dataConfigFrom({ ...config.data, evalSize: config.data.evalSize ?? 128, source: { kind: 'folder', path: resolve(data) } }, config.run.seed);
  const ds = await openDataset(d.dataset, { split: 'eval', evalFraction: 1, mix: d.corruptions, seed: d.seed });
  return { samples: await evalSamples(ds, count, draws), label: `clean images of ${data}, corrupted with the configured mix (seed ${config.run.seed})` };
}

/**
 * The grid corrupted | reference | policy | clean for `rows` images (gridIndices: distinct images, cycling through
 * their draws; evaluate with `keep: gridIndices(samples, rows)` so their recoveries are kept), as PNG bytes.
 */
export async function evalGridPng(config: RunConfig, ev: EvalResult, columns: string[], rows: number): Promise<Uint8Array> {
  const img = (name: string, i: number) => outputImage(ev, name, i);
  const gridRows = gridIndices(ev.samples, rows).map((i) => {
    const s = ev.samples[i]!;
    return {
      label: `${s.corruption.type.replace(/_/g, ' ')} ${s.corruption.level ?? ''}`.trim(),
      images: columns.map((c) => (c === 'corrupted' ? s.corrupted : c === 'clean' ? s.clean : img(c, i))),
    };
  });
  return encodePng(renderGrid(columns, gridRows));
}

export async function runEvalCommand(o: EvalCommandOptions): Promise<{ json: EvalJson; paths: Awaited<ReturnType<typeof writeEvalReport>> }> {
  const log = o.log ?? ((l: string) => console.log(l));
  const { config, source } = resolveConfig(o);
  await checkNetworkOf(config); // an imported network's start-up check (a SetupError)
  const notes: string[] = [];
  const ckpt = await loadPolicyCheckpoint(o.checkpoint, config, 'checkpoint');
  if (ckpt.meta.configHash && ckpt.meta.configHash !== configHash(config)) {
    notes.push(`the checkpoint's config hash (${ckpt.meta.configHash.slice(0, 12)}) differs from the evaluation config's (${configHash(config).slice(0, 12)}): fine for eval-only changes (eval.samples, data), otherwise check --config`);
  }

  let reference: { path: string; ckpt: DecodedCheckpoint; found: 'given' | 'beside the checkpoint' } | null = null;
  if (o.reference) {
    reference = { path: o.reference, ckpt: await loadPolicyCheckpoint(o.reference, config, 'reference'), found: 'given' };
  } else {
    const refVersion = ckpt.meta.extra.ref_version;
    if (refVersion === undefined) {
      notes.push('no reference: --reference was not given and the checkpoint records no extra.ref_version (an SFT checkpoint, or one from before GRPO)');
    } else {
      // the KL reference the learner recorded by digest (extra.ref_digest, "sha256:<hex>"; absent in hand-made files)
      const refDigest = ckpt.meta.extra.ref_digest?.toLowerCase();
      const digest = refDigest !== undefined && DIGEST_PATTERN.test(refDigest) ? refDigest.slice('sha256:'.length) : undefined;
      const { hit, mismatched } = await findCheckpointBeside(dirname(resolve(o.checkpoint)), ckpt.meta.runId, Number(refVersion), config, o.checkpoint, digest);
      if (hit) reference = { ...hit, found: 'beside the checkpoint' };
      else if (mismatched.length) notes.push(`no reference: ${mismatched.join(', ')} is version ${refVersion} of run ${ckpt.meta.runId}, but not the checkpoint this one was trained against (its sha256 is not extra.ref_digest ${refDigest}); pass --reference`);
      else notes.push(`no reference: the checkpoint's extra.ref_version is ${refVersion}, and no checkpoint of run ${ckpt.meta.runId} at version ${refVersion} is beside it; pass --reference`);
    }
  }

  const count = o.samples ?? config.eval.samples;
  const { samples, label } = await openSamples(config, o.data, count);
  const images = imageCount(samples);
  if (images < count) notes.push(`${images} images available (asked for ${count})`);
  const drawsLabel = config.eval.draws === 'every-type' ? `${samples.length} draws, each image once per corruption type (eval.draws every-type)` : 'one corruption draw per image (eval.draws one)';
  log(`[eval] ${basename(o.checkpoint)} v${ckpt.meta.version} on ${images} images, ${drawsLabel} (${label})${reference ? `; reference v${reference.ckpt.meta.version}` : ''}`);

  const policies: Record<string, Policy> = { identity: { kind: 'identity' } };
  if (reference) policies.reference = { kind: 'mean', params: reference.ckpt.params };
  policies.policy = { kind: 'mean', params: ckpt.params };
  policies.policy_sampled = { kind: 'sampled', params: ckpt.params };
  const gridRows = o.gridRows ?? 8;
  const ev = await evaluate(config, samples, policies, { device: o.device ?? 'cpu', keep: gridIndices(samples, gridRows) });

  const sources: EvalSources = {
    checkpoint: { path: o.checkpoint, run_id: ckpt.meta.runId, version: ckpt.meta.version, digest: ckpt.digest },
    reference: reference ? { path: reference.path, run_id: reference.ckpt.meta.runId, version: reference.ckpt.meta.version, digest: reference.ckpt.digest, found: reference.found } : null,
    config: source,
    config_hash: configHash(config),
    data: label,
    samples: images,
    draws: samples.length,
    draws_mode: config.eval.draws,
    encoder: ev.encoder,
    seed: config.run.seed,
    notes,
  };
  const json: EvalJson = { sources, policy: ev.reports.policy!, policy_sampled: ev.reports.policy_sampled!, reference: ev.reports.reference ?? null, identity: ev.reports.identity! };
  const grid = await evalGridPng(config, ev, ['corrupted', ...(reference ? ['reference'] : []), 'policy', 'clean'], gridRows);
  const paths = await writeEvalReport(o.out, json, grid);
  const f = (x: number) => x.toFixed(4);
  log(`[eval] reward: identity ${f(json.identity.reward)}${json.reference ? ` | reference ${f(json.reference.reward)}` : ''} | policy ${f(json.policy.reward)} (sampled ${f(json.policy_sampled.reward)})`);
  return { json, paths };
}
