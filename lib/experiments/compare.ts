// Does the RL stage beat simply training longer, and which policy family restores better?
// (`recovery-grpo sweep --methods ...`, docs/dense-advantages.md, docs/flow.md)
//
// An arm is a method, optionally of one policy family (`flow:scalar`, `gaussian:dense`; a bare method uses the
// configuration's model.family):
//   dense     dense GRPO (per-location advantages from the SSIM map)
//   scalar    scalar GRPO (the paper's one advantage per action; Flow-GRPO for the flow family)
//   sft       continued SFT (the warm start's own objective, simply trained longer)
//   backprop  direct reward backprop (the reward graph differentiated; an upper reference, not RL; Gaussian only)
// Per seed and family, one SFT warm start (trained here, or a checkpoint given per family); from its own
// family's start each arm trains for the same wall-clock budget, and every arm is evaluated on the same
// images. All of them run the pipeline's graphs and math in one process (lib/local/single-process.ts), so
// the comparison measures the methods, not transport. Equal compute: each arm trains until its own training
// clock reaches the budget; the step that crosses it is the last. The clock starts after the arm's objects are
// made (its trainer; for GRPO also PolicyRunner.create's sessions, 0.03 CPU s measured in round 25's review;
// lib/local/single-process.ts) and before its first step, so whatever a first step does lazily counts.
// Reported: gains over the arm's warm start and final values, with 95% t-intervals over seeds, and paired
// differences of final values against the first arm (same seed, same images): the t over seeds and, from the
// per-draw scores, the crossed seeds x photographs interval.
// Each seed's result is kept (OUT/seed-<k>.json, with its settings); poolComparisons (`sweep --pool`) reports over
// the kept seeds of several runs with the same settings.
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, type RunConfig } from '../config/index.ts';
import { cloneTensorMap, type TensorMap } from '../checkpoint/tensors.ts';
import { loadCheckpoint, saveCheckpoint } from '../checkpoint/index.ts';
import { configHash } from '../checkpoint/digest.ts';
import { refuseFixedLogStdChange } from '../models/fixed-log-std.ts';
import { paramShapesOf } from '../models/bundle.ts';
import { fromCHWFloat, writeImage } from '../data/image.ts';
import { runRewardBackprop, runSingleProcess, type BudgetClock, type SingleProcessStep } from '../local/single-process.ts';
import { configEvalSamples, evaluate, gridIndices, type EvalReport } from '../eval/evaluate.ts';
import { renderGrid } from '../eval/grid.ts';
import { formatCI, meanCI, type MeanCI } from '../eval/stats.ts';
import { pooledDifference, type PooledDifference } from '../eval/crossed.ts';
import { formatPaired } from '../eval/paired.ts';
import type { PerSample } from '../eval/evaluate.ts';

export const METHODS = ['dense', 'scalar', 'sft', 'backprop'] as const;
export type Method = (typeof METHODS)[number];
export const FAMILIES = ['gaussian', 'flow'] as const;
export type Family = (typeof FAMILIES)[number];
export const METHOD_LABELS: Record<Method, string> = {
  dense: 'dense GRPO',
  scalar: 'scalar GRPO',
  sft: 'continued SFT',
  backprop: 'direct reward backprop',
};
/** Column titles of the grid, short enough for one image's width. */
const GRID_LABELS: Record<Method, string> = { dense: 'dense GRPO', scalar: 'scalar GRPO', sft: 'more SFT', backprop: 'backprop' };
const METRICS = ['reward', 'ssim', 'clip_cos', 'psnr'] as const;
type Metric = (typeof METRICS)[number];
export type Gains = Record<Metric, number>;

/** One arm of the comparison: a method, of a named family or of the configuration's. */
export interface Arm {
  /** As given: `dense` or `flow:dense`; the key of the arm in every result. */
  name: string;
  method: Method;
  family?: Family;
}

export function armOf(name: string): Arm {
  const parts = name.split(':');
  const [family, method] = parts.length === 2 ? parts : [undefined, parts[0]];
  if (parts.length > 2 || !(METHODS as readonly string[]).includes(method!)) {
    throw new Error(`--methods: unknown '${name}' (choose among ${METHODS.join(', ')}, optionally prefixed by a family: ${FAMILIES.map((f) => `${f}:`).join(', ')})`);
  }
  if (family !== undefined && !(FAMILIES as readonly string[]).includes(family)) {
    throw new Error(`--methods: unknown family '${family}' in '${name}' (choose among ${FAMILIES.join(', ')})`);
  }
  if (family === 'flow' && method === 'backprop') throw new Error(`--methods: '${name}': direct reward backprop is defined for the Gaussian family only`);
  return { name, method: method as Method, ...(family ? { family: family as Family } : {}) };
}

/** "flow + dense GRPO" for an arm that names its family, "dense GRPO" for a bare method. */
export function armLabel(a: Arm): string {
  return a.name.includes(':') ? `${a.family} + ${METHOD_LABELS[a.method]}` : METHOD_LABELS[a.method];
}

export interface CompareOptions {
  /** Base configuration file and `key=value` overrides, as everywhere else. */
  configFile?: string;
  overrides?: string[];
  /** Arm names (parseMethods). */
  methods: readonly string[];
  /** Overrides applied to one family's runs only (its SFT rate, its sampler), after `overrides`. */
  familyOverrides?: Partial<Record<Family, string[]>>;
  /** Seeds 0..seeds-1: each its own warm start (unless `from` or sharedWarmStart), training noise and data order. */
  seeds: number;
  /** Seconds of training per arm and seed, on budgetClock. */
  budgetSeconds: number;
  /**
   * What the budget counts: 'wall' (default) elapsed seconds, or 'cpu' seconds of this process (all its
   * threads, onnxruntime's included): on a machine shared with other work, CPU time does not charge an arm for
   * the others' load.
   */
  budgetClock?: BudgetClock;
  /** SFT steps of each warm start (default: sft.steps of the family's configuration). */
  sftSteps?: number;
  /**
   * A warm-start checkpoint instead of training one per seed: per family, or one file for the configuration's
   * family. A path holding `{seed}` names one checkpoint per seed (`runs/demo-s{seed}/reference.safetensors`);
   * otherwise every seed starts from the same file.
   */
  from?: string | Partial<Record<Family, string>>;
  /**
   * Run seeds firstSeed..seeds-1 only (default 0). With seeds = firstSeed + 1 a process runs that one seed, so
   * processes given different first seeds and the same OUT run the seeds side by side (each seed's files are
   * its own); a last run from 0 with the full seeds, finding every seed-<k>.json, writes the report over all
   * of them. Neither is part of the settings a kept seed is matched by.
   */
  firstSeed?: number;
  /** Train one warm start per family (with seed 0) and start every seed from it; the seeds then differ in training noise and data order only. */
  sharedWarmStart?: boolean;
  /** Evaluation images (default: eval.samples). */
  samples?: number;
  /** Output folder: compare.md, compare.json, grid.png (seed 0), seed-<k>.json, warm-<family>-seed<k>.safetensors. */
  out: string;
  log?: (line: string) => void;
}

export interface SeedResult {
  seed: number;
  /** Each family's warm start, evaluated. */
  start: Partial<Record<Family, EvalReport>>;
  identity: EvalReport;
  /** seconds: on the budget clock; wallSeconds: elapsed. */
  runs: Array<{
    method: string; family: Family; steps: number; seconds: number; wallSeconds: number; final: EvalReport; gain: Gains;
    /** How far training moved the weights: ||trained - warm start|| / ||warm start|| over every parameter (round 31; absent in older files). */
    update?: number;
    /** The trained weights, a checkpoint beside the report (round 31; absent in older files). */
    weights?: string;
  }>;
}

export interface CompareResult {
  seeds: SeedResult[];
  /** Per arm, each metric's gain over its warm start: mean and 95% interval over seeds. */
  summary: Record<string, Record<Metric, MeanCI>>;
  /** Per arm, each metric's final value: mean and 95% interval over seeds. */
  finals: Record<string, Record<Metric, MeanCI>>;
  /** The first arm, against which the others are paired. */
  reference: string;
  /** Per arm other than the reference: the reference's final value minus its, paired by seed (t over seeds). */
  pairedAgainstReference: Record<string, Record<Metric, MeanCI>>;
  /**
   * The same differences with seeds and photographs both as samples (crossed, lib/eval/crossed.ts): the t over
   * seeds misses what the photographs, shared by every seed, contribute. null where a report lacks per-draw scores.
   */
  pairedCrossedAgainstReference: Record<string, Record<'reward' | 'ssim', PooledDifference> | null>;
  md: string;
  json: string;
  grid: string;
}

/**
 * The arms of `--methods`: known methods, optionally `family:method`; at least one (one arm is compared with its warm
 * start, e.g. one more arm from the warm starts of an earlier sweep's `--from`); none repeated.
 */
export function parseMethods(list: string): string[] {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(METHODS as readonly string[]).includes(n.split(':').at(-1)!));
  if (bad.length) throw new Error(`--methods: unknown ${bad.map((b) => `'${b}'`).join(', ')} (choose among ${METHODS.join(', ')}, optionally prefixed by a family: ${FAMILIES.map((f) => `${f}:`).join(', ')})`);
  names.forEach(armOf);
  if (names.length < 1) throw new Error(`--methods: give at least one method, e.g. ${METHODS.join(',')}`);
  if (new Set(names).size !== names.length) throw new Error('--methods: a method is repeated');
  return names;
}

/** `--from PATH` (the configuration's family) or `--from flow=PATH,gaussian=PATH`. */
export function parseFrom(value: string): string | Partial<Record<Family, string>> {
  const parts = value.split(',');
  if (!parts.some((p) => FAMILIES.some((f) => p.startsWith(`${f}=`)))) return value;
  const out: Partial<Record<Family, string>> = {};
  for (const p of parts) {
    const at = p.indexOf('=');
    const family = p.slice(0, at) as Family;
    if (at < 0 || !FAMILIES.includes(family) || !p.slice(at + 1)) throw new Error(`--from: '${p}' is not FAMILY=PATH (families: ${FAMILIES.join(', ')})`);
    if (out[family]) throw new Error(`--from: family '${family}' given twice`);
    out[family] = p.slice(at + 1);
  }
  return out;
}

/** `family:key=value` of `--set-for`: an override for one family's runs. */
export function parseFamilyOverrides(values: readonly string[]): Partial<Record<Family, string[]>> {
  const out: Partial<Record<Family, string[]>> = {};
  for (const v of values) {
    const at = v.indexOf(':');
    const family = v.slice(0, at) as Family;
    if (at < 0 || !FAMILIES.includes(family) || !v.slice(at + 1).includes('=')) throw new Error(`--set-for: '${v}' is not FAMILY:key=value (families: ${FAMILIES.join(', ')})`);
    (out[family] ??= []).push(v.slice(at + 1));
  }
  return out;
}

export async function compareMethods(o: CompareOptions): Promise<CompareResult> {
  if (!(o.budgetSeconds > 0)) throw new Error(`compare: the budget must be a positive number of seconds, got ${o.budgetSeconds}`);
  if (!Number.isInteger(o.seeds) || o.seeds < 1) throw new Error(`compare: seeds must be a positive integer, got ${o.seeds}`);
  const firstSeed = o.firstSeed ?? 0;
  if (!Number.isInteger(firstSeed) || firstSeed < 0 || firstSeed >= o.seeds) throw new Error(`compare: the first seed must be an integer in [0, seeds = ${o.seeds}), got ${o.firstSeed}`);
  const log = o.log ?? (() => undefined);
  const baseFamily = loadConfig(o.configFile, o.overrides ?? []).model.family as Family;
  const arms = o.methods.map(armOf).map((a) => ({ ...a, family: a.family ?? baseFamily }));
  const families = [...new Set(arms.map((a) => a.family))];
  const configFor = (seed: number, family: Family, extra: string[] = []): RunConfig =>
    loadConfig(o.configFile, [
      ...(o.overrides ?? []), `model.family=${family}`, ...(o.familyOverrides?.[family] ?? []),
      `run.seed=${seed}`, ...(o.samples ? [`eval.samples=${o.samples}`] : []), ...extra,
    ]);
  const sftStepsOf = (family: Family) => o.sftSteps ?? configFor(0, family).sft.steps;
  const fromFiles: Partial<Record<Family, string>> = typeof o.from === 'string' ? { [baseFamily]: o.from } : (o.from ?? {});
  for (const f of Object.keys(fromFiles)) {
    if (!families.includes(f as Family)) throw new Error(`compare: a warm start was given for the ${f} family, which no arm uses`);
  }
  const given = new Map<string, TensorMap>();
  const givenFile = (f: Family, seed: number) => fromFiles[f]?.replaceAll('{seed}', String(seed));
  // Every given checkpoint of the seeds this process runs is read before any training, so a missing seed's file
  // fails the run at once (only firstSeed..seeds-1: a `--first-seed K` run asked for the files of seeds below K, which
  // it never trains, until round 29)
  for (const f of families) {
    for (let seed = firstSeed; seed < o.seeds; seed++) {
      const file = givenFile(f, seed);
      if (!file || given.has(file)) continue;
      const params = (await loadCheckpoint(file, { expectedShapes: paramShapesOf(configFor(seed, f)) })).params;
      // a fixed std is the config's: a --from checkpoint of another std would silently win over --set model.logStd
      refuseFixedLogStdChange(configFor(seed, f), params, `--from ${file}`, (have) => `Run with --set model.logStd=${have} (or model.learnLogStd=true), or from a checkpoint of this std`);
      given.set(file, params);
    }
  }
  await mkdir(o.out, { recursive: true });

  // Arm a from `start` until its training clock reaches the budget. Every arm reads the seed's training
  // stream from its beginning (sft.steps=0 for the others). Continued SFT runs the warm start's schedule once
  // more over the budget: with the default cosine, a warm restart from sft.lr down to sft.lr/10 (a pilot found
  // constant rates noisy: 1e-4, 3e-4 and 1e-3 gave +0.006, +0.000 and +0.009 in 60 s).
  const budget = o.budgetSeconds;
  const budgetClock = o.budgetClock ?? 'wall';
  const UNBOUNDED = 1_000_000;
  type Trained = { params: TensorMap; steps: number; seconds: number; wallSeconds: number };
  // A GRPO arm's log lines (every 10 steps: reward, KL, clip fraction, per-channel error) go to the sweep's log, and
  // its per-step trajectory to OUT/arm-<name>-seed<k>.steps.jsonl: where a drift (round 32's colour cast) begins.
  const train = async (seed: number, a: Arm & { family: Family }, start: TensorMap, steps: SingleProcessStep[] = []): Promise<Trained> => {
    const params = cloneTensorMap(start);
    const opts = { params, budgetSeconds: budget, budgetClock };
    if (a.method === 'backprop') {
      const r = await runRewardBackprop(configFor(seed, a.family, ['sft.steps=0']), { ...opts, steps: UNBOUNDED });
      return { params: r.params, steps: r.steps, seconds: r.clockSeconds, wallSeconds: r.seconds };
    }
    if (a.method === 'sft') {
      const r = await runSingleProcess(configFor(seed, a.family, [`sft.steps=${UNBOUNDED}`, 'grpo.steps=0']), opts);
      return { params: r.params, steps: r.sftSteps, seconds: r.sftClockSeconds, wallSeconds: r.sftSeconds };
    }
    const r = await runSingleProcess(configFor(seed, a.family, ['sft.steps=0', `grpo.steps=${UNBOUNDED}`, `grpo.advantageMode=${a.method}`]), {
      ...opts, log: (l) => log(`[compare] seed ${seed} ${a.name} ${l}`), onStep: (st) => steps.push(st),
    });
    return { params: r.params, steps: r.grpoSteps, seconds: r.grpoClockSeconds, wallSeconds: r.grpoSeconds };
  };
  // A family's warm start for a seed: given, or trained once and kept in OUT (an interrupted comparison, or a
  // larger --seeds, does not train it again).
  const warmStart = async (seed: number, family: Family): Promise<TensorMap> => {
    const file0 = givenFile(family, seed);
    if (file0) return given.get(file0)!;
    const warmSeed = o.sharedWarmStart ? 0 : seed;
    const config = configFor(warmSeed, family, [`sft.steps=${sftStepsOf(family)}`, 'grpo.steps=0']);
    const file = join(o.out, `warm-${family}-seed${warmSeed}-sft${sftStepsOf(family)}.safetensors`);
    const kept = await loadCheckpoint(file, { expectedShapes: paramShapesOf(config) }).then((c) => c.params, () => null);
    if (kept) return kept;
    const t = Date.now();
    const r = await runSingleProcess(config);
    await saveCheckpoint(file, r.checkpoint);
    log(`[compare] ${family} warm start (seed ${warmSeed}): ${r.sftSteps} SFT steps in ${((Date.now() - t) / 1000).toFixed(0)} s, kept in ${file}`);
    return r.params;
  };

  const seeds: SeedResult[] = [];
  const gridPath = join(o.out, 'grid.png');
  const t0 = Date.now();
  // Each seed's result is kept in OUT/seed-<k>.json with the settings that produced it, so an interrupted
  // comparison resumes, and a larger --seeds adds seeds without re-running the others.
  const settings = settingsOf(o);
  for (let seed = firstSeed; seed < o.seeds; seed++) {
    const kept = join(o.out, `seed-${seed}.json`);
    const done = await readFile(kept, 'utf8').then((t) => JSON.parse(t) as { settings: string; result: SeedResult }, () => null);
    if (done && done.settings === settings) {
      seeds.push(done.result);
      log(`[compare] seed ${seed}: done before with the same settings, reusing ${kept}`);
      continue;
    }
    const warm = new Map<Family, TensorMap>();
    for (const f of families) warm.set(f, await warmStart(seed, f));
    const evalConfig = (f: Family) => configFor(seed, f);
    const first = evalConfig(families[0]!);
    const samples = await configEvalSamples(first);
    // Only the grid's recoveries are kept (seed 0): an every-type evaluation holds ~300 MB of pixels per policy.
    const shown = gridIndices(samples, 6);
    const keep = seed === 0 ? shown : [];
    const result: SeedResult = { seed, start: {}, identity: (await evaluate(first, samples, { identity: { kind: 'identity' } }, { keep: [] })).reports.identity, runs: [] };
    const outputs: Record<string, Float32Array> = {};
    let offsets: number[] = [];
    for (const f of families) {
      const ev = await evaluate(evalConfig(f), samples, { start: { kind: 'mean', params: warm.get(f)! } }, { keep });
      result.start[f] = ev.reports.start;
      outputs[`start:${f}`] = ev.outputs.start;
      offsets = ev.offsets;
    }
    for (const a of arms) {
      const steps: SingleProcessStep[] = [];
      const run = await train(seed, a, warm.get(a.family)!, steps);
      // The trained weights are kept (an update's size and direction can be studied, or the policy evaluated again,
      // without training it again) beside the seed's result.
      const weights = `arm-${a.name.replace(/[^A-Za-z0-9_-]/g, '-')}-seed${seed}.safetensors`;
      await saveCheckpoint(join(o.out, weights), {
        meta: { runId: `sweep-seed${seed}-${a.name}`, version: 0, step: run.steps, lastBatchId: null, configHash: configHash(evalConfig(a.family)) },
        params: run.params,
      });
      if (steps.length) await writeFile(join(o.out, weights.replace(/\.safetensors$/, '.steps.jsonl')), steps.map((st) => `${JSON.stringify(st)}\n`).join(''));
      const update = relativeUpdate(warm.get(a.family)!, run.params);
      const ev = await evaluate(evalConfig(a.family), samples, { final: { kind: 'mean', params: run.params } }, { keep });
      const final = ev.reports.final;
      const start = result.start[a.family]!;
      const gain = Object.fromEntries(METRICS.map((k) => [k, final[k] - start[k]])) as Gains;
      result.runs.push({ method: a.name, family: a.family, steps: run.steps, seconds: run.seconds, wallSeconds: run.wallSeconds, final, gain, update, weights });
      outputs[a.name] = ev.outputs.final;
      log(`[compare] seed ${seed} ${armLabel(a)}: ${run.steps} steps in ${run.seconds.toFixed(0)} s${budgetClock === 'cpu' ? ` of CPU (${run.wallSeconds.toFixed(0)} s wall)` : ''}, reward ${start.reward.toFixed(4)} -> ${final.reward.toFixed(4)} (${signed(gain.reward, 4)})`);
    }
    if (seed === 0) {
      // Sample i's recovery by one arm; samples may differ in size (whole photographs).
      const img = (name: string, i: number) => {
        const { width, height } = samples[i]!.clean;
        return fromCHWFloat(outputs[name]!.subarray(offsets[i], offsets[i]! + 3 * width * height), width, height);
      };
      const startCols = families.map((f) => `start:${f}`);
      const startTitle = (f: Family) => (families.length > 1 ? `${f} start` : 'warm start');
      const armTitle = (a: Arm & { family: Family }) => (families.length > 1 ? `${a.family} ${GRID_LABELS[a.method]}` : GRID_LABELS[a.method]);
      const rows = shown.map((i) => ({
        label: samples[i]!.corruption.type.replace(/_/g, ' '),
        images: [samples[i]!.corrupted, ...startCols.map((c) => img(c, i)), ...arms.map((a) => img(a.name, i)), samples[i]!.clean],
      }));
      await writeImage(renderGrid(['corrupted', ...families.map(startTitle), ...arms.map(armTitle), 'clean'], rows), gridPath);
    }
    seeds.push(result);
    await writeFile(kept, JSON.stringify({ settings, result }));
    log(`[compare] seed ${seed} done: warm start ${families.map((f) => `${f} ${result.start[f]!.reward.toFixed(4)}`).join(', ')}, identity ${result.identity.reward.toFixed(4)} (${((Date.now() - t0) / 1000).toFixed(0)} s so far)`);
  }

  // The report covers every seed on file with these settings, also those other processes ran (--first-seed):
  // a process that ran only seed 2 must not overwrite a three-seed report with a one-seed one. Seeds below
  // --first-seed that are not on file were not asked for: the report does not call them "not run yet".
  const below: number[] = [];
  for (let seed = firstSeed - 1; seed >= 0; seed--) {
    const done = await readFile(join(o.out, `seed-${seed}.json`), 'utf8').then((t) => JSON.parse(t) as { settings: string; result: SeedResult }, () => null);
    if (done && done.settings === settings) { seeds.unshift(done.result); below.unshift(seed); }
  }
  if (below.length) log(`[compare] seeds below --first-seed ${firstSeed} on file with the same settings, included in the report: ${seedList(below)}`);
  const sftSteps = Object.fromEntries(families.map((f) => [f, fromFiles[f] ? null : sftStepsOf(f)]));
  const missing = missingOf(seeds, firstSeed, o.seeds);
  if (missing.length) log(`[compare] the report covers ${seeds.length} seeds; asked for but not on file yet: ${seedList(missing)}`);
  const r = await writeCompareReport({ o, settings, arms, families, sftSteps, fromFiles, seeds, missing });
  return { ...r, grid: gridPath };
}

/**
 * ||trained - start|| / ||start|| over every parameter of `start` (L2, in float64): how far an arm moved the weights.
 * Throws naming the parameter when `trained` lacks one or its size differs.
 */
export function relativeUpdate(start: TensorMap, trained: TensorMap): number {
  let moved = 0;
  let size = 0;
  for (const [name, t0] of start) {
    const t1 = trained.get(name);
    if (!t1 || t1.data.length !== t0.data.length) throw new Error(`relativeUpdate: trained weights lack '${name}' or its size differs (${t1?.data.length ?? 'none'} against ${t0.data.length})`);
    for (let i = 0; i < t0.data.length; i++) {
      const d = t1.data[i]! - t0.data[i]!;
      moved += d * d;
      size += t0.data[i]! * t0.data[i]!;
    }
  }
  return size > 0 ? Math.sqrt(moved / size) : Math.sqrt(moved);
}

/** Seeds in [first, end) that `seeds` lacks: asked for and not on file. */
function missingOf(seeds: readonly SeedResult[], first: number, end: number): number[] {
  return Array.from({ length: end - first }, (_, k) => first + k).filter((k) => !seeds.some((s) => s.seed === k));
}

/** "0-2, 5, 7-9": sorted seeds as ranges. */
export function seedList(seeds: readonly number[]): string {
  const xs = [...seeds].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j]! + 1) j++;
    parts.push(j === i ? `${xs[i]}` : `${xs[i]}-${xs[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

interface ReportInput {
  o: CompareOptions;
  /** The settings string the seeds were matched by (JSON; kept in compare.json). */
  settings: string;
  arms: ReadonlyArray<Arm & { family: Family }>;
  families: readonly Family[];
  sftSteps: Record<string, number | null>;
  fromFiles: Partial<Record<Family, string>>;
  seeds: SeedResult[];
  /** Seeds asked for and not on file. */
  missing: readonly number[];
  /** Pooled reports: where each seed came from. */
  pooledFrom?: Record<number, string>;
}

/** compare.md and compare.json over the given seeds (the statistics, from the per-seed results alone). */
async function writeCompareReport(x: ReportInput): Promise<Omit<CompareResult, 'grid'>> {
  const { o, arms, families, sftSteps, fromFiles, seeds, missing } = x;
  const runsOf = (name: string) => seeds.map((s) => {
    const r = s.runs.find((q) => q.method === name);
    if (!r) throw new Error(`compare: seed ${s.seed} has no '${name}' run`);
    return r;
  });
  const ciOf = (name: string, pick: (r: SeedResult['runs'][number]) => Gains | EvalReport) =>
    Object.fromEntries(METRICS.map((k) => [k, meanCI(runsOf(name).map((r) => pick(r)[k]))])) as Record<Metric, MeanCI>;
  const summary = Object.fromEntries(arms.map((a) => [a.name, ciOf(a.name, (r) => r.gain)]));
  const finals = Object.fromEntries(arms.map((a) => [a.name, ciOf(a.name, (r) => r.final)]));
  const reference = arms[0]!.name;
  const refRuns = runsOf(reference);
  const pairedAgainstReference = Object.fromEntries(arms.slice(1).map((a) => {
    const other = runsOf(a.name);
    return [a.name, Object.fromEntries(METRICS.map((k) => [k, meanCI(refRuns.map((r, i) => r.final[k] - other[i]!.final[k]))])) as Record<Metric, MeanCI>];
  }));
  const pairedCrossedAgainstReference = Object.fromEntries(arms.slice(1).map((a) => {
    const draws = runsOf(a.name).map((r, i) => ({ a: refRuns[i]!.final.perSample, b: r.final.perSample }));
    const complete = draws.filter((d): d is { a: PerSample; b: PerSample } => d.a !== undefined && d.b !== undefined);
    return [a.name, complete.length === draws.length && complete.length > 0
      ? { reward: pooledDifference(complete, 'reward')!, ssim: pooledDifference(complete, 'ssim')! }
      : null];
  }));
  const md = join(o.out, 'compare.md');
  const json = join(o.out, 'compare.json');
  // Training time from the results themselves, so a report rebuilt from kept seed files still says it.
  const minutes = seeds.reduce((sum, s) => sum + s.runs.reduce((a, r) => a + r.wallSeconds, 0), 0) / 60;
  await mkdir(o.out, { recursive: true });
  await writeFile(md, renderMarkdown(o, arms, families, sftSteps, fromFiles, seeds, summary, finals, reference, pairedAgainstReference, pairedCrossedAgainstReference, minutes, missing, x.pooledFrom));
  await writeFile(json, JSON.stringify({
    methods: o.methods, families, budget_seconds: o.budgetSeconds, budget_clock: o.budgetClock ?? 'wall', sft_steps: sftSteps, shared_warm_start: o.sharedWarmStart ?? false,
    settings: JSON.parse(x.settings) as unknown, ...(missing.length ? { not_run_yet: missing } : {}), ...(x.pooledFrom ? { pooled_from: x.pooledFrom } : {}),
    seeds, summary, finals, reference, paired_against_reference: pairedAgainstReference, paired_crossed_against_reference: pairedCrossedAgainstReference,
  }, null, 2));
  return { seeds, summary, finals, reference, pairedAgainstReference, pairedCrossedAgainstReference, md, json };
}

/** What a kept seed (OUT/seed-<k>.json) is matched by: every option that changes what a seed trains or reports. */
interface KeptSettings {
  methods: string[];
  budget: number;
  /** Present for 'cpu' only (files from before the CPU clock lack it: wall). */
  budgetClock?: BudgetClock;
  sftSteps: number | null;
  from: string | Partial<Record<Family, string>> | null;
  shared: boolean;
  samples: number | null;
  configFile: string | null;
  overrides: string[];
  familyOverrides: Partial<Record<Family, string[]>>;
}

/** The settings string of a comparison (unchanged since round 27: kept seed files stay reusable). */
function settingsOf(o: CompareOptions): string {
  const budgetClock = o.budgetClock ?? 'wall';
  return JSON.stringify({
    methods: o.methods, budget: o.budgetSeconds, ...(budgetClock === 'cpu' ? { budgetClock } : {}), sftSteps: o.sftSteps ?? null, from: o.from ?? null, shared: o.sharedWarmStart ?? false,
    samples: o.samples ?? null, configFile: o.configFile ?? null, overrides: o.overrides ?? [], familyOverrides: o.familyOverrides ?? {},
  });
}

/** The command-line option each kept setting comes from, to name it when two inputs differ. */
const SETTING_OPTIONS: Record<keyof KeptSettings, string> = {
  methods: '--methods', budget: '--budget', budgetClock: '--budget-clock', sftSteps: '--sft-steps', from: '--from', shared: '--shared-warm-start',
  samples: '--samples', configFile: '--config', overrides: '--set', familyOverrides: '--set-for',
};

/** The first setting two settings strings differ in, as "--budget: 60 in A, 90 in B"; null when they agree. */
export function settingsDifference(a: string, b: string, nameA: string, nameB: string): string | null {
  const A = JSON.parse(a) as Record<string, unknown>;
  const B = JSON.parse(b) as Record<string, unknown>;
  const norm = (x: Record<string, unknown>, k: string) => (k === 'budgetClock' && x[k] === undefined ? 'wall' : x[k]);
  for (const k of [...new Set([...Object.keys(A), ...Object.keys(B)])]) {
    const va = norm(A, k);
    const vb = norm(B, k);
    if (JSON.stringify(va) === JSON.stringify(vb)) continue;
    const option = SETTING_OPTIONS[k as keyof KeptSettings] ?? k;
    if (k === 'overrides' && Array.isArray(va) && Array.isArray(vb)) {
      const onlyA = va.filter((x) => !vb.includes(x));
      const onlyB = vb.filter((x) => !va.includes(x));
      if (!onlyA.length && !onlyB.length) return `${option}: the same overrides in another order (${JSON.stringify(va)} in ${nameA}, ${JSON.stringify(vb)} in ${nameB}; a later --set wins)`;
      return `${option}: ${onlyA.length ? onlyA.join(' ') : '(none)'} in ${nameA} only, ${onlyB.length ? onlyB.join(' ') : '(none)'} in ${nameB} only`;
    }
    return `${option}: ${JSON.stringify(va ?? null)} in ${nameA}, ${JSON.stringify(vb ?? null)} in ${nameB}`;
  }
  return null;
}

/** A kept seed file, checked to be one. */
async function readKept(file: string): Promise<{ file: string; settings: string; result: SeedResult }> {
  const text = await readFile(file, 'utf8').catch((e: Error) => { throw new Error(`pool: cannot read '${file}': ${e.message}`); });
  let kept: { settings?: unknown; result?: { seed?: unknown; runs?: unknown; start?: unknown; identity?: unknown } };
  try {
    kept = JSON.parse(text) as typeof kept;
  } catch (e) {
    throw new Error(`pool: '${file}' is not JSON (${(e as Error).message})`);
  }
  const r = kept?.result;
  if (typeof kept?.settings !== 'string' || !r || !Number.isInteger(r.seed) || !Array.isArray(r.runs) || !r.start || !r.identity) {
    throw new Error(`pool: '${file}' is not a per-seed result of sweep --methods (a seed-<k>.json holding settings and result)`);
  }
  try {
    JSON.parse(kept.settings);
  } catch {
    throw new Error(`pool: '${file}': its settings are not JSON`);
  }
  return { file, settings: kept.settings, result: r as SeedResult };
}

export interface PoolOptions {
  /** Folders (their seed-<k>.json files) or seed-<k>.json files of `sweep --methods` runs with the same settings. */
  inputs: readonly string[];
  /** Where compare.md and compare.json are written. */
  out: string;
  /** With seeds: pool seeds firstSeed..seeds-1 only, naming those not found as not run yet. */
  seeds?: number;
  firstSeed?: number;
  log?: (line: string) => void;
}

/**
 * One report over the seeds of several `sweep --methods` runs (other --out folders, per-seed files) run with the
 * same settings: refused, naming the setting, when any two inputs differ; a seed found twice must hold the same
 * result. No training: the report is computed from the kept per-seed results, as a run's own report is.
 */
export async function poolComparisons(p: PoolOptions): Promise<Omit<CompareResult, 'grid'>> {
  const log = p.log ?? (() => undefined);
  if (!p.inputs.length) throw new Error('pool: give at least one folder or seed-<k>.json file');
  const firstSeed = p.firstSeed ?? 0;
  if (p.seeds !== undefined && (!Number.isInteger(p.seeds) || p.seeds < 1)) throw new Error(`pool: seeds must be a positive integer, got ${p.seeds}`);
  if (p.firstSeed !== undefined && p.seeds === undefined) throw new Error('pool: --first-seed needs --seeds (the seeds firstSeed..seeds-1 to pool)');
  if (p.seeds !== undefined && (!Number.isInteger(firstSeed) || firstSeed < 0 || firstSeed >= p.seeds)) throw new Error(`pool: the first seed must be an integer in [0, seeds = ${p.seeds}), got ${p.firstSeed}`);
  const found: Array<{ file: string; settings: string; result: SeedResult }> = [];
  for (const input of p.inputs) {
    const st = await stat(input).catch(() => null);
    if (!st) throw new Error(`pool: '${input}' does not exist`);
    const seedOf = (f: string) => Number(/^seed-(\d+)\.json$/.exec(f)![1]);
    const files = st.isDirectory()
      ? (await readdir(input)).filter((f) => /^seed-\d+\.json$/.test(f)).sort((x, y) => seedOf(x) - seedOf(y)).map((f) => join(input, f))
      : [input];
    if (!files.length) throw new Error(`pool: '${input}' holds no seed-<k>.json (the per-seed results sweep --methods keeps in its --out)`);
    for (const file of files) found.push(await readKept(file));
  }
  const first = found[0]!;
  for (const f of found.slice(1)) {
    const d = settingsDifference(first.settings, f.settings, first.file, f.file);
    if (d) throw new Error(`pool: ${f.file} was run with other settings than ${first.file}: ${d}`);
  }
  const bySeed = new Map<number, { file: string; result: SeedResult }>();
  for (const f of found) {
    const k = f.result.seed;
    const had = bySeed.get(k);
    if (had && JSON.stringify(had.result) !== JSON.stringify(f.result)) throw new Error(`pool: seed ${k} is in both ${had.file} and ${f.file}, with different results: pool each seed once`);
    if (had) { log(`[pool] seed ${k}: ${f.file} holds the same result as ${had.file}, counted once`); continue; }
    bySeed.set(k, { file: f.file, result: f.result });
  }
  let ks = [...bySeed.keys()].sort((a, b) => a - b);
  let missing: number[] = [];
  if (p.seeds !== undefined) {
    const left = ks.filter((k) => k < firstSeed || k >= p.seeds!);
    if (left.length) log(`[pool] seeds outside ${firstSeed}..${p.seeds - 1} left out: ${seedList(left)}`);
    ks = ks.filter((k) => k >= firstSeed && k < p.seeds!);
    missing = missingOf(ks.map((k) => bySeed.get(k)!.result), firstSeed, p.seeds);
    if (missing.length) log(`[pool] asked for and not found: ${seedList(missing)}`);
  }
  if (!ks.length) throw new Error(`pool: no seed of ${firstSeed}..${(p.seeds ?? 1) - 1} in ${p.inputs.join(', ')}`);
  const seeds = ks.map((k) => bySeed.get(k)!.result);
  const kept = JSON.parse(first.settings) as KeptSettings;
  const o: CompareOptions = {
    methods: kept.methods, budgetSeconds: kept.budget, budgetClock: kept.budgetClock ?? 'wall', ...(kept.sftSteps !== null ? { sftSteps: kept.sftSteps } : {}),
    ...(kept.from !== null ? { from: kept.from } : {}), sharedWarmStart: kept.shared, ...(kept.samples !== null ? { samples: kept.samples } : {}),
    ...(kept.configFile !== null ? { configFile: kept.configFile } : {}), overrides: kept.overrides, familyOverrides: kept.familyOverrides,
    seeds: p.seeds ?? ks.at(-1)! + 1, ...(p.seeds !== undefined ? { firstSeed } : {}), out: p.out,
  };
  // Each arm's family as its runs recorded it; the warm start's SFT steps from the settings (or the runs' configuration).
  const arms = kept.methods.map(armOf).map((a) => {
    const run = seeds[0]!.runs.find((r) => r.method === a.name);
    if (!run) throw new Error(`pool: ${bySeed.get(ks[0]!)!.file} has no '${a.name}' run, though its settings name it`);
    return { ...a, family: run.family };
  });
  const families = [...new Set(arms.map((a) => a.family))];
  const fromFiles: Partial<Record<Family, string>> = typeof kept.from === 'string' ? { [families[0]!]: kept.from } : (kept.from ?? {});
  const sftSteps = Object.fromEntries(families.map((f) => {
    if (fromFiles[f]) return [f, null];
    if (kept.sftSteps !== null) return [f, kept.sftSteps];
    try {
      return [f, loadConfig(kept.configFile ?? undefined, [...kept.overrides, `model.family=${f}`, ...(kept.familyOverrides[f] ?? [])]).sft.steps];
    } catch (e) {
      throw new Error(`pool: the warm start's SFT steps come from the runs' configuration (${kept.configFile ?? 'defaults'} with their --set), which cannot be read here: ${(e as Error).message}`);
    }
  }));
  const pooledFrom = Object.fromEntries(ks.map((k) => [k, bySeed.get(k)!.file.replace(/\/seed-\d+\.json$/, '')]));
  log(`[pool] ${ks.length} seed(s) (${seedList(ks)}) from ${p.inputs.length} input(s), the same settings`);
  return writeCompareReport({ o, settings: first.settings, arms, families, sftSteps, fromFiles, seeds, missing, pooledFrom });
}

const signed = (x: number, d: number) => `${x >= 0 ? '+' : ''}${x.toFixed(d)}`;

/** Whether two intervals are disjoint (the stricter test the issue asks for, beside paired differences). */
export function separated(a: MeanCI, b: MeanCI): boolean {
  return a.lo > b.hi || b.lo > a.hi;
}

function renderMarkdown(
  o: CompareOptions,
  arms: ReadonlyArray<Arm & { family: Family }>,
  families: readonly Family[],
  sftSteps: Record<string, number | null>,
  fromFiles: Partial<Record<Family, string>>,
  seeds: SeedResult[],
  summary: CompareResult['summary'],
  finals: CompareResult['finals'],
  reference: string,
  paired: CompareResult['pairedAgainstReference'],
  pairedCrossed: CompareResult['pairedCrossedAgainstReference'],
  minutes: number,
  missing: readonly number[],
  pooledFrom?: Record<number, string>,
): string {
  const digits: Record<Metric, number> = { reward: 4, ssim: 4, clip_cos: 4, psnr: 2 };
  const ci = (c: MeanCI, k: Metric) => formatCI(c, digits[k]);
  const value = (c: MeanCI, k: Metric) => ci(c, k).replace(/^\+/, '');
  const label = (name: string) => armLabel(arms.find((a) => a.name === name)!);
  const starts = families.map((f) => {
    const n = sftSteps[f];
    return `${families.length > 1 ? `${f}: ` : ''}${n === null ? (fromFiles[f]?.includes('{seed}') ? `the given warm-start checkpoint of each seed (${fromFiles[f]})` : 'one given warm-start checkpoint') : `a ${n}-step SFT warm start ${o.sharedWarmStart ? 'shared by every seed' : 'per seed'}`}`;
  });
  const lines = [
    `# Method comparison at equal ${o.budgetClock === 'cpu' ? 'CPU-time' : 'wall-clock'} compute`,
    '',
    `${arms.map((a) => armLabel(a)).join(', ')}; ${seeds.length} seed(s) (${seedList(seeds.map((s) => s.seed))})${missing.length ? `; seeds ${seedList(missing)} asked for and not run yet` : ''}; ${o.budgetSeconds} s of training${o.budgetClock === 'cpu' ? ' (process CPU time, all threads)' : ''} per method and seed, from ${starts.join('; ')}; ${seeds[0] ? seeds[0].identity.count : 0} evaluation images; ${minutes.toFixed(1)} minutes of training (wall time, every method and seed).`,
    ...(pooledFrom ? [`Pooled (\`sweep --pool\`, the same settings) from: ${[...new Set(Object.values(pooledFrom))].map((f) => `${f} (seeds ${seedList(Object.entries(pooledFrom).filter(([, v]) => v === f).map(([k]) => Number(k)))})`).join('; ')}.`] : []),
    'Gains of the policy mean over its warm start: mean ± 95% half-width (t over seeds) [interval].',
    '',
    '| method | reward gain | SSIM gain | embedding-cosine gain | PSNR gain (dB) |',
    '| --- | --- | --- | --- | --- |',
    ...arms.map((a) => `| ${armLabel(a)} | ${METRICS.map((k) => ci(summary[a.name]![k], k)).join(' | ')} |`),
    '',
    'Final values (the policy mean after training; warm starts and identity below):',
    '',
    '| method | reward | SSIM | embedding cosine | PSNR (dB) |',
    '| --- | --- | --- | --- | --- |',
    ...arms.map((a) => `| ${armLabel(a)} | ${METRICS.map((k) => value(finals[a.name]![k], k)).join(' | ')} |`),
    ...families.map((f) => `| ${families.length > 1 ? `${f} ` : ''}warm start | ${METRICS.map((k) => value(meanCI(seeds.map((s) => s.start[f]![k])), k)).join(' | ')} |`),
    `| identity (the corrupted input) | ${METRICS.map((k) => value(meanCI(seeds.map((s) => s.identity[k])), k)).join(' | ')} |`,
  ];
  if (Object.keys(paired).length) {
    lines.push(
      '',
      `${label(reference)} against each other method: paired difference of final values (same seed and images): the t over seeds, then the interval with seeds and photographs both as samples (crossed, lib/eval/crossed.ts, df Satterthwaite's; "-" without per-draw scores), and whether the two reward intervals above are disjoint.`,
      '',
      `| ${label(reference)} minus | reward (t over seeds) | SSIM (t over seeds) | reward, seeds x photographs (df) | SSIM, seeds x photographs (df) | reward intervals disjoint |`,
      '| --- | --- | --- | --- | --- | --- |',
      ...Object.entries(paired).map(([m, d]) => {
        const c = pairedCrossed[m];
        const crossed = (p: PooledDifference | undefined) => (p ? `${formatPaired(p)} (${p.df})` : '-');
        return `| ${label(m)} | ${ci(d.reward, 'reward')} | ${ci(d.ssim, 'ssim')} | ${crossed(c?.reward)} | ${crossed(c?.ssim)} | ${separated(finals[reference]!.reward, finals[m]!.reward) ? 'yes' : 'no'} |`;
      }),
    );
  }
  lines.push(
    '',
    'Per seed:',
    '',
    `| seed | method | steps | ${o.budgetClock === 'cpu' ? 'CPU s (wall s)' : 'seconds'} | warm-start reward | final reward | reward gain | SSIM gain | cosine gain | PSNR gain | update (relative L2) |`,
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...seeds.flatMap((s) => s.runs.map((r) => `| ${s.seed} | ${label(r.method)} | ${r.steps} | ${r.seconds.toFixed(0)}${o.budgetClock === 'cpu' ? ` (${r.wallSeconds.toFixed(0)})` : ''} | ${s.start[r.family]!.reward.toFixed(4)} | ${r.final.reward.toFixed(4)} | ${signed(r.gain.reward, 4)} | ${signed(r.gain.ssim, 4)} | ${signed(r.gain.clip_cos, 4)} | ${signed(r.gain.psnr, 2)} | ${r.update === undefined ? '-' : r.update.toExponential(2)} |`)),
    '',
  );
  return lines.join('\n');
}
