// Does the RL stage beat simply training longer? (`recovery-grpo sweep --methods ...`, docs/dense-advantages.md)
//
// Per seed, one SFT warm start (trained here, or a checkpoint given with `from`); from that same start each
// method trains for the same wall-clock budget, and is evaluated on the same images:
//   dense     dense GRPO (per-location advantages from the SSIM map)
//   scalar    scalar GRPO (the paper's one advantage per action)
//   sft       continued SFT (the warm start's own objective, simply trained longer)
//   backprop  direct reward backprop (the reward graph differentiated; an upper reference, not RL)
// All of them run the pipeline's graphs and math in one process (lib/local/single-process.ts), so the
// comparison measures the methods, not transport. Equal compute: each method trains until its own training
// clock (from its first step, graph start-up included) reaches the budget; the step that crosses it is the
// last. Gains are over the warm start, with 95% t-intervals over seeds, and paired
// differences against dense GRPO (the methods share each seed's warm start and evaluation images).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, type RunConfig } from '../config/index.ts';
import { openRunDataset } from '../config/dataset.ts';
import { cloneTensorMap, type TensorMap } from '../checkpoint/tensors.ts';
import { loadCheckpoint } from '../checkpoint/index.ts';
import { paramShapes, policySpecOf } from '../models/bundle.ts';
import { fromCHWFloat, writeImage } from '../data/image.ts';
import { runRewardBackprop, runSingleProcess } from '../local/single-process.ts';
import { evaluate, firstSamples, type EvalReport } from '../eval/evaluate.ts';
import { renderGrid } from '../eval/grid.ts';
import { formatCI, meanCI, type MeanCI } from '../eval/stats.ts';

export const METHODS = ['dense', 'scalar', 'sft', 'backprop'] as const;
export type Method = (typeof METHODS)[number];
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

export interface CompareOptions {
  /** Base configuration file and `key=value` overrides, as everywhere else. */
  configFile?: string;
  overrides?: string[];
  methods: readonly Method[];
  /** Seeds 0..seeds-1: each its own warm start (unless `from`), training noise and data order. */
  seeds: number;
  /** Wall-clock seconds of training per method and seed. */
  budgetSeconds: number;
  /** SFT steps of each seed's warm start (default: sft.steps of the configuration). */
  sftSteps?: number;
  /** A warm-start checkpoint file shared by every seed, instead of training one per seed. */
  from?: string;
  /** Evaluation images (default: eval.samples). */
  samples?: number;
  /** Output folder: compare.md, compare.json, grid.png (seed 0), seed-<k>.json. */
  out: string;
  log?: (line: string) => void;
}

export interface SeedResult {
  seed: number;
  start: EvalReport;
  identity: EvalReport;
  runs: Array<{ method: Method; steps: number; seconds: number; final: EvalReport; gain: Gains }>;
}

export interface CompareResult {
  seeds: SeedResult[];
  /** Per method, each metric's gain over the warm start: mean and 95% interval over seeds. */
  summary: Record<string, Record<Metric, MeanCI>>;
  /** Per method other than dense: dense's gain minus its gain, paired by seed. */
  pairedAgainstDense: Record<string, Record<Metric, MeanCI>>;
  md: string;
  json: string;
  grid: string;
}

export function parseMethods(list: string): Method[] {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(METHODS as readonly string[]).includes(n));
  if (bad.length) throw new Error(`--methods: unknown ${bad.map((b) => `'${b}'`).join(', ')} (choose among ${METHODS.join(', ')})`);
  if (names.length < 2) throw new Error(`--methods: give at least two methods to compare, e.g. ${METHODS.join(',')}`);
  if (new Set(names).size !== names.length) throw new Error('--methods: a method is repeated');
  return names as Method[];
}

export async function compareMethods(o: CompareOptions): Promise<CompareResult> {
  if (!(o.budgetSeconds > 0)) throw new Error(`compare: the budget must be a positive number of seconds, got ${o.budgetSeconds}`);
  if (!Number.isInteger(o.seeds) || o.seeds < 1) throw new Error(`compare: seeds must be a positive integer, got ${o.seeds}`);
  const log = o.log ?? (() => undefined);
  const configFor = (seed: number, extra: string[] = []): RunConfig =>
    loadConfig(o.configFile, [...(o.overrides ?? []), `run.seed=${seed}`, ...(o.samples ? [`eval.samples=${o.samples}`] : []), ...extra]);
  const base = configFor(0);
  const sftSteps = o.sftSteps ?? base.sft.steps;
  const from = o.from ? (await loadCheckpoint(o.from, { expectedShapes: paramShapes(policySpecOf(base)) })).params : undefined;
  await mkdir(o.out, { recursive: true });

  // Method m from `start` until its training clock reaches the budget. Every method reads the seed's
  // training stream from its beginning (sft.steps=0 for the others). Continued SFT runs the warm start's
  // schedule once more over the budget: with the default cosine, a warm restart from sft.lr down to sft.lr/10
  // (a pilot found constant rates noisy: 1e-4, 3e-4 and 1e-3 gave +0.006, +0.000 and +0.009 in 60 s).
  const budget = o.budgetSeconds;
  const UNBOUNDED = 1_000_000;
  const train = async (seed: number, m: Method, start: TensorMap): Promise<{ params: TensorMap; steps: number; seconds: number }> => {
    const params = cloneTensorMap(start);
    if (m === 'backprop') return runRewardBackprop(configFor(seed, ['sft.steps=0']), { params, steps: UNBOUNDED, budgetSeconds: budget });
    if (m === 'sft') {
      const r = await runSingleProcess(configFor(seed, [`sft.steps=${UNBOUNDED}`, 'grpo.steps=0']), { params, budgetSeconds: budget });
      return { params: r.params, steps: r.sftSteps, seconds: r.sftSeconds };
    }
    const r = await runSingleProcess(configFor(seed, ['sft.steps=0', `grpo.steps=${UNBOUNDED}`, `grpo.advantageMode=${m}`]), { params, budgetSeconds: budget });
    return { params: r.params, steps: r.grpoSteps, seconds: r.grpoSeconds };
  };

  const seeds: SeedResult[] = [];
  const gridPath = join(o.out, 'grid.png');
  const t0 = Date.now();
  // Each seed's result is kept in OUT/seed-<k>.json with the settings that produced it, so an interrupted
  // comparison resumes, and a larger --seeds adds seeds without re-running the others.
  const settings = JSON.stringify({ methods: o.methods, budget, sftSteps, from: o.from ?? null, samples: o.samples ?? null, configFile: o.configFile ?? null, overrides: o.overrides ?? [] });
  for (let seed = 0; seed < o.seeds; seed++) {
    const kept = join(o.out, `seed-${seed}.json`);
    const done = await readFile(kept, 'utf8').then((t) => JSON.parse(t) as { settings: string; result: SeedResult }, () => null);
    if (done && done.settings === settings) {
      seeds.push(done.result);
      log(`[compare] seed ${seed}: done before with the same settings, reusing ${kept}`);
      continue;
    }
    const warm = from ?? (await runSingleProcess(configFor(seed, [`sft.steps=${sftSteps}`, 'grpo.steps=0']))).params;
    const config = configFor(seed);
    const samples = await firstSamples(await openRunDataset(config, 'eval'), config.eval.samples);
    const startEval = await evaluate(config, samples, { start: { kind: 'mean', params: warm }, identity: { kind: 'identity' } });
    const result: SeedResult = { seed, start: startEval.reports.start, identity: startEval.reports.identity, runs: [] };
    const outputs: Record<string, Float32Array> = { start: startEval.outputs.start };
    for (const m of o.methods) {
      const run = await train(seed, m, warm);
      const steps = run.steps;
      const ev = await evaluate(config, samples, { final: { kind: 'mean', params: run.params } });
      const final = ev.reports.final;
      const gain = Object.fromEntries(METRICS.map((k) => [k, final[k] - result.start[k]])) as Gains;
      result.runs.push({ method: m, steps, seconds: run.seconds, final, gain });
      outputs[m] = ev.outputs.final;
      log(`[compare] seed ${seed} ${METHOD_LABELS[m]}: ${steps} steps in ${run.seconds.toFixed(0)} s, reward ${result.start.reward.toFixed(4)} -> ${final.reward.toFixed(4)} (${signed(gain.reward, 4)})`);
    }
    if (seed === 0) {
      // Sample i's recovery by one method; samples may differ in size (whole photographs).
      const img = (name: string, i: number) => {
        const { width, height } = samples[i].clean;
        return fromCHWFloat(outputs[name]!.subarray(startEval.offsets[i], startEval.offsets[i] + 3 * width * height), width, height);
      };
      const rows = samples.slice(0, 6).map((s, i) => ({ label: s.corruption.type.replace(/_/g, ' '), images: [s.corrupted, img('start', i), ...o.methods.map((m) => img(m, i)), s.clean] }));
      await writeImage(renderGrid(['corrupted', 'warm start', ...o.methods.map((m) => GRID_LABELS[m]), 'clean'], rows), gridPath);
    }
    seeds.push(result);
    await writeFile(kept, JSON.stringify({ settings, result }));
    log(`[compare] seed ${seed} done: warm start ${result.start.reward.toFixed(4)}, identity ${result.identity.reward.toFixed(4)} (${((Date.now() - t0) / 1000).toFixed(0)} s so far)`);
  }

  const gainsOf = (m: Method) => seeds.map((s) => s.runs.find((r) => r.method === m)!.gain);
  const summary = Object.fromEntries(o.methods.map((m) => [m, Object.fromEntries(METRICS.map((k) => [k, meanCI(gainsOf(m).map((g) => g[k]))]))])) as CompareResult['summary'];
  const pairedAgainstDense: CompareResult['pairedAgainstDense'] = {};
  if (o.methods.includes('dense')) {
    const dense = gainsOf('dense');
    for (const m of o.methods.filter((x) => x !== 'dense')) {
      const other = gainsOf(m);
      pairedAgainstDense[m] = Object.fromEntries(METRICS.map((k) => [k, meanCI(dense.map((g, i) => g[k] - other[i]![k]))])) as Record<Metric, MeanCI>;
    }
  }
  const md = join(o.out, 'compare.md');
  const json = join(o.out, 'compare.json');
  const minutes = (Date.now() - t0) / 60000;
  await writeFile(md, renderMarkdown(o, sftSteps, seeds, summary, pairedAgainstDense, minutes));
  await writeFile(json, JSON.stringify({ methods: o.methods, budget_seconds: o.budgetSeconds, sft_steps: o.from ? null : sftSteps, seeds, summary, paired_against_dense: pairedAgainstDense }, null, 2));
  return { seeds, summary, pairedAgainstDense, md, json, grid: gridPath };
}

const signed = (x: number, d: number) => `${x >= 0 ? '+' : ''}${x.toFixed(d)}`;

/** Whether two intervals are disjoint (the stricter test the issue asks for, beside paired differences). */
export function separated(a: MeanCI, b: MeanCI): boolean {
  return a.lo > b.hi || b.lo > a.hi;
}

function renderMarkdown(
  o: CompareOptions,
  sftSteps: number,
  seeds: SeedResult[],
  summary: CompareResult['summary'],
  paired: CompareResult['pairedAgainstDense'],
  minutes: number,
): string {
  const digits: Record<Metric, number> = { reward: 4, ssim: 4, clip_cos: 4, psnr: 2 };
  const ci = (c: MeanCI, k: Metric) => formatCI(c, digits[k]);
  const lines = [
    `# Method comparison at equal wall-clock compute`,
    '',
    `${o.methods.map((m) => METHOD_LABELS[m]).join(', ')}; ${seeds.length} seed(s); ${o.budgetSeconds} s of training per method and seed, from ${o.from ? 'one given warm-start checkpoint' : `a ${sftSteps}-step SFT warm start per seed`}; ${seeds[0] ? seeds[0].start.count : 0} evaluation images; ${minutes.toFixed(0)} minutes in all.`,
    'Gains of the policy mean over the warm start: mean ± 95% half-width (t over seeds) [interval].',
    '',
    '| method | reward gain | SSIM gain | embedding-cosine gain | PSNR gain (dB) |',
    '| --- | --- | --- | --- | --- |',
    ...o.methods.map((m) => `| ${METHOD_LABELS[m]} | ${METRICS.map((k) => ci(summary[m]![k], k)).join(' | ')} |`),
  ];
  if (Object.keys(paired).length) {
    lines.push(
      '',
      'Dense GRPO against each other method: paired difference of gains (same warm start and images per seed), and whether the two reward-gain intervals above are disjoint.',
      '',
      '| dense GRPO minus | reward | SSIM | reward intervals disjoint |',
      '| --- | --- | --- | --- |',
      ...Object.entries(paired).map(([m, d]) => `| ${METHOD_LABELS[m as Method]} | ${ci(d.reward, 'reward')} | ${ci(d.ssim, 'ssim')} | ${separated(summary.dense!.reward, summary[m]!.reward) ? 'yes' : 'no'} |`),
    );
  }
  lines.push(
    '',
    'Per seed:',
    '',
    '| seed | method | steps | seconds | warm-start reward | final reward | reward gain | SSIM gain | cosine gain | PSNR gain |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...seeds.flatMap((s) => s.runs.map((r) => `| ${s.seed} | ${METHOD_LABELS[r.method]} | ${r.steps} | ${r.seconds.toFixed(0)} | ${s.start.reward.toFixed(4)} | ${r.final.reward.toFixed(4)} | ${signed(r.gain.reward, 4)} | ${signed(r.gain.ssim, 4)} | ${signed(r.gain.clip_cos, 4)} | ${signed(r.gain.psnr, 2)} |`)),
    '',
  );
  return lines.join('\n');
}
