// An imported network as the policy's mean network (model.network, model.adapter): the ONNX file (and an
// optional state dict) is read at the process's start and checked (a later read must give the same bytes), checked against the policy contract at the run's
// resolution, and split into what trains (the checkpointed tensors: trainable base tensors, LoRA factors)
// and the frozen base, which every graph holds as constants. The base digest (sha256 of the files) names
// the frozen base in checkpoints, so a role that reads another base refuses the run.

import { readFileSync } from 'node:fs';
import type { Graph, Value } from '../graph/graph.ts';
import { add } from '../graph/ops.ts';
import { decodeModel, graphInputs } from '../graph/onnx.ts';
import { initLora, mergeLora, namePattern, type Adapter } from '../graph/lora.ts';
import { importOnnx, withInitializers, type ImportedNetwork, type ImportedParam } from '../import/onnx-import.ts';
import { forwardCheck } from '../import/report.ts';
import { SetupError } from '../config/setup-error.ts';
import { checkPolicyContract, type PolicyContract } from '../import/policy-contract.ts';
import { weightsFromStateDict } from '../import/state-dict.ts';
import { withLora, type LoraNetwork } from '../import/lora-network.ts';
import { sha256Hex } from '../checkpoint/digest.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';

/** model.network with the run's resolution (dynamic spatial sizes are fixed to it at import). */
export interface NetworkSpec {
  onnx: string;
  weights?: string | undefined;
  image?: string | undefined;
  frozen?: string[] | undefined;
  /** The flow family's velocity network: the inputs that receive t and the corrupted image y. */
  time?: string | undefined;
  condition?: string | undefined;
  height: number;
  width: number;
}

/** model.adapter. */
export interface AdapterSpec {
  kind: 'lora';
  rank: number;
  alpha: number;
  targets: string[];
  trainBiases?: boolean | undefined;
}

export interface ImportedPolicy {
  net: ImportedNetwork;
  contract: PolicyContract;
  /** sha256 of the ONNX file, or of both digests when a weights file replaces its initializers. */
  baseDigest: string;
  /** The base weights (the file's initializers, or the state dict's). */
  base: TensorMap;
  /** Base tensors that train (in checkpoints), in graph order. */
  trainable: ImportedParam[];
  /** Base tensors frozen as constants (never in checkpoints). */
  frozen: ImportedParam[];
  adapters: Adapter[];
  lora?: LoraNetwork;
}

const cache = new Map<string, ImportedPolicy>();

function readOrFail(path: string, field: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`${field}: cannot read ${path} (${(e as Error).message})`);
  }
}

/**
 * The network's files (model.network.onnx and .weights) as read now. A process remembers the digest of the bytes it
 * first read (not the bytes: a large network would be held twice for the process's life), and every later read, for
 * an import at a new resolution, must give the same digest: a file replaced under the same path during a run is
 * refused, never used unchecked (a process started later reads the new file and checks it itself; the base digest,
 * which names the bytes, then refuses the run's checkpoints if they differ).
 */
interface NetworkFiles {
  onnx: Uint8Array;
  weights?: Uint8Array;
  /** sha256 of the ONNX file, or of both digests when a weights file replaces its initializers. */
  digest: string;
}

const fileKey = (network: NetworkSpec) => JSON.stringify([network.onnx, network.weights ?? null]);
/** The digest of what this process first read, by file paths. */
const digestsRead = new Map<string, string>();

function networkFiles(network: NetworkSpec): NetworkFiles {
  const onnx = readOrFail(network.onnx, 'model.network.onnx');
  const weights = network.weights ? readOrFail(network.weights, 'model.network.weights') : undefined;
  const digest = weights ? sha256Hex(`${sha256Hex(onnx)}:${sha256Hex(weights)}`) : sha256Hex(onnx);
  const first = digestsRead.get(fileKey(network));
  if (first === undefined) digestsRead.set(fileKey(network), digest);
  else if (first !== digest) {
    const files = network.weights ? `${network.onnx} and ${network.weights}` : network.onnx;
    throw new Error(`model.network: ${files} changed while this process ran (sha256 ${first.slice(0, 12)}, now ${digest.slice(0, 12)}): the network it checked at start is gone; restart the process to check and use the new file`);
  }
  return { onnx, digest, ...(weights ? { weights } : {}) };
}

/** The network's file as read and translated at the spec's resolution, before adapters and frozen choices. */
interface ReadNetwork {
  bytes: Uint8Array;
  net: ImportedNetwork;
  contract: PolicyContract;
  base: TensorMap;
  baseDigest: string;
}

function readNetwork(network: NetworkSpec, files: NetworkFiles): ReadNetwork {
  const bytes = files.onnx;
  // the first input that is not an initializer (keep_initializers_as_inputs lists the weights as inputs too)
  const imageName = network.image ?? graphInputs(decodeModel(bytes, network.onnx).graph)[0]?.name ?? 'image';
  const imageShape = ['N', 3, network.height, network.width];
  const inputShapes = { [imageName]: imageShape, ...(network.condition ? { [network.condition]: imageShape } : {}) };
  const extraInputs = [network.time, network.condition].filter((n): n is string => !!n);
  const net = importOnnx(bytes, { source: network.onnx, symbolicBatch: true, inputShapes });
  const contract = checkPolicyContract(net, { image: imageName, extraInputs });
  const base = files.weights ? weightsFromStateDict(net, files.weights, network.weights!) : net.weights;
  return { bytes, net, contract, base, baseDigest: files.digest };
}

// The networks this process has checked against onnxruntime (checkImportedNetwork), by the digest of the bytes
// checked and the input names: the translation does not depend on the resolution, so evaluation at a whole
// photograph's size needs no second check.
const checked = new Set<string>();
const checkKey = (n: NetworkSpec, digest: string) => JSON.stringify([digest, n.image ?? null, n.time ?? null, n.condition ?? null]);

/**
 * The import command's forward check (lib/import/report.ts: the imported graph against onnxruntime running the
 * file, random input at batch 2), once per process and network, asynchronously. Every process that uses an
 * imported network awaits it at its start, before it joins a run (checkNetworkOf, lib/models/bundle.ts: the worker
 * runtime at the Welcome, the orchestrator's main, the single-process loop and reward backprop, the flow loop, the
 * eval and export commands), so importedPolicy, which the graphs and shapes are built from, never runs onnxruntime.
 * importedPolicy refuses a file whose bytes differ from those this process checked (networkFiles). A graph the importer translates wrongly, or a
 * file it cannot read, is refused with a SetupError (no restart cures it).
 */
export async function checkImportedNetwork(network: NetworkSpec): Promise<void> {
  let files: NetworkFiles;
  let read: ReadNetwork;
  try {
    files = networkFiles(network);
    if (checked.has(checkKey(network, files.digest))) return;
    read = readNetwork(network, files);
  } catch (e) {
    throw e instanceof SetupError ? e : new SetupError((e as Error).message, { cause: e });
  }
  const { bytes, net, base } = read;
  const check = await forwardCheck(net, network.weights ? withInitializers(bytes, base) : bytes, base, 2, 1);
  if (!check.ok) {
    throw new SetupError(`${network.onnx}: the imported network does not compute what onnxruntime computes on the file (random input, batch ${check.batch}): max |difference| ${check.maxAbsError.toExponential(2)}, relative ${check.relError.toExponential(2)} (limit 1e-4); \`recovery-grpo import ${network.onnx}\` reports it`);
  }
  checked.add(checkKey(network, files.digest));
}

/** Whether this process has checked the network it read (checkImportedNetwork); false for one it has not read. */
export function isNetworkChecked(network: NetworkSpec): boolean {
  const digest = digestsRead.get(fileKey(network));
  return digest !== undefined && checked.has(checkKey(network, digest));
}

/**
 * Imports (once per process and spec) the network a policy spec names. Synchronous and free of onnxruntime work
 * (the forward check runs at the process's start, checkImportedNetwork): safe on a loop that dispatches work.
 */
export function importedPolicy(network: NetworkSpec, adapter?: AdapterSpec): ImportedPolicy {
  const key = JSON.stringify([network, adapter ?? null]);
  const hit = cache.get(key);
  if (hit) return hit;
  const { net, contract, base, baseDigest } = readNetwork(network, networkFiles(network));
  const frozenBy = (network.frozen ?? []).map((f) => ({ f, re: namePattern(f) }));
  for (const { f, re } of frozenBy) {
    if (!net.params.some((p) => re.test(p.name))) throw new Error(`model.network.frozen: '${f}' matches no parameter of ${network.onnx} (${net.params.map((p) => p.name).join(', ')})`);
  }
  const trainsByDefault = (p: ImportedParam): boolean => {
    if (p.role === 'running-stat') return false;
    if (adapter) return !!adapter.trainBiases && (p.role === 'bias' || p.role === 'norm-bias');
    return true;
  };
  const trains = (p: ImportedParam) => trainsByDefault(p) && !frozenBy.some(({ re }) => re.test(p.name));
  let lora: LoraNetwork | undefined;
  if (adapter) {
    try {
      lora = withLora(net, { rank: adapter.rank, alpha: adapter.alpha, targets: adapter.targets });
    } catch (e) {
      throw new Error(`model.adapter (${network.onnx}): ${(e as Error).message}`);
    }
  }
  const out: ImportedPolicy = {
    net, contract, baseDigest, base,
    trainable: net.params.filter(trains),
    frozen: net.params.filter((p) => !trains(p)),
    adapters: lora?.adapters ?? [],
    ...(lora ? { lora } : {}),
  };
  cache.set(key, out);
  return out;
}

/** Names and shapes of the checkpointed tensors of the network (trainable base tensors, then factors). */
export function importedParamShapes(p: ImportedPolicy): { name: string; shape: number[] }[] {
  return [
    ...p.trainable.map((t) => ({ name: t.name, shape: t.shape })),
    ...p.adapters.flatMap((a) => [{ name: a.a.name, shape: [...a.a.shape] }, { name: a.b.name, shape: [...a.b.shape] }]),
  ];
}

/** Initial values of the checkpointed tensors: base values, fresh factors (B zero: the base's output). */
export function initImportedParams(p: ImportedPolicy, seed: number): TensorMap {
  const out: TensorMap = new Map();
  for (const t of p.trainable) {
    const w = p.base.get(t.name)!;
    out.set(t.name, { shape: [...w.shape], data: Float32Array.from(w.data) });
  }
  for (const [k, v] of initLora(p.adapters, seed)) out.set(k, v);
  return out;
}

/** The frozen base as constants of `g`, named `param.<name>` as the other parameters are. */
export function frozenConstants(g: Graph, p: ImportedPolicy): [string, Value][] {
  return p.frozen.map((t) => [t.name, g.constant(p.base.get(t.name)!.data, t.shape, 'float32', `param.${t.name}`)]);
}

/** mean = image + f(image), every base tensor and factor taken from `params` (inputs or constants). */
export function importedMean(p: ImportedPolicy, params: Map<string, Value>, image: Value): Value {
  return add(image, importedOutput(p, params, { [p.contract.image]: image }));
}

/** The network's output for `inputs` (by graph input name), every base tensor and factor from `params`. */
export function importedOutput(p: ImportedPolicy, params: Map<string, Value>, inputs: Record<string, Value>): Value {
  const image = inputs[p.contract.image]!;
  const get = (name: string): Value => {
    const v = params.get(name);
    if (!v) throw new Error(`model: imported parameter ${name} is missing`);
    return v;
  };
  // Baked parameters (a standalone model) hold the merged weights and no factors: the plain network.
  const adapted = p.lora && p.adapters.length > 0 && params.has(p.adapters[0]!.a.name);
  const [residual] = adapted
    ? p.lora!.build(image.graph, inputs, (t) => get(t.name), (name) => get(name))
    : p.net.build(image.graph, inputs, (t) => get(t.name));
  return residual!;
}

/**
 * The base and trainable tensors of a standalone model with the adapters merged in (W + alpha/rank B A on
 * the host): every base tensor by name, no factors.
 */
export function mergedImportedWeights(p: ImportedPolicy, params: TensorMap): TensorMap {
  const all: TensorMap = new Map(p.base);
  for (const t of p.trainable) {
    const v = params.get(t.name);
    if (!v) throw new Error(`model: parameter ${t.name} is missing`);
    all.set(t.name, v);
  }
  return p.adapters.length ? mergeLora(all, p.adapters, params) : all;
}
