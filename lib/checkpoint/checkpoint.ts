// Checkpoints: one safetensors file holding the parameters, the AdamW state and typed run metadata.
//
// The format can hold the optimizer state in the same file as the parameters (one file = one digest = one
// atomic rename), as `saveCheckpoint` users do. The learner's broadcast checkpoints do not: followers never
// need the moments, so the learner keeps them in its own resume file paired by digest (optimizer-state.ts).
//   <name>           parameter tensors
//   adam.m.<name>    AdamW first moment of <name>   (present for every parameter when the optimizer is saved)
//   adam.v.<name>    AdamW second moment of <name>
// `__metadata__` (all strings, as safetensors requires; typed again when read):
//   format            "recovery-grpo/checkpoint@1"
//   run_id, version, step, config_hash   (version/step: decimal integers)
//   last_batch_id     id of the last TrainBatch applied (absent if none yet)
//   optimizer         "adamw" when optimizer state is present; optimizer.step = its t
//   extra.<key>       free-form caller strings
// From Python: `safetensors.numpy.load_file(path)` gives every tensor; drop names starting with `adam.` to get
// the parameters alone; `safe_open(path, "np").metadata()` gives the metadata.
//
// The digest is the sha256 of the whole file's bytes; saveCheckpoint writes it beside the file as
// `<file>.sha256` in `sha256sum` format (so `sha256sum -c model.safetensors.sha256` works).

import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AdamWState } from '../optim/adamw.ts';
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from './safetensors.ts';
import { sha256Hex } from './digest.ts';
import { formatShape, sameShape, type TensorMap } from './tensors.ts';

export const CHECKPOINT_FORMAT = 'recovery-grpo/checkpoint@1';
export const OPTIM_M_PREFIX = 'adam.m.';
export const OPTIM_V_PREFIX = 'adam.v.';
const OPTIM_PREFIX = 'adam.';
const EXTRA_PREFIX = 'extra.';

export interface CheckpointMeta {
  runId: string;
  /** Policy version this checkpoint is (the learner makes one version per applied batch). */
  version: number;
  /** Optimizer/learner step count at save time. */
  step: number;
  /** Id of the last TrainBatch whose update this checkpoint contains; null before the first. */
  lastBatchId: string | null;
  /** configHash() of the run configuration. */
  configHash: string;
  /** Free-form string metadata (e.g. which CLIP encoder the run used). */
  extra?: Record<string, string>;
}

export interface Checkpoint {
  meta: CheckpointMeta;
  params: TensorMap;
  /** AdamW state saved beside the parameters; absent for inference-only checkpoints. */
  optimizer?: AdamWState;
}

export interface DecodedCheckpoint extends Checkpoint {
  meta: CheckpointMeta & { extra: Record<string, string> };
  /** sha256 (hex) of the bytes it was decoded from. */
  digest: string;
}

/** Expected parameter names and shapes: a Map, a plain record, or a TensorMap whose shapes are used. */
export type ExpectedShapes =
  | ReadonlyMap<string, readonly number[]>
  | ReadonlyMap<string, { shape: readonly number[] }>
  | Readonly<Record<string, readonly number[]>>;

export interface DecodeOptions {
  /** Refuse the bytes unless their sha256 (hex) equals this. */
  expectedDigest?: string;
  /** Refuse unless the parameters are exactly these names with these shapes. */
  expectedShapes?: ExpectedShapes;
  /** Names the input in error messages (a path, an object-store key). */
  source?: string;
  /**
   * The bytes' sha256 (hex) as the caller has just computed it from these very bytes (CheckpointStore.get
   * does): it is used instead of hashing them a second time. Never pass a digest that was only claimed.
   */
  computedDigest?: string;
  /**
   * Tensors as views of `bytes` (where 4-byte aligned) instead of copies: for a reader that never writes its
   * parameters and never reuses `bytes` (a rollout worker's policy). The learner trains in its tensors: default off.
   */
  views?: boolean;
}

export class CheckpointError extends Error {
  /** The tensor or metadata field at fault, when there is one. */
  readonly field?: string;
  constructor(message: string, field?: string) {
    super(message);
    this.name = 'CheckpointError';
    if (field !== undefined) this.field = field;
  }
}

function isUint(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0;
}

/** Serialise a checkpoint; returns the file bytes and their sha256 (hex). Deterministic for equal input. */
export function encodeCheckpoint(ckpt: Checkpoint): { bytes: Uint8Array; digest: string } {
  const { meta, params, optimizer } = ckpt;
  const fail = (msg: string, field?: string): never => {
    throw new CheckpointError(`encodeCheckpoint: ${msg}`, field);
  };
  if (typeof meta.runId !== 'string' || meta.runId === '') fail('meta.runId must be a non-empty string', 'runId');
  if (!isUint(meta.version)) fail(`meta.version must be an integer >= 0, got ${meta.version}`, 'version');
  if (!isUint(meta.step)) fail(`meta.step must be an integer >= 0, got ${meta.step}`, 'step');
  if (meta.lastBatchId !== null && typeof meta.lastBatchId !== 'string') fail('meta.lastBatchId must be a string or null', 'lastBatchId');
  if (typeof meta.configHash !== 'string') fail('meta.configHash must be a string', 'configHash');
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    run_id: meta.runId,
    version: String(meta.version),
    step: String(meta.step),
    config_hash: meta.configHash,
  };
  if (meta.lastBatchId !== null) metadata.last_batch_id = meta.lastBatchId;
  for (const [k, v] of Object.entries(meta.extra ?? {})) {
    if (typeof v !== 'string') fail(`meta.extra.${k} must be a string, got ${typeof v}`, `extra.${k}`);
    metadata[EXTRA_PREFIX + k] = v;
  }
  const all: TensorMap = new Map();
  for (const [name, t] of params) {
    if (name.startsWith(OPTIM_PREFIX)) fail(`parameter "${name}": names starting with "${OPTIM_PREFIX}" are reserved for optimizer state`, name);
    all.set(name, t);
  }
  if (optimizer) {
    if (!isUint(optimizer.step)) fail(`optimizer.step must be an integer >= 0, got ${optimizer.step}`, 'optimizer.step');
    metadata.optimizer = 'adamw';
    metadata['optimizer.step'] = String(optimizer.step);
    for (const [which, prefix, moments] of [['m', OPTIM_M_PREFIX, optimizer.m], ['v', OPTIM_V_PREFIX, optimizer.v]] as const) {
      for (const name of moments.keys()) {
        if (!params.has(name)) fail(`optimizer ${which}."${name}" has no matching parameter`, prefix + name);
      }
      for (const [name, p] of params) {
        const x = moments.get(name);
        if (!x) fail(`optimizer ${which}."${name}" is missing`, prefix + name);
        if (!sameShape(x!.shape, p.shape)) {
          fail(`optimizer ${which}."${name}" has shape ${formatShape(x!.shape)}, parameter has ${formatShape(p.shape)}`, prefix + name);
        }
        all.set(prefix + name, x!);
      }
    }
  }
  let bytes: Uint8Array;
  try {
    bytes = encodeSafetensors(all, metadata);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(`encodeCheckpoint: ${e.message}`, e.field);
    throw e;
  }
  return { bytes, digest: sha256Hex(bytes) };
}

function expectedEntries(exp: ExpectedShapes): [string, readonly number[]][] {
  if (exp instanceof Map) {
    return [...(exp as ReadonlyMap<string, readonly number[] | { shape: readonly number[] }>)].map(([k, v]) => [
      k, Array.isArray(v) ? v : (v as { shape: readonly number[] }).shape,
    ]);
  }
  return Object.entries(exp as Record<string, readonly number[]>);
}

/**
 * Parse and verify checkpoint bytes. Throws CheckpointError (message names the tensor or field) on a digest
 * mismatch, truncated bytes, a malformed header, offsets outside the buffer, a non-F32 dtype, missing or
 * mistyped metadata, incomplete optimizer state, and — with expectedShapes — a missing, extra or
 * wrongly shaped parameter.
 */
export function decodeCheckpoint(bytes: Uint8Array, options: DecodeOptions = {}): DecodedCheckpoint {
  const source = options.source ?? 'checkpoint';
  const fail = (msg: string, field?: string): never => {
    throw new CheckpointError(`${source}: ${msg}`, field);
  };
  const digest = options.computedDigest?.toLowerCase() ?? sha256Hex(bytes);
  if (options.expectedDigest !== undefined && options.expectedDigest.toLowerCase() !== digest) {
    fail(`digest mismatch: expected sha256 ${options.expectedDigest}, bytes have ${digest}`, 'digest');
  }
  let decoded;
  try {
    decoded = decodeSafetensors(bytes, source, { views: options.views === true });
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(e.message, e.field);
    throw e;
  }
  const { tensors, metadata } = decoded;
  const str = (key: string): string => {
    const v = metadata[key];
    if (v === undefined) fail(`metadata "${key}" is missing`, key);
    return v!;
  };
  const uint = (key: string): number => {
    const s = str(key);
    if (!/^(0|[1-9][0-9]*)$/.test(s) || !isUint(Number(s))) fail(`metadata "${key}" must be a non-negative integer, got ${JSON.stringify(s)}`, key);
    return Number(s);
  };
  const format = metadata.format;
  if (format !== CHECKPOINT_FORMAT) {
    fail(format === undefined
      ? `not a recovery-grpo checkpoint (metadata "format" is missing; plain safetensors files can be read with decodeSafetensors)`
      : `metadata "format" is ${JSON.stringify(format)}, expected ${JSON.stringify(CHECKPOINT_FORMAT)}`, 'format');
  }
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) if (k.startsWith(EXTRA_PREFIX)) extra[k.slice(EXTRA_PREFIX.length)] = v;
  const meta: CheckpointMeta & { extra: Record<string, string> } = {
    runId: str('run_id'),
    version: uint('version'),
    step: uint('step'),
    lastBatchId: metadata.last_batch_id ?? null,
    configHash: str('config_hash'),
    extra,
  };

  const params: TensorMap = new Map();
  const m: TensorMap = new Map();
  const v: TensorMap = new Map();
  for (const [name, t] of tensors) {
    if (name.startsWith(OPTIM_M_PREFIX)) m.set(name.slice(OPTIM_M_PREFIX.length), t);
    else if (name.startsWith(OPTIM_V_PREFIX)) v.set(name.slice(OPTIM_V_PREFIX.length), t);
    else if (name.startsWith(OPTIM_PREFIX)) fail(`tensor "${name}": unknown optimizer tensor (expected ${OPTIM_M_PREFIX}* or ${OPTIM_V_PREFIX}*)`, name);
    else params.set(name, t);
  }
  let optimizer: AdamWState | undefined;
  const hasOptim = metadata.optimizer !== undefined;
  if (!hasOptim && (m.size > 0 || v.size > 0)) fail(`optimizer tensors present but metadata "optimizer" is missing`, 'optimizer');
  if (hasOptim) {
    if (metadata.optimizer !== 'adamw') fail(`metadata "optimizer" is ${JSON.stringify(metadata.optimizer)}, only "adamw" is supported`, 'optimizer');
    for (const [prefix, moments] of [[OPTIM_M_PREFIX, m], [OPTIM_V_PREFIX, v]] as const) {
      for (const name of moments.keys()) if (!params.has(name)) fail(`tensor "${prefix}${name}": no parameter "${name}"`, prefix + name);
      for (const [name, p] of params) {
        const x = moments.get(name);
        if (!x) fail(`tensor "${prefix}${name}" is missing (optimizer state is incomplete)`, prefix + name);
        if (!sameShape(x!.shape, p.shape)) fail(`tensor "${prefix}${name}": shape ${formatShape(x!.shape)}, parameter has ${formatShape(p.shape)}`, prefix + name);
      }
    }
    optimizer = { step: uint('optimizer.step'), m, v };
  }

  if (options.expectedShapes) {
    const expected = new Map(expectedEntries(options.expectedShapes));
    const problems: { msg: string; field: string }[] = [];
    for (const [name, shape] of expected) {
      const t = params.get(name);
      if (!t) problems.push({ msg: `tensor "${name}" is missing (expected shape ${formatShape(shape)})`, field: name });
      else if (!sameShape(t.shape, shape)) problems.push({ msg: `tensor "${name}": shape ${formatShape(t.shape)}, expected ${formatShape(shape)}`, field: name });
    }
    for (const name of params.keys()) {
      if (!expected.has(name)) problems.push({ msg: `tensor "${name}" is not an expected parameter`, field: name });
    }
    if (problems.length > 0) fail(problems.map((p) => p.msg).join('; '), problems[0]!.field);
  }
  const out: DecodedCheckpoint = { meta, params, digest };
  if (optimizer) out.optimizer = optimizer;
  return out;
}

/** Path of the digest file written beside a checkpoint. */
export function digestPath(path: string): string {
  return `${path}.sha256`;
}

async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Write a checkpoint atomically (temporary file in the same folder, fsync, rename), then its digest file
 * `<path>.sha256` the same way. Creates the folder. A reader never sees a half-written checkpoint; a crash
 * between the two renames leaves a stale digest file, which loadCheckpoint reports as a mismatch.
 */
export async function saveCheckpoint(path: string, ckpt: Checkpoint): Promise<{ digest: string; byteLength: number }> {
  const { bytes, digest } = encodeCheckpoint(ckpt);
  await mkdir(dirname(path), { recursive: true });
  await writeAtomic(path, bytes);
  await writeAtomic(digestPath(path), `${digest}  ${basename(path)}\n`);
  return { digest, byteLength: bytes.length };
}

export interface LoadOptions extends Omit<DecodeOptions, 'source'> {
  /** Fail when `<path>.sha256` does not exist (default false: it is checked when present). */
  requireDigestFile?: boolean;
}

/** Read, verify (against `<path>.sha256` when present, and expectedDigest when given) and decode a checkpoint. */
export async function loadCheckpoint(path: string, options: LoadOptions = {}): Promise<DecodedCheckpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new CheckpointError(`${path}: cannot read checkpoint (${(e as Error).message})`);
  }
  let recorded: string | undefined;
  try {
    const text = await readFile(digestPath(path), 'utf8');
    recorded = text.trim().split(/\s+/)[0];
    if (!recorded || !/^[0-9a-fA-F]{64}$/.test(recorded)) {
      throw new CheckpointError(`${digestPath(path)}: malformed digest file (expected "<64 hex digits>  <name>")`, 'digest');
    }
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    if (options.requireDigestFile) throw new CheckpointError(`${path}: digest file ${digestPath(path)} is missing`, 'digest');
  }
  if (recorded !== undefined) {
    const actual = sha256Hex(bytes);
    if (actual !== recorded.toLowerCase()) {
      throw new CheckpointError(`${path}: digest mismatch: ${basename(digestPath(path))} says sha256 ${recorded}, file has ${actual}`, 'digest');
    }
  }
  const decodeOptions: DecodeOptions = { source: path };
  if (options.expectedDigest !== undefined) decodeOptions.expectedDigest = options.expectedDigest;
  if (options.expectedShapes !== undefined) decodeOptions.expectedShapes = options.expectedShapes;
  return decodeCheckpoint(bytes, decodeOptions);
}
