// An object store bucket's records (deleted ones included), listed without a consumer.
//
// nats.js's os.list() (ObjectStoreImpl.watch) lists through an ordered consumer, and no role makes consumers
// (docs/security.md, "Readers make no consumers"; round 23: the learner neither, so that its reads cross the NATS
// account import as plain requests). Here the stream's own state names the record subjects ($O.<bucket>.M.<name>,
// one per object: each put rolls its subject up) and each record is read on its own, literal, subject (a message get
// last_by_subj: the lookup os.info() uses). That also avoids os.list()'s first lookup (the last message on the
// wildcard $O.<bucket>.M.>), which a nats-server 2.10.27 opened over a store directory another server was still
// using answered 404 while the stream held records, so os.list() answered [] for a full bucket (docs/reliability.md).
// Records the stream counts but none of which can be read are a clear error, never an empty listing.
import type { JetStreamManager, ObjectInfo } from 'nats';

/** Per-subject reads at a time. */
const READ_CONCURRENCY = 32;

/** The subjects in `stream` that hold records of `bucket` (one per object name, its last record), per the stream's state. */
async function recordSubjects(jsm: JetStreamManager, stream: string, bucket: string): Promise<string[]> {
  const info = await jsm.streams.info(stream, { subjects_filter: `$O.${bucket}.M.>` });
  return Object.keys(info.state.subjects ?? {});
}

/** Every record of `bucket` (stream `stream`), deleted objects' included, as os.list() answers. */
export async function listObjectRecords(jsm: JetStreamManager, stream: string, bucket: string): Promise<ObjectInfo[]> {
  const subjects = await recordSubjects(jsm, stream, bucket);
  const records: ObjectInfo[] = [];
  for (let i = 0; i < subjects.length; i += READ_CONCURRENCY) {
    const read = await Promise.all(subjects.slice(i, i + READ_CONCURRENCY).map((s) => readRecord(jsm, stream, s)));
    for (const r of read) if (r) records.push(r);
  }
  if (subjects.length && !records.length) {
    throw new Error(`object listing of ${bucket}: none of the ${subjects.length} record subjects stream ${stream} says it holds could be read: ` +
      'the server does not answer for its own records (JetStream still recovering, or its store directory used by another server?)');
  }
  return records;
}

/** The last record on one (literal) record subject, or null where the server has none (purged since the count). */
async function readRecord(jsm: JetStreamManager, stream: string, subject: string): Promise<ObjectInfo | null> {
  try {
    const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    return m.json<ObjectInfo>();
  } catch (e) {
    if ((e as { code?: string }).code === '404' || /no message found/i.test((e as Error).message)) return null;
    throw e;
  }
}
