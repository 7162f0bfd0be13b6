// The stale-row check on behaviour log-probabilities (docs/grpo.md, "The stale-row check"; docs/security.md). At
// grpo.maxStaleness > 0 a GRPO row may carry an older behaviour version b than the learner's current one, and the
// same-version check (logp-check.ts) cannot judge its logp_old from the learner's own forward. But the learner made
// version b itself: it keeps the parameters of its last maxStaleness versions (ParamHistory, in memory) and
// recomputes the log-density of the row's action under version b's parameters (one forward of the policy network
// per distinct stale version, over the checked rows' images only). A row beyond grpo.logpTolerance is excluded as
// the same-version check excludes one (excludeRows), before the step's forward, so an honest batch runs exactly as
// without the check.
//
// grpo.staleCheckFraction < 1 checks a sample of the stale groups: each group (sample id) of batch seq s is checked
// with probability f, independently, by HMAC-SHA256(key, s, sample id); the key is the learner's alone
// (staleCheckKey), so a worker cannot know in advance which of its groups are checked.
import { createHmac, randomBytes } from 'node:crypto';
import { cloneTensorMap, type TensorMap } from '../checkpoint/tensors.ts';
import { offPolicyRows } from './logp-check.ts';
import { repeatedRows } from '../graph/shared-rows.ts';

export { STALE_CHECK_FRACTION_DEFAULT } from './logp-check.ts';

/** The environment variable that gives the learner its stale-check key (a reproducible sample): any text of >= 16 characters. */
export const STALE_CHECK_KEY_ENV = 'RECOVERY_STALE_CHECK_KEY';

/**
 * The key of the stale check's sample: RECOVERY_STALE_CHECK_KEY's text when set (the same key gives the same sample
 * for the same batches: runs are reproducible), else 32 random bytes drawn at the learner's start (unpredictable;
 * only which forged rows a sample catches then differs between runs, never an honest run's parameters, since honest
 * rows pass whether checked or not). Not config.run.seed: every role reads the run configuration, so a sample drawn
 * from it alone is one a worker can compute, and grind its forgeries against.
 */
export function staleCheckKey(env: NodeJS.ProcessEnv = process.env): { key: Buffer; fromEnv: boolean } {
  const text = env[STALE_CHECK_KEY_ENV];
  if (text === undefined || text === '') return { key: randomBytes(32), fromEnv: false };
  if (text.length < 16) throw new Error(`${STALE_CHECK_KEY_ENV}: must be at least 16 characters (a secret of the learner's; e.g. openssl rand -hex 32), got ${text.length}`);
  return { key: Buffer.from(text, 'utf8'), fromEnv: true };
}

/**
 * Is group `sampleId` of batch `seq` checked at fraction `fraction`? A keyed draw, uniform in [0, 1) from the first
 * 48 bits of HMAC-SHA256(key, "seq\0sampleId"), below `fraction`: 1 checks every group, 0 none.
 */
export function staleGroupChecked(key: Uint8Array, seq: number, sampleId: string, fraction: number): boolean {
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`staleGroupChecked: fraction must be in [0, 1], got ${fraction}`);
  if (fraction >= 1) return true;
  if (fraction <= 0) return false;
  const h = createHmac('sha256', key).update(`${seq}\0${sampleId}`).digest();
  return h.readUIntBE(0, 6) / 2 ** 48 < fraction;
}

/**
 * The parameters of the learner's last `capacity` versions, each a copy (the trainer updates its own in place). The
 * learner checks a batch at version v against v - capacity .. v - 1, then keeps v (the copy of the version it
 * forgets is reused: no allocation once full). Costs capacity x 4 bytes per checkpointed parameter (docs/grpo.md).
 */
export class ParamHistory {
  private readonly kept = new Map<number, TensorMap>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`ParamHistory: capacity must be an integer >= 1, got ${capacity}`);
  }

  /**
   * Keeps a copy of `params` as version `version` (replacing one kept before), and forgets every version more than
   * `capacity` below it (and any above it: a version kept before a skipped step).
   */
  keep(version: number, params: TensorMap): void {
    let spare = this.kept.get(version);
    for (const [v, m] of this.kept) {
      if (v > version - this.capacity && v <= version) continue;
      this.kept.delete(v);
      spare ??= m;
    }
    this.kept.set(version, spare && sameShapes(spare, params) ? copyInto(spare, params) : cloneTensorMap(params));
  }

  get(version: number): TensorMap | undefined {
    return this.kept.get(version);
  }

  versions(): number[] {
    return [...this.kept.keys()].sort((a, b) => a - b);
  }

  /** The float32 bytes held. */
  bytes(): number {
    let n = 0;
    for (const m of this.kept.values()) for (const t of m.values()) n += t.data.byteLength;
    return n;
  }
}

function sameShapes(a: TensorMap, b: TensorMap): boolean {
  if (a.size !== b.size) return false;
  for (const [k, t] of b) {
    const u = a.get(k);
    if (!u || u.data.length !== t.data.length || u.shape.join(',') !== t.shape.join(',')) return false;
  }
  return true;
}

function copyInto(dst: TensorMap, src: TensorMap): TensorMap {
  for (const [k, t] of src) dst.get(k)!.data.set(t.data);
  return dst;
}

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);
/** The graphs' cap on a log-ratio before its exp (lib/models/graphs.ts MAX_LOG_RATIO). */
const MAX_LOG_RATIO = 20;

/**
 * Per row, the mean Gaussian log-density of its action (`actions` [R * P]) under `mean` [R * P] and log-std
 * `logStd` (a scalar, or one per row: a flow step's), and its ratio against `logpOld` ([R] or, dense, [R * P]: the
 * mean of its elements' ratios), as the GRPO graphs compute them (gaussianLogDensity, clippedSurrogate), in float64.
 * With `meanRows` (one per row), `mean` may hold fewer rows: row i's mean is row meanRows[i] of it (the policy
 * family's distinct images, read in place instead of first copied onto every row; round 28: lcpu28; the same values,
 * so the same bytes).
 */
export function gaussianRowLogp(actions: ArrayLike<number>, mean: ArrayLike<number>, logStd: number | ArrayLike<number>, logpOld: ArrayLike<number>, R: number, meanRows?: ArrayLike<number>): { logp: Float64Array; ratio: Float64Array } {
  const P = actions.length / R;
  if (!Number.isInteger(P) || (meanRows === undefined && mean.length !== actions.length)) throw new Error(`gaussianRowLogp: ${actions.length} action and ${mean.length} mean values for ${R} rows`);
  if (meanRows !== undefined) {
    const M = mean.length / P;
    if (meanRows.length !== R || !Number.isInteger(M)) throw new Error(`gaussianRowLogp: ${meanRows.length} mean rows for ${R} rows, ${mean.length} mean values for rows of ${P}`);
    for (let i = 0; i < R; i++) {
      const m = meanRows[i]!;
      if (!Number.isInteger(m) || m < 0 || m >= M) throw new Error(`gaussianRowLogp: row ${i}'s mean row ${m} is not one of the ${M} rows of mean`);
    }
  }
  const dense = logpOld.length === actions.length;
  if (!dense && logpOld.length !== R) throw new Error(`gaussianRowLogp: ${logpOld.length} logp_old values for ${R} rows of ${P}`);
  if (typeof logStd !== 'number' && logStd.length !== R) throw new Error(`gaussianRowLogp: ${logStd.length} log-stds for ${R} rows`);
  const logp = new Float64Array(R);
  const ratio = new Float64Array(R);
  for (let i = 0; i < R; i++) {
    const ls = typeof logStd === 'number' ? logStd : logStd[i]!;
    const inv2var = 0.5 * Math.exp(-2 * ls);
    const c = ls + HALF_LOG_2PI;
    let s = 0;
    let rs = 0;
    // element k of row i reads mean[k + shift]: its own row, or (meanRows) row meanRows[i]
    const shift = meanRows === undefined ? 0 : (meanRows[i]! - i) * P;
    for (let k = i * P; k < (i + 1) * P; k++) {
      const d = actions[k]! - mean[k + shift]!;
      const e = -d * d * inv2var - c;
      s += e;
      if (dense) rs += Math.exp(Math.min(e - logpOld[k]!, MAX_LOG_RATIO));
    }
    logp[i] = s / P;
    ratio[i] = dense ? rs / P : Math.exp(Math.min(logp[i]! - logpOld[i]!, MAX_LOG_RATIO));
  }
  return { logp, ratio };
}

/** Copies rows `rows` (of `per` values each) of `src` into a new array, in that order. */
export function gatherRows<T extends Float32Array | Int32Array>(src: T, rows: readonly number[], per: number): T {
  const out = new (src.constructor as new (n: number) => T)(rows.length * per);
  rows.forEach((i, k) => out.set(src.subarray(i * per, (i + 1) * per), k * per));
  return out;
}

/**
 * Rows `rows` of `src` as gatherRows gives them, but without a copy when they are consecutive (a view of `src`: the
 * common case, every row of a batch stale); the caller only reads it.
 */
export function rowsOf<T extends Float32Array | Int32Array>(src: T, rows: readonly number[], per: number): T {
  const first = rows[0] ?? 0;
  if (rows.every((r, k) => r === first + k)) return src.subarray(first * per, (first + rows.length) * per) as T;
  return gatherRows(src, rows, per);
}
/** What the stale check reads of a GRPO batch's training rows (an action each; the flow family: an action's step each). */
export interface StaleCheckRows {
  rows: number;
  /** Per row: its behaviour version (empty: none known, nothing checked). */
  versions: readonly number[];
  /** Per row: its group (the unit of the sample: a sample id). */
  groups: readonly string[];
  /** [rows] or, dense, [rows * P]. */
  logpOld: Float32Array;
}

/** What one batch's stale check did: the rows it found forged, and how many stale rows it checked or could not. */
export interface StaleCheckResult {
  excluded: number[];
  checked: number;
  /** Stale rows of groups the sample left out. */
  notSampled: number;
  /** Stale rows of versions the learner does not hold (those before its restart). */
  notHeld: number;
  /** The rows counted in notSampled and notHeld, ascending: stale rows nothing examined (TrainResult.check_coverage). */
  unchecked: number[];
}

/**
 * The stale check of a batch trained at `version`: every row of a version below it, in a group the sample picks, is
 * recomputed under its version's parameters from `history` (`recompute`: the family's log-density and ratio of
 * those rows, gaussianRowLogp over policyRows or flowRows) and compared with its logp_old as offPolicyRows compares
 * an on-policy row. One `recompute` per distinct stale version.
 */
export async function staleCheck(o: {
  batch: StaleCheckRows; version: number; seq: number; history: ParamHistory; tolerance: number; fraction: number; key: Uint8Array;
  recompute: (params: TensorMap, rows: number[]) => Promise<{ logp: ArrayLike<number>; ratio: ArrayLike<number> }>;
}): Promise<StaleCheckResult> {
  const b = o.batch;
  const res: StaleCheckResult = { excluded: [], checked: 0, notSampled: 0, notHeld: 0, unchecked: [] };
  if (b.versions.length !== b.rows) return res;
  const per = b.logpOld.length / b.rows;
  const picked = new Map<string, boolean>();
  const byVersion = new Map<number, number[]>();
  for (let i = 0; i < b.rows; i++) {
    const v = b.versions[i]!;
    if (v >= o.version) continue;
    const id = b.groups[i] ?? `row ${i}`;
    let p = picked.get(id);
    if (p === undefined) picked.set(id, (p = staleGroupChecked(o.key, o.seq, id, o.fraction)));
    if (!p) { res.notSampled++; res.unchecked.push(i); continue; }
    if (!o.history.get(v)) { res.notHeld++; res.unchecked.push(i); continue; }
    let rows = byVersion.get(v);
    if (!rows) byVersion.set(v, (rows = []));
    rows.push(i);
  }
  for (const [v, rows] of [...byVersion].sort((x, y) => x[0] - y[0])) {
    const { logp, ratio } = await o.recompute(o.history.get(v)!, rows);
    const bad = offPolicyRows({ logp, ratio, logpOld: rowsOf(b.logpOld, rows, per), onPolicy: Array(rows.length).fill(true), tolerance: o.tolerance });
    for (const k of bad) res.excluded.push(rows[k]!);
    res.checked += rows.length;
  }
  res.excluded.sort((x, y) => x - y);
  return res;
}

/**
 * The distinct images of n rows [n, ...] (runs of byte-equal consecutive rows, as the policy graph's shared rows
 * find them: lib/graph/shared-rows.ts) and each row's: the network runs on exactly these images either way. Never
 * one image for several rows: then the image twice (repeatedRows, whose rule it is: onnxruntime's Conv threads a batch of one
 * differently), so a batch of n >= 2 rows is never a network batch of one.
 */
export function distinctRows(images: Float32Array, n: number): { images: Float32Array; count: number; source: Float32Array } {
  const { distinct, source } = repeatedRows(images, n, 'stale check images');
  const firsts = [...distinct];
  return { images: firsts.length === n ? images : gatherRows(images, firsts, images.length / n), count: firsts.length, source };
}

/**
 * The policy family's recompute: the policy network's mean of the rows' distinct images (distinctRows) under the
 * version's parameters (`meanOf`: PolicyRunner.mean), its log-std (`logStdName`, a parameter), and the rows' actions.
 * The network runs on the same images as round 26's run of the policy graph over every row (whose shared rows found
 * the same distinct images), so each row's mean is the same bytes, without that graph's copies back onto every row
 * and its action and log-density outputs for every row (round 27: stale27).
 */
export function policyRecompute(b: { images: Float32Array; actions: Float32Array; logpOld: Float32Array; n: number }, logStdName: string, meanOf: (params: TensorMap, images: Float32Array, n: number) => Promise<Float32Array>) {
  const P = b.images.length / b.n;
  const per = b.logpOld.length / b.n;
  return async (params: TensorMap, rows: number[]) => {
    const logStd = params.get(logStdName)?.data[0];
    if (logStd === undefined) throw new Error(`stale check: the kept parameters hold no ${logStdName}`);
    const R = rows.length;
    const d = distinctRows(rowsOf(b.images, rows, P), R);
    const distinctMean = await meanOf(params, d.images, d.count);
    if (distinctMean.length !== d.count * P) throw new Error(`stale check: a mean of ${distinctMean.length} values for ${d.count} images of ${P}`);
    // each row's image's mean, in row order (the few distinct images' means copied onto their rows, or the means
    // themselves when every row is its own; two equal rows both take the first one's, as the graph's shared rows gave them)
    // each row reads its distinct image's mean in place (d.source), not a copy of it per row
    return gaussianRowLogp(rowsOf(b.actions, rows, P), distinctMean, logStd, rowsOf(b.logpOld, rows, per), R, d.source);
  };
}

/** The flow family's training rows as the stale check reads them (lib/flow/family.ts FlowRows). */
export interface FlowCheckRows {
  n: number;
  images: Float32Array;
  advantages: Float32Array;
  flow: { rows: number; actionIndex: Int32Array; stepIndex: Int32Array; t: Float32Array; tNext: Float32Array; a: Float32Array; x: Float32Array; xNext: Float32Array; logpOld: Float32Array };
}

/**
 * The flow family's recompute: the step's mean and std of each row under the version's parameters (`stepOf`:
 * FlowRunner.stepMeanStd over the rows given), and the log-density of the row's x_next, as the Flow-GRPO graph
 * computes it (std floored at `minStd`, MIN_STEP_STD).
 */
export function flowRecompute<B extends FlowCheckRows>(b: B, minStd: number, stepOf: (params: TensorMap, rows: B) => Promise<{ mean: Float32Array; std: Float32Array }>) {
  const f = b.flow;
  const P = f.x.length / f.rows;
  const per = f.logpOld.length / f.rows;
  return async (params: TensorMap, rows: number[]) => {
    const sub: B = {
      ...b,
      flow: {
        ...f, rows: rows.length, actionIndex: gatherRows(f.actionIndex, rows, 1), stepIndex: gatherRows(f.stepIndex, rows, 1),
        t: gatherRows(f.t, rows, 1), tNext: gatherRows(f.tNext, rows, 1), a: gatherRows(f.a, rows, 1),
        x: gatherRows(f.x, rows, P), xNext: gatherRows(f.xNext, rows, P), logpOld: gatherRows(f.logpOld, rows, per),
      },
    };
    const { mean, std } = await stepOf(params, sub);
    return gaussianRowLogp(sub.flow.xNext, mean, Array.from(std, (s) => Math.log(Math.max(s, minStd))), sub.flow.logpOld, rows.length);
  };
}
