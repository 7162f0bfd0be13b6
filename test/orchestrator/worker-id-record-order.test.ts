// TrainBatch.worker_ids keeps at most WORKER_ID_RECORD_QUARANTINED_MAX quarantined ids (lib/transport/worker-id-record.ts):
// when it cuts, the oldest quarantined stay (the order they were quarantined), not the alphabetically first
// (review33 F5). The record is built as the coordinator builds it: workerIdRecord over Quarantine.oldestFirst().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../lib/metrics/index.ts';
import { Quarantine } from '../../orchestrator/quarantine.ts';
import { workerIdRecord, WORKER_ID_RECORD_QUARANTINED_MAX } from '../../lib/transport/index.ts';

test('the worker-id record cut to its cap keeps the oldest quarantined ids, in the order they were quarantined', () => {
  // quarantined in descending name order: alphabetical order would keep the newest instead
  const older = Array.from({ length: WORKER_ID_RECORD_QUARANTINED_MAX + 10 }, (_, i) => `w${String(999 - i).padStart(4, '0')}`);
  const q = new Quarantine({ after: 1, window: 0, metrics: createMetrics('wid-order', 'orchestrator'), log: () => undefined, close: () => undefined, restored: older });
  q.restore(['a-newest']);
  const sent = workerIdRecord({ quarantined: q.oldestFirst(), boundIds: {} }).quarantined;
  assert.deepEqual(sent, older.slice(0, WORKER_ID_RECORD_QUARANTINED_MAX));
  assert.ok(!sent!.includes('a-newest'), 'the newest quarantined id is the one cut');
});
