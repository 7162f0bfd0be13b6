// An object store bucket's records (deleted ones included) without trusting an empty answer.
//
// nats.js's os.list() (ObjectStoreImpl.watch) first asks the server for the last message on $O.<bucket>.M.>
// (STREAM.MSG.GET last_by_subj with a wildcard) and, on a 404, answers [] without listing anything. A server
// that answers that lookup 404 while the stream holds records (seen once on nats-server 2.10.27, opened over a
// store directory another server was still using: docs/reliability.md) thus makes a full bucket look empty,
// and an empty listing is a plausible answer: the learner would prune nothing, the orchestrator would refuse a
// learner's claimed progress. So an empty listing is checked against the stream's own count of record subjects;
// while they disagree it is asked again (bounded), then each record is read on its own (literal) subject, the
// lookup os.info() uses; if that finds none either, a clear error.
import { setTimeout as sleep } from 'node:timers/promises';
import type { JetStreamManager, ObjectInfo, ObjectStore } from 'nats';

export interface ListingOptions {
  /** Listings asked again after an empty one while the stream holds records (default 2). */
  retries?: number;
  /** Wait before the first retry, doubled for each next one (default 200 ms). */
  retryMs?: number;
  /** Told when the listing was not trusted (how it was resolved). */
  onEmpty?: (why: string) => void;
}

/** Per-subject reads at a time in the fallback. */
const READ_CONCURRENCY = 32;

/** The subjects in `stream` that hold records of `bucket` (one per object name, its last record), per the stream's state. */
async function recordSubjects(jsm: JetStreamManager, stream: string, bucket: string): Promise<string[]> {
  const info = await jsm.streams.info(stream, { subjects_filter: `$O.${bucket}.M.>` });
  return Object.keys(info.state.subjects ?? {});
}

/** Every record of `bucket` (stream `stream`), deleted objects' included, as os.list() answers when it works. */
export async function listObjectRecords(os: ObjectStore, jsm: JetStreamManager, stream: string, bucket: string, o: ListingOptions = {}): Promise<ObjectInfo[]> {
  const retries = o.retries ?? 2;
  const retryMs = o.retryMs ?? 200;
  let subjects: string[] = [];
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(retryMs * 2 ** (attempt - 1));
    const list = await os.list();
    if (list.length) {
      if (attempt > 0) o.onEmpty?.(`object listing of ${bucket} came back empty while its stream holds ${subjects.length} record subjects; listed ${list.length} on retry ${attempt}`);
      return list;
    }
    subjects = await recordSubjects(jsm, stream, bucket);
    if (!subjects.length) return [];
  }
  const records: ObjectInfo[] = [];
  for (let i = 0; i < subjects.length; i += READ_CONCURRENCY) {
    const read = await Promise.all(subjects.slice(i, i + READ_CONCURRENCY).map((s) => readRecord(jsm, stream, s)));
    for (const r of read) if (r) records.push(r);
  }
  if (!records.length) {
    throw new Error(`object listing of ${bucket}: empty ${retries + 1} times, and none of the ${subjects.length} record subjects stream ${stream} says it holds could be read: ` +
      'the server does not answer for its own records (JetStream still recovering, or its store directory used by another server?)');
  }
  o.onEmpty?.(`object listing of ${bucket} came back empty ${retries + 1} times while its stream holds ${subjects.length} record subjects; read ${records.length} records one subject at a time`);
  return records;
}

/** The last record on one (literal) record subject, or null where the server has none. */
async function readRecord(jsm: JetStreamManager, stream: string, subject: string): Promise<ObjectInfo | null> {
  try {
    const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    return m.json<ObjectInfo>();
  } catch (e) {
    if ((e as { code?: string }).code === '404' || /no message found/i.test((e as Error).message)) return null;
    throw e;
  }
}
