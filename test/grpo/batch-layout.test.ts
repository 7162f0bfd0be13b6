// The batch layout (lib/grpo/sampling.ts batchLayout): the fields the run state and each checkpoint record so that a
// restart under a configuration naming other samples under the same batch numbers is refused (review26c F2). Checked
// against what a batch number actually names: the cursors (sftCursors/grpoCursors) and the sample under each cursor
// from the real dataset (openRunDataset), for a field in the layout and for fields outside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type RunConfig } from '../../lib/config/index.ts';
import { openRunDataset } from '../../lib/config/dataset.ts';
import { batchLayout, grpoCursors, layoutDifferences, sftCursors } from '../../lib/grpo/sampling.ts';

const base = {
  run: { id: 'layout', seed: 1 },
  data: { size: 16, source: { kind: 'procedural', count: 16 } },
  model: { width: 4, depth: 1 },
  sft: { steps: 3, batchSize: 2 },
  grpo: { steps: 2, groupSize: 2, samplesPerBatch: 2 },
};
const configOf = (edit: (c: Record<string, any>) => void): RunConfig => {
  const c = structuredClone(base) as Record<string, any>;
  edit(c);
  return parseConfig(c);
};

/** What batches 1..5 name: each one's kind and samples (id, and a checksum of its corrupted pixels). */
async function named(c: RunConfig): Promise<string[]> {
  const ds = await openRunDataset(c, 'train');
  const out: string[] = [];
  for (let seq = 1; seq <= 5; seq++) {
    const kind = seq <= c.sft.steps ? 'sft' : 'grpo';
    const cursors = seq <= c.sft.steps ? sftCursors(c, seq) : grpoCursors(c, seq - c.sft.steps - 1);
    for (const cur of cursors) {
      const s = await ds.sample(cur);
      let sum = 0;
      for (let i = 0; i < s.corrupted.data.length; i += 7) sum += s.corrupted.data[i]!;
      out.push(`${seq}:${kind}:${s.id}:${sum}`);
    }
  }
  return out;
}

test('fields outside the batch layout leave every batch number naming the same samples, and the same layout', async () => {
  const a = configOf(() => undefined);
  const want = await named(a);
  for (const edit of [
    (c: Record<string, any>) => void (c.grpo.steps = 20),
    (c: Record<string, any>) => void (c.grpo.groupSize = 4),
    (c: Record<string, any>) => void (c.optim = { lr: 5e-5 }),
    (c: Record<string, any>) => void (c.orchestrator = { leaseSeconds: 120 }),
    (c: Record<string, any>) => void (c.grpo.logpTolerance = 2e-3),
  ]) {
    const b = configOf(edit);
    assert.deepEqual(layoutDifferences(batchLayout(a), batchLayout(b)), []);
    assert.deepEqual(await named(b), want);
  }
});

test('each layout field changes what some batch number names, and is named with both values', async () => {
  const a = configOf(() => undefined);
  const want = await named(a);
  const cases: Array<[string, (c: Record<string, any>) => void]> = [
    ['run.seed: 1 -> 2', (c) => void (c.run.seed = 2)],
    ['sft.steps: 3 -> 1', (c) => void (c.sft.steps = 1)],
    ['sft.batchSize: 2 -> 1', (c) => void (c.sft.batchSize = 1)],
    ['grpo.samplesPerBatch: 2 -> 1', (c) => void (c.grpo.samplesPerBatch = 1)],
    ['data.source.count: 16 -> 15', (c) => void (c.data.source.count = 15)],
    ['data.corruptions.levels: [0.23,0.45,0.9] -> [0.5]', (c) => void (c.data.corruptions = { levels: [0.5] })],
  ];
  for (const [diff, edit] of cases) {
    const b = configOf(edit);
    assert.deepEqual(layoutDifferences(batchLayout(a), batchLayout(b)), [diff]);
    assert.notDeepEqual(await named(b), want, diff);
  }
  // a field set on one side only
  assert.deepEqual(layoutDifferences({ 'data.size': 16 }, { 'data.size': 16, 'data.evalSize': 8 }), ['data.evalSize: (unset) -> 8']);
});
