// The checks `recovery-grpo import` runs on a model: ops found and supported, parameters, the policy
// contract, a forward pass on random input against onnxruntime running the original file, and a gradient
// spot check against finite differences.

import { readFile } from 'node:fs/promises';
import { Graph, type Shape, type Value } from '../graph/graph.ts';
import { decodeModel, graphInputs, serialize } from '../graph/onnx.ts';
import { GraphSession, type Feeds, type Fetches } from '../graph/runtime.ts';
import { gradCheck, testRandom, type CheckInput } from '../graph/gradcheck.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { importOnnx, withInitializers, type ImportedNetwork } from './onnx-import.ts';
import { SUPPORTED_OPS } from './onnx-ops.ts';
import { checkPolicyContract, type PolicyContract } from './policy-contract.ts';
import { weightsFromStateDict } from './state-dict.ts';

export interface ReportOptions {
  weights?: string;
  /** Image height and width for graphs whose spatial sizes are dynamic. */
  height?: number;
  width?: number;
  image?: string;
  extraInputs?: string[];
  /** Batch size of the random forward check. */
  batch?: number;
  seed?: number;
}

export interface ImportReport {
  file: string;
  weightsFile: string | null;
  opset: number;
  producer: string;
  ops: Array<{ op: string; nodes: number; supported: boolean }>;
  inputs: Array<{ name: string; shape: Shape }>;
  outputs: Array<{ name: string; shape: Shape }>;
  parameters: { tensors: number; count: number; bytes: number; byRole: Record<string, number> };
  contract: { ok: true; contract: PolicyContract } | { ok: false; error: string };
  forward: { batch: number; maxAbsError: number; relError: number; ok: boolean } | null;
  gradient: { checked: string[]; analytic: number; numeric: number; relError: number; ok: boolean } | null;
  error?: string;
}

/** Ops in the file and whether the importer supports each (read before importing, so all are listed). */
function opsOf(bytes: Uint8Array, file: string): ImportReport['ops'] {
  const m = decodeModel(bytes, file);
  const counts = new Map<string, number>();
  for (const n of m.graph?.node ?? []) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType!;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([op, nodes]) => ({ op, nodes, supported: SUPPORTED_OPS.includes(op) }));
}

const concrete = (shape: Shape, batch: number): number[] => shape.map((d) => (typeof d === 'number' ? d : batch));

function randomFeeds(net: ImportedNetwork, batch: number, seed: number): Feeds {
  const rand = testRandom(seed);
  return Object.fromEntries(
    net.inputs.map((io) => {
      const dims = concrete(io.shape, batch);
      return [io.name, { dims, data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rand()) }];
    }),
  );
}

export type ForwardResult = NonNullable<ImportReport['forward']>;

/** The forward check's two models and feeds: the imported graph (parameters fed) and the original file. */
export interface ForwardPlan {
  ours: { model: Uint8Array; feeds: Feeds };
  reference: { model: Uint8Array; feeds: Feeds };
  batch: number;
}

export function forwardPlan(net: ImportedNetwork, original: Uint8Array, weights: TensorMap, batch: number, seed: number): ForwardPlan {
  const g = new Graph();
  const inputs = Object.fromEntries(net.inputs.map((io) => [io.name, g.input(io.name, io.shape)]));
  const outs = net.build(g, inputs, (p) => g.input(`param.${p.name}`, p.shape));
  outs.forEach((v, i) => g.output(`out${i}`, v));
  const feeds = randomFeeds(net, batch, seed);
  const paramFeeds: Feeds = Object.fromEntries([...weights].map(([name, t]) => [`param.${name}`, { data: t.data, dims: t.shape }]));
  return { ours: { model: serialize(g), feeds: { ...feeds, ...paramFeeds } }, reference: { model: original, feeds }, batch };
}

/** Max and relative difference over every output (ours are named out<i>, the file's by their names). */
export function compareForward(net: ImportedNetwork, plan: ForwardPlan, got: Fetches, want: Fetches): ForwardResult {
  let maxAbs = 0;
  let scale = 0;
  net.outputs.forEach((o, i) => {
    const a = got[`out${i}`];
    const b = want[o.name];
    if (a.dims.join() !== b.dims.join()) throw new Error(`${net.source}: output '${o.name}' has shape [${a.dims}] here and [${b.dims}] in onnxruntime (batch ${plan.batch})`);
    b.data.forEach((v, j) => {
      scale = Math.max(scale, Math.abs(v));
      maxAbs = Math.max(maxAbs, Math.abs(v - a.data[j]));
    });
  });
  const relError = maxAbs / Math.max(scale, 1e-12);
  return { batch: plan.batch, maxAbsError: maxAbs, relError, ok: relError <= 1e-4 };
}

/** The forward check: the imported graph against onnxruntime running the original file (import command, start-up check). */
export async function forwardCheck(net: ImportedNetwork, original: Uint8Array, weights: TensorMap, batch: number, seed: number): Promise<ForwardResult> {
  const plan = forwardPlan(net, original, weights, batch, seed);
  const run = async ({ model, feeds }: ForwardPlan['ours']): Promise<Fetches> => {
    const session = await GraphSession.create(model);
    try {
      return await session.run(feeds);
    } finally {
      await session.release();
    }
  };
  return compareForward(net, plan, await run(plan.ours), await run(plan.reference));
}

/**
 * Gradient of a random projection of the outputs w.r.t. the image and three parameters, against central
 * differences along three random coordinates of each, at two step sizes (the better one counts).
 */
async function gradientCheck(net: ImportedNetwork, weights: TensorMap, batch: number, seed: number): Promise<NonNullable<ImportReport['gradient']>> {
  // The first, a middle and the last parameter that trains (running statistics do not).
  const trainable = net.params.map((p, k) => (p.role === 'running-stat' ? -1 : k)).filter((k) => k >= 0);
  const picked = new Set([trainable[0], trainable[Math.floor(trainable.length / 2)], trainable[trainable.length - 1]].filter((k) => k !== undefined));
  const inputs: CheckInput[] = [
    ...net.inputs.map((io, k) => ({ name: io.name, shape: io.shape, dims: concrete(io.shape, batch), grad: k === 0, init: (_i: number, r: () => number) => r() })),
    ...net.params.map((p, k) => {
      const data = weights.get(p.name)!.data;
      return { name: `param.${p.name}`, shape: p.shape, grad: picked.has(k), init: (i: number) => data[i] };
    }),
  ];
  const nIn = net.inputs.length;
  const f = (_g: Graph, xs: Value[]): Value => {
    const feeds = Object.fromEntries(net.inputs.map((io, k) => [io.name, xs[k]]));
    return net.build(xs[0].graph, feeds, (p) => xs[nIn + net.params.indexOf(p)])[0];
  };
  // Two step sizes: a ReLU or max-pool kink crossed by the larger step spoils only that one.
  const tries = [await gradCheck(inputs, f, { seed, eps: 1e-3, coordinates: 3 }), await gradCheck(inputs, f, { seed, eps: 1e-4, coordinates: 3 })];
  const r = tries.reduce((a, b) => (b.relError < a.relError ? b : a));
  const checked = [net.inputs[0].name, ...[...picked].map((k) => net.params[k].name)];
  return { checked, ...r, ok: r.relError < 1e-2 };
}

export async function importReport(file: string, opts: ReportOptions = {}): Promise<ImportReport> {
  const bytes = new Uint8Array(await readFile(file));
  const report: ImportReport = {
    file, weightsFile: opts.weights ?? null, opset: 0, producer: '', ops: [], inputs: [], outputs: [],
    parameters: { tensors: 0, count: 0, bytes: 0, byRole: {} },
    contract: { ok: false, error: 'not checked' }, forward: null, gradient: null,
  };
  try {
    report.ops = opsOf(bytes, file);
    const declared = graphInputs(decodeModel(bytes, file).graph);
    const inputShapes: Record<string, Shape> = {};
    if (opts.height && opts.width) {
      const image = opts.image ?? declared[0]?.name;
      if (image) inputShapes[image] = ['N', 3, opts.height, opts.width];
      // other image-like inputs (a flow velocity network's condition [N,C,H,W]) take the same size
      for (const i of declared) {
        const dims = i.type?.tensorType?.shape?.dim ?? [];
        const channels = Number(dims[1]?.dimValue ?? NaN);
        if (i.name !== image && dims.length === 4 && Number.isInteger(channels)) inputShapes[i.name!] = ['N', channels, opts.height, opts.width];
      }
    }
    const net = importOnnx(bytes, { source: file, symbolicBatch: true, inputShapes });
    report.opset = net.opset;
    report.producer = net.producer;
    report.inputs = net.inputs;
    report.outputs = net.outputs;
    const weights = opts.weights ? weightsFromStateDict(net, new Uint8Array(await readFile(opts.weights)), opts.weights) : net.weights;
    for (const p of net.params) {
      const n = p.shape.reduce((a, b) => a * b, 1);
      report.parameters.tensors++;
      report.parameters.count += n;
      report.parameters.byRole[p.role] = (report.parameters.byRole[p.role] ?? 0) + n;
    }
    report.parameters.bytes = report.parameters.count * 4;
    try {
      report.contract = { ok: true, contract: checkPolicyContract(net, { image: opts.image, extraInputs: opts.extraInputs }) };
    } catch (e) {
      report.contract = { ok: false, error: (e as Error).message };
    }
    const batch = opts.batch ?? 2;
    const seed = opts.seed ?? 1;
    report.forward = await forwardCheck(net, opts.weights ? withInitializers(bytes, weights) : bytes, weights, batch, seed);
    report.gradient = await gradientCheck(net, weights, batch, seed);
  } catch (e) {
    report.error = (e as Error).message;
  }
  return report;
}

/** A few lines for the terminal. */
export function summarise(r: ImportReport): string {
  const lines = [
    `${r.file}${r.weightsFile ? ` (weights ${r.weightsFile})` : ''}: opset ${r.opset}${r.producer ? `, written by ${r.producer}` : ''}`,
    `ops: ${r.ops.map((o) => `${o.op} x${o.nodes}${o.supported ? '' : ' (UNSUPPORTED)'}`).join(', ')}`,
    `parameters: ${r.parameters.count} in ${r.parameters.tensors} tensors, ${(r.parameters.bytes / 1e6).toFixed(2)} MB`,
    r.contract.ok ? `contract: image '${r.contract.contract.image}' [${r.contract.contract.shape}] -> '${r.contract.contract.output}' [N,3,H,W]` : `contract: NOT satisfied: ${r.contract.error}`,
  ];
  if (r.forward) lines.push(`forward vs onnxruntime on the original (batch ${r.forward.batch}): max |diff| ${r.forward.maxAbsError.toExponential(2)}, relative ${r.forward.relError.toExponential(2)} ${r.forward.ok ? 'ok' : 'FAILED'}`);
  if (r.gradient) lines.push(`gradient vs finite differences (${r.gradient.checked.join(', ')}): relative ${r.gradient.relError.toExponential(2)} ${r.gradient.ok ? 'ok' : 'FAILED'}`);
  if (r.error) lines.push(`error: ${r.error}`);
  return lines.join('\n');
}

/** Whether every check passed. */
export const reportPassed = (r: ImportReport): boolean => !r.error && r.contract.ok && !!r.forward?.ok && !!r.gradient?.ok;
