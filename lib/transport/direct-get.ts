// JetStream direct gets (`$JS.API.DIRECT.GET.<stream>`): one stored message per request, answered by the stream
// itself, no consumer. The roles that only read checkpoints read this way, so that their NATS grant needs no
// CONSUMER.CREATE: a push consumer's deliver_subject is not checked against its creator's publish permissions
// (nats-server 2.9/2.10, nats-io/nats-server#8274), so a credential that could make consumers could have any stream's
// messages delivered into the announcement subject (docs/security.md, "Readers make no consumers").
//
// Needs `allow_direct: true` on the stream: nats.js's object stores set it; CheckpointStore.open turns it on where an
// older bucket lacks it (the owner's credential may update the stream, a reader's may not). The announcement stream
// answers none: a direct get's reply subject is unchecked (docs/security.md).
import type { NatsConnection } from 'nats';

export interface DirectMessage {
  subject: string;
  seq: number;
  data: Uint8Array;
}

/** What to read: the last message on a (literal) subject, or the first one on `next_by_subj` at or after `seq`. */
export type DirectQuery = { last_by_subj: string } | { seq: number; next_by_subj: string };

/**
 * How long one direct get waits for its message by default, and, made while the connection is down, for the
 * reconnect (nats-disconnect.ts): nats.js's JetStream API default. A chunk read waits longer for a large chunk
 * (object-chunks.ts MIN_READ_BYTES_PER_MS).
 */
export const DIRECT_GET_TIMEOUT_MS = 5000;

/**
 * The message `query` names in `stream`, or null when the stream holds none. Errors name the stream and the query;
 * a stream that does not answer direct gets (allow_direct off) is said to be so. A dropped connection fails the
 * request with a NatsDisconnectedError where the connection is guarded (nats-disconnect.ts).
 */
export async function directGet(nc: NatsConnection, stream: string, query: DirectQuery, timeoutMs = DIRECT_GET_TIMEOUT_MS): Promise<DirectMessage | null> {
  // last_by_subj goes in the subject (so that permissions can name it), the rest in the body
  const [subject, body] = 'last_by_subj' in query
    ? [`$JS.API.DIRECT.GET.${stream}.${query.last_by_subj}`, new Uint8Array(0)]
    : [`$JS.API.DIRECT.GET.${stream}`, new TextEncoder().encode(JSON.stringify(query))];
  const what = () => `direct get of ${JSON.stringify(query)} from stream ${stream}`;
  let m;
  try {
    m = await nc.request(subject, body, { timeout: timeoutMs });
  } catch (e) {
    if ((e as { code?: string }).code === '503') {
      throw new Error(`${what()}: nobody answers (the stream is missing, or was made without allow_direct: the learner turns it on when it opens the store)`, { cause: e });
    }
    throw e;
  }
  const h = m.headers;
  if (m.data.length === 0 && h && h.code !== 0) {
    if (h.code === 404) return null;
    throw new Error(`${what()}: ${h.code} ${h.description}`);
  }
  const seq = Number(h?.get('Nats-Sequence'));
  const subj = h?.get('Nats-Subject') ?? '';
  if (!Number.isSafeInteger(seq) || seq < 1 || !subj) throw new Error(`${what()}: the reply has no Nats-Sequence/Nats-Subject headers (not a direct get reply)`);
  return { subject: subj, seq, data: m.data };
}
