// The digest of a TrainBatch's content (TrainResult.batch_digest, docs/reliability.md "A TrainResult names its
// batch by content"). The learner computes it over the batch it answers and echoes it; the orchestrator computes it
// over the batch it holds under that seq and takes the result as that batch's (its acknowledgement, the attribution of
// its excluded actions) only when the two agree.
//
// Not a hash of the encoded bytes: the learner only sees the decoded message, the orchestrator has two wire codecs
// (lib/transport/wire-codec.ts and proto-loader), and protobuf encoding is not canonical (field order, packed or not,
// zero values written or left out), so the same content may travel as different bytes. Instead SHA-256 over a
// canonical form of every field the learner reads, taking proto3 semantics (a zero scalar, an empty repeated field and
// an absent one are the same; an absent message differs from an empty one), so the sender's object (TrainBatch) and
// the receiver's decoded one (TrainBatch__Output) give the same digest:
//   "recovery.TrainBatch.digest.v1\0", then per field in field-number order that is present (non-zero):
//   u32 field number, then: string -> u32 byte length + UTF-8; uint32 -> u32; enum -> its name as a string;
//   repeated uint32 -> u32 count + each u32; repeated string -> u32 count + each string;
//   Tensor -> its dtype string, u32 rank + each dimension as a decimal string, u64 byte length + data;
//   FlowRows -> its own fields the same way, then u32 0xffffffff (end of the message).
// All integers little-endian. Left out: lease_ms (field 4: how long the learner may take, not what it trains) and
// rollout_workers (field 20, round 32: who rolled out each group, which the learner only reports back; an older
// learner drops it, and must compute the digest the orchestrator does) and worker_ids (field 21, round 33: the
// orchestrator's quarantine and worker-id bindings, which the learner only records in its checkpoints; likewise).
// Any other field added to TrainBatch must be added here (and the v1 tag changed if an existing field's form changes).
import { createHash, type Hash } from 'node:crypto';
import type { TrainBatch, TrainBatch__Output, Tensor, Tensor__Output, FlowRows, FlowRows__Output } from './proto.ts';

const TAG = 'recovery.TrainBatch.digest.v1\0';
const END = 0xffffffff;
const KIND_NAMES = ['TRAIN_KIND_UNSPECIFIED', 'SFT', 'GRPO'] as const;

type AnyTensor = Tensor | Tensor__Output | null | undefined;
type AnyFlowRows = FlowRows | FlowRows__Output | null | undefined;

class Writer {
  constructor(readonly h: Hash) {}
  u32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n >>> 0);
    this.h.update(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u32(b.length);
    this.h.update(b);
  }
  bytes(b: Uint8Array): void {
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(b.length));
    this.h.update(n);
    this.h.update(b);
  }
}

function str(w: Writer, field: number, v: string | null | undefined): void {
  if (!v) return;
  w.u32(field);
  w.str(v);
}

function uint(w: Writer, field: number, v: number | null | undefined): void {
  if (!v) return;
  w.u32(field);
  w.u32(v);
}

function uints(w: Writer, field: number, v: readonly number[] | null | undefined): void {
  if (!v?.length) return;
  w.u32(field);
  w.u32(v.length);
  for (const x of v) w.u32(x);
}

function strings(w: Writer, field: number, v: readonly string[] | null | undefined): void {
  if (!v?.length) return;
  w.u32(field);
  w.u32(v.length);
  for (const x of v) w.str(x);
}

function tensor(w: Writer, field: number, t: AnyTensor): void {
  if (t === null || t === undefined) return;
  w.u32(field);
  w.str(t.dtype ?? '');
  const shape = t.shape ?? [];
  w.u32(shape.length);
  for (const d of shape) w.str(String(d)); // number, decimal string (longs: String) or Long: the same decimal
  const data = t.data ?? new Uint8Array(0);
  w.bytes(typeof data === 'string' ? Buffer.from(data, 'base64') : data); // a string for bytes is base64 (protobufjs)
}

function flowRows(w: Writer, field: number, f: AnyFlowRows): void {
  if (f === null || f === undefined) return;
  w.u32(field);
  uints(w, 1, f.action_index);
  uints(w, 2, f.step_index);
  tensor(w, 3, f.t);
  tensor(w, 4, f.t_next);
  tensor(w, 5, f.a);
  tensor(w, 6, f.x);
  tensor(w, 7, f.x_next);
  tensor(w, 8, f.logp_old);
  w.u32(END);
}

/** "sha256:<64 hex>" of `b`'s content (see the head of this file); the same for a TrainBatch and its decoded form. */
export function trainBatchDigest(b: TrainBatch | TrainBatch__Output): string {
  const w = new Writer(createHash('sha256'));
  w.h.update(TAG);
  str(w, 1, b.batch_id);
  uint(w, 2, b.batch_seq);
  const kind = typeof b.kind === 'number' ? KIND_NAMES[b.kind] ?? String(b.kind) : b.kind;
  if (kind && kind !== 'TRAIN_KIND_UNSPECIFIED') str(w, 3, kind);
  tensor(w, 5, b.images);
  tensor(w, 6, b.targets);
  tensor(w, 7, b.actions);
  tensor(w, 8, b.logp_old);
  tensor(w, 9, b.advantages);
  uints(w, 10, b.behaviour_versions);
  strings(w, 11, b.sample_ids);
  uints(w, 12, b.group_indices);
  tensor(w, 14, b.advantage_map);
  flowRows(w, 15, b.flow_rows);
  tensor(w, 16, b.identity_advantages);
  tensor(w, 17, b.identity_advantage_map);
  tensor(w, 18, b.distinct_images);
  uints(w, 19, b.image_rows);
  return `sha256:${w.h.digest('hex')}`;
}
