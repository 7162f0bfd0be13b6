// Edge validation of protocol messages and small helpers that every role needs.
// Transport-level checks only (envelope shape, Hello); payload tensors are validated where they are
// decoded (lib/transport/tensor.ts) with the field path in the error.
import { z } from 'zod';
import { DTYPES, decodeTensor, type DecodeOptions, type HostTensor } from './tensor.ts';
import {
  ROLES,
  type Hello__Output,
  type OrchestratorMessage,
  type OrchestratorMessageKind,
  type OrchestratorMessage__Output,
  type ResultBundle__Output,
  type RolloutTask__Output,
  type ScoreTask__Output,
  type TaskBundle__Output,
  type WorkerMessage,
  type WorkerMessage__Output,
  type WorkerMessageKind,
} from './proto.ts';

export const WORKER_MESSAGE_KINDS = [
  'hello',
  'heartbeat',
  'rollout_result',
  'score_result',
  'train_result',
  'task_error',
  'result_bundle',
] as const satisfies readonly WorkerMessageKind[];
export const ORCHESTRATOR_MESSAGE_KINDS = [
  'welcome',
  'rollout_task',
  'score_task',
  'train_batch',
  'cancel_task',
  'shutdown',
  'task_bundle',
] as const satisfies readonly OrchestratorMessageKind[];

/**
 * A worker id: [A-Za-z0-9._:-]{1,128}, except `__proto__` (review29 F8): the run state keeps records keyed by worker id
 * (quarantineWindows, boundIds), and a JSON record parse drops that key, so its quarantine window would start from zero
 * at every restart. WORKER_ID_RULE says so in errors.
 */
export const WORKER_ID_PATTERN = /^(?!__proto__$)[A-Za-z0-9._:-]{1,128}$/;
/** What WORKER_ID_PATTERN asks, for errors. */
export const WORKER_ID_RULE = 'must match [A-Za-z0-9._:-]{1,128} and not be "__proto__" (reserved: a key JSON records drop)';

export const HelloSchema = z.object({
  protocol_version: z.number().int().nonnegative(),
  role: z.enum(ROLES, { message: `must be one of ${ROLES.join(', ')}` }),
  worker_id: z.string().regex(WORKER_ID_PATTERN, WORKER_ID_RULE),
  capabilities: z.object(
    {
      device: z.string().min(1, 'must name the device ("cpu", "cuda:0", ...)').max(64),
      max_batch: z.number().int().min(1, 'must be at least 1'),
      max_in_flight: z.number().int().nonnegative(),
      tensor_dtypes: z.array(z.enum(DTYPES)),
      labels: z.record(z.string().max(128), z.string().max(1024)),
      // absent from an older worker's Hello: one task per message
      max_tasks_per_message: z.number().int().nonnegative().max(65536).default(0),
    },
    { message: 'capabilities are required' },
  ),
  policy_version: z.number().int().nonnegative().optional(),
  last_batch_seq: z.number().int().nonnegative().optional(),
  software_version: z.string().max(128),
});
export type ValidHello = z.infer<typeof HelloSchema>;

/** Formats zod issues as `prefix.path: message; ...`. */
export function formatIssues(prefix: string, error: z.ZodError): string {
  return error.issues
    .map((i) => `${[prefix, ...i.path.map(String)].join('.')}: ${i.message}`)
    .join('; ');
}

/** Validates a decoded Hello; throws an Error whose message names each bad field (`hello.worker_id: ...`). */
export function validateHello(hello: Hello__Output | null | undefined): ValidHello {
  const r = HelloSchema.safeParse(hello ?? undefined);
  if (!r.success) throw new Error(formatIssues('hello', r.error));
  return r.data;
}

/** The set members of a oneof envelope that is about to be sent; exactly one must be set. */
function setMembers(msg: object, kinds: readonly string[]): string[] {
  return kinds.filter((k) => (msg as Record<string, unknown>)[k] !== undefined && (msg as Record<string, unknown>)[k] !== null);
}

/** The one member set, or undefined when none or several are (checked without allocating: this runs per message). */
function onlyMember<K extends string>(msg: object, kinds: readonly K[]): K | undefined {
  let found: K | undefined;
  for (const k of kinds) {
    const v = (msg as Record<string, unknown>)[k];
    if (v === undefined || v === null) continue;
    if (found !== undefined) return undefined;
    found = k;
  }
  return found;
}

export function workerMessageKind(msg: WorkerMessage): WorkerMessageKind {
  const kind = onlyMember(msg, WORKER_MESSAGE_KINDS);
  if (kind !== undefined) return kind;
  const set = setMembers(msg, WORKER_MESSAGE_KINDS);
  throw new TypeError(`a WorkerMessage must set exactly one of ${WORKER_MESSAGE_KINDS.join('|')}, got ${set.length ? set.join(', ') : 'none'}`);
}

export function orchestratorMessageKind(msg: OrchestratorMessage): OrchestratorMessageKind {
  const kind = onlyMember(msg, ORCHESTRATOR_MESSAGE_KINDS);
  if (kind !== undefined) return kind;
  const set = setMembers(msg, ORCHESTRATOR_MESSAGE_KINDS);
  throw new TypeError(`an OrchestratorMessage must set exactly one of ${ORCHESTRATOR_MESSAGE_KINDS.join('|')}, got ${set.length ? set.join(', ') : 'none'}`);
}

/**
 * A ResultBundle as the messages it carries, in field order, each as if it had come alone. Throws (naming the
 * field) when it is empty or holds more than `max` (what the orchestrator's Welcome allowed).
 */
export function expandResultBundle(b: ResultBundle__Output, max: number): WorkerMessage__Output[] {
  const n = b.rollout_results.length + b.score_results.length + b.task_errors.length;
  if (n === 0) throw new Error('result_bundle: is empty');
  if (n > max) throw new Error(`result_bundle: holds ${n} results, over the ${max} this orchestrator accepts (Welcome.max_results_per_message)`);
  const out: WorkerMessage__Output[] = [];
  for (const r of b.rollout_results) out.push({ kind: 'rollout_result', rollout_result: r });
  for (const r of b.score_results) out.push({ kind: 'score_result', score_result: r });
  for (const e of b.task_errors) out.push({ kind: 'task_error', task_error: e });
  return out;
}

/** A TaskBundle as the messages it carries, in field order; throws when it is empty or holds more than `max` (the worker's ask). */
export function expandTaskBundle(b: TaskBundle__Output, max: number): OrchestratorMessage__Output[] {
  const n = b.rollout_tasks.length + b.score_tasks.length;
  if (n === 0) throw new Error('task_bundle: is empty');
  if (n > max) throw new Error(`task_bundle: holds ${n} tasks, over the ${max} this worker asked for (capabilities.max_tasks_per_message)`);
  const out: OrchestratorMessage__Output[] = [];
  for (const t of b.rollout_tasks) out.push({ kind: 'rollout_task', rollout_task: t });
  for (const t of b.score_tasks) out.push({ kind: 'score_task', score_task: t });
  return out;
}

/** Tasks one message may carry to a worker that says `hello`: its ask, at least 1. */
export function tasksPerMessage(capabilities: { max_tasks_per_message?: number | null }): number {
  return Math.max(1, capabilities.max_tasks_per_message ?? 0);
}

export interface ResolvedRolloutItem {
  sample_id: string;
  group_index: number;
  /** uint64 as a decimal string (lossless). */
  noise_seed: string;
  /** [3,H,W]; items of the same sample share one decoded object. */
  image: HostTensor;
}

/**
 * Decodes a RolloutTask's items, applying the image-sharing rule: the first item of each sample_id carries
 * the image, later items of the same sample_id may omit it (and reuse the first one's).
 */
export function resolveRolloutItems(
  task: RolloutTask__Output,
  opts: Omit<DecodeOptions, 'field' | 'expectShape'> = {},
): ResolvedRolloutItem[] {
  const images = new Map<string, HostTensor>();
  return task.items.map((item, i) => {
    const field = `rollout_task.items[${i}]`;
    if (!item.sample_id) throw new Error(`${field}.sample_id: is empty`);
    let image = images.get(item.sample_id);
    if (item.image) {
      image = decodeTensor(item.image, { ...opts, field: `${field}.image`, expectShape: [3, null, null] });
      images.set(item.sample_id, image);
    } else if (!image) {
      throw new Error(`${field}.image: missing, and no earlier item of sample ${JSON.stringify(item.sample_id)} carries one`);
    }
    return { sample_id: item.sample_id, group_index: item.group_index, noise_seed: item.noise_seed, image };
  });
}

/**
 * Decodes a ScoreTask's candidates [N,3,H,W] and references: [N,3,H,W], or [1,3,H,W] for one reference shared by every
 * candidate, which comes back as it is. The caller repeats it where it copies the references anyway (the reward
 * worker's join of several tasks into one call), so no N-copy array is made per task in between.
 */
export function decodeScoreTask(task: ScoreTask__Output, opts: Omit<DecodeOptions, 'field' | 'expectShape'> = {}): { candidates: HostTensor; references: HostTensor } {
  const candidates = decodeTensor(task.candidates, { ...opts, field: 'score_task.candidates', expectShape: [null, 3, null, null] });
  const [n, , h, w] = candidates.shape as [number, number, number, number];
  const references = decodeTensor(task.references, { ...opts, field: 'score_task.references', expectShape: [null, 3, h, w] });
  if (references.shape[0] !== 1 && references.shape[0] !== n) {
    throw new Error(`score_task.references: has ${references.shape[0]} images, expected 1 or ${n} (one per candidate)`);
  }
  return { candidates, references };
}
