// checkAnnouncement (lib/transport/nats.ts), the written-out AnnouncementSchema a follower parses each announcement
// with: for every input it accepts exactly what the schema accepts, with the schema's output, and leaves the rest
// to the schema (undefined). The schema is the reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnnouncementSchema, checkAnnouncement } from '../../lib/transport/nats.ts';

const good = {
  run_id: 'run-1',
  version: 12,
  name: 'v0000000012',
  digest: `sha256:${'ab'.repeat(32)}`,
  size: 1_200_265,
  meta: { step: 12, last_batch_id: null, config_hash: 'c', signature: 'x' },
  published_unix_ms: 1_796_495_581_145,
};

/** Inputs around each field's rule, as JSON would give them (and a few JSON cannot). */
function cases(): unknown[] {
  const out: unknown[] = [good, null, 7, 'x', [], [good], { ...good, extra: 1 }, JSON.parse(JSON.stringify(good))];
  const values: unknown[] = [undefined, null, true, 0, -0, 1, -1, 1.5, 2 ** 53 - 1, 2 ** 53, 1e21, -1e-9, NaN, Infinity, '', 'v', '12', [], {}, [1], { a: 1 }];
  for (const key of Object.keys(good)) {
    for (const v of values) out.push({ ...good, [key]: v });
    const { [key as keyof typeof good]: _, ...without } = good;
    out.push(without);
  }
  for (const d of [`sha256:${'AB'.repeat(32)}`, `sha256:${'ab'.repeat(31)}`, `sha256:${'ab'.repeat(32)}0`, `sha1:${'ab'.repeat(32)}`, ` sha256:${'ab'.repeat(32)}`]) out.push({ ...good, digest: d });
  out.push({ ...good, meta: Object.create(null) as object }, { ...good, meta: new Map() }, { ...good, meta: new Date(0) });
  out.push({ ...good, meta: JSON.parse('{"__proto__": {"polluted": 1}, "a": 2}') as object });
  out.push({ ...good, meta: { nested: { deep: [1, 2, { x: null }] } } });
  return out;
}

test('checkAnnouncement accepts exactly what AnnouncementSchema accepts, with its output', () => {
  // the written-out check knows these seven fields: a field added to the schema, optional or not, must be added there
  assert.deepEqual(Object.keys(AnnouncementSchema.shape), Object.keys(good), 'AnnouncementSchema has other fields than checkAnnouncement checks');
  let accepted = 0;
  let deferred = 0;
  for (const input of cases()) {
    const ref = AnnouncementSchema.safeParse(input);
    const fast = checkAnnouncement(input);
    const what = JSON.stringify(input, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
    if (fast === undefined) {
      deferred++;
      continue; // the schema decides (and says why when it refuses)
    }
    assert.ok(ref.success, `checkAnnouncement accepted what the schema refuses: ${what}`);
    assert.deepEqual(fast, ref.data, `another output than the schema's for ${what}`);
    assert.deepEqual(Object.keys(fast), Object.keys(ref.data), `another key order than the schema's for ${what}`);
    accepted++;
  }
  // it must take the ordinary announcements itself, or it saves nothing
  assert.ok(accepted >= 10, `accepted only ${accepted}`);
  assert.ok(deferred >= 50, `deferred only ${deferred}`);
});

test('checkAnnouncement returns a meta object of its own (the announcement does not alias its input)', () => {
  const input = JSON.parse(JSON.stringify(good)) as typeof good;
  const ann = checkAnnouncement(input);
  assert.ok(ann);
  assert.notEqual(ann.meta, input.meta);
  assert.deepEqual(ann.meta, input.meta);
});

test('every valid announcement the schema accepts is taken by checkAnnouncement (no fall-back on the common path)', () => {
  for (const v of [0, 1, 12, 2 ** 40]) {
    for (const meta of [{}, good.meta, { step: v, last_batch_id: 'b-1', config_hash: 'h', lr: 0.001 }]) {
      const input = { ...good, version: v, size: v, meta };
      assert.ok(AnnouncementSchema.safeParse(input).success);
      assert.deepEqual(checkAnnouncement(input), AnnouncementSchema.parse(input));
    }
  }
});
