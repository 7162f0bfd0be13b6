// A follower's join (CheckpointStore.watch) runs the young generation's first scavenges (read-memory.ts
// settleYoungGeneration), so that the first pushed checkpoints do not pay them; a watch that joins later does not run
// them again. Its own file: the scavenges run once per process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSpaceStatistics } from 'node:v8';
import { natsForFile } from '../helpers/nats.ts';
import { CheckpointStore } from '../../lib/transport/nats.ts';
import { settleYoungGeneration } from '../../lib/transport/read-memory.ts';

const shared = natsForFile('join-scavenge');

const youngBytes = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_used_size;

test('watch() promotes what is alive in the young generation at the join, once per process', async () => {
  const store = await CheckpointStore.open(shared.nc, { runId: 'join-scavenge' });
  // ~2 MB of small live objects in the young generation, as a follower's start leaves
  const alive = Array.from({ length: 20_000 }, (_, i) => ({ i, s: `object ${i}`, a: [i, i + 1] }));
  assert.ok(youngBytes() > 1_000_000, `the objects are young (${youngBytes()} bytes in new space)`);
  const watch = await store.watch();
  try {
    // the little that watch() allocates after its scavenges stays young; the 2 MB were promoted
    assert.ok(youngBytes() < 500_000, `promoted at the join: ${youngBytes()} bytes left in new space`);
    assert.equal(alive.length, 20_000);
    assert.equal(settleYoungGeneration(), false, 'the join already ran them');
    const second = await store.watch();
    await second.stop();
  } finally {
    await watch.stop();
  }
});
