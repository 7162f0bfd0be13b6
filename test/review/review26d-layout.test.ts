// review26d (round 26), finding F2: the batch layout records every data.* leaf of the parsed configuration, defaults
// included, and a field present on one side only counts as changed. A data.* field that a later release adds with a
// default that keeps the old behaviour (as data.augment=false and data.valImages=0 were added in earlier rounds) then
// makes every run stored by the older release un-resumable after the upgrade: the orchestrator's start refuses it
// (exit 78, "data.augment: (unset) -> false"), and a checkpoint written by an upgraded learner fails a running older
// orchestrator at the next Hello catch-up. These tests state what should hold; they fail on 59747a9.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { BATCH_LAYOUT_META_KEY, batchLayout, layoutDifferences } from '../../lib/grpo/sampling.ts';
import { checkpointLayoutChanges } from '../../orchestrator/main.ts';

const config = parseConfig({
  run: { id: 'layout-upgrade', seed: 1 },
  data: { size: 16, source: { kind: 'procedural', count: 16 } },
  model: { width: 4, depth: 1 },
  sft: { steps: 3, batchSize: 2 },
  grpo: { steps: 2, groupSize: 2, samplesPerBatch: 2 },
});

/** The layout an older release recorded: the same configuration, before data.augment and data.valImages existed. */
function olderLayout(): Record<string, unknown> {
  const l = { ...batchLayout(config) };
  assert.equal(l['data.augment'], false, 'the default is recorded');
  assert.equal(l['data.valImages'], 0, 'the default is recorded');
  delete l['data.augment'];
  delete l['data.valImages'];
  return l;
}

test('review26d F2: a stored layout without a field a later release added at its behaviour-preserving default is the same layout', () => {
  // on 59747a9: [ 'data.augment: (unset) -> false', 'data.valImages: (unset) -> 0' ]: the restart is refused
  assert.deepEqual(layoutDifferences(olderLayout(), batchLayout(config)), []);
});

test('review26d F2: an older learner checkpoint layout of the same samples does not fail the run at a Hello catch-up', () => {
  const meta = { [BATCH_LAYOUT_META_KEY]: JSON.stringify(olderLayout()), last_batch_seq: '3' };
  // on 59747a9 the differences are listed, and publishedProgress throws the exit-78 SetupError
  assert.deepEqual(checkpointLayoutChanges(meta, 4, batchLayout(config)), []);
});
