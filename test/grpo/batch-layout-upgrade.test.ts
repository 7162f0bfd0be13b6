// The batch layout across releases (review26d F2, round 26): the layout records every data.* leaf of the parsed
// configuration, defaults included. A data.* field that a later release adds with a default that keeps the old
// behaviour (as data.augment=false and data.valImages=0 were added in earlier rounds) is missing from every layout
// stored before it; counted as changed, it made every run stored by the older release un-resumable after the upgrade
// (the orchestrator's start refused it: exit 78, "data.augment: (unset) -> false"), and a checkpoint written by an
// upgraded learner failed a running orchestrator at the next Hello catch-up. A field present on one side only is now
// equal when the value present is the field's schema default. Also: data.corruptions.types compares as the set of
// types it draws (checked against the dataset: the same samples), and an unreadable extra.batch_layout (review26d F3)
// is reported as unreadable, not as a change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type RunConfig } from '../../lib/config/index.ts';
import { openRunDataset } from '../../lib/config/dataset.ts';
import { CORRUPTION_TYPES } from '../../lib/data/corruptions.ts';
import { BATCH_LAYOUT_META_KEY, batchLayout, compareLayouts, layoutDifferences, parseBatchLayout } from '../../lib/grpo/sampling.ts';
import { checkCheckpointLayout } from '../../orchestrator/layout-guard.ts';

const input = {
  run: { id: 'layout-upgrade', seed: 1 },
  data: { size: 16, source: { kind: 'procedural', count: 16 } },
  model: { width: 4, depth: 1 },
  sft: { steps: 3, batchSize: 2 },
  grpo: { steps: 2, groupSize: 2, samplesPerBatch: 2 },
};
const config = parseConfig(input);
const withData = (data: Record<string, unknown>): RunConfig => parseConfig({ ...structuredClone(input), data: { ...structuredClone(input.data), ...data } });

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
  // before the fix: [ 'data.augment: (unset) -> false', 'data.valImages: (unset) -> 0' ]: the restart was refused
  assert.deepEqual(layoutDifferences(olderLayout(), batchLayout(config)), []);
  const c = compareLayouts(olderLayout(), batchLayout(config));
  assert.deepEqual(c.defaulted, ["data.augment (absent from the run's layout; false is its default)", "data.valImages (absent from the run's layout; 0 is its default)"]);
  // and the other way: an older orchestrator's configuration against a newer learner's layout
  assert.deepEqual(compareLayouts(batchLayout(config), olderLayout()).changed, []);
});

test('review26d F2: a field missing on one side whose value on the other is not its default is a change', () => {
  const augmented = batchLayout(withData({ augment: true }));
  assert.deepEqual(layoutDifferences(olderLayout(), augmented), ['data.augment: (unset) -> true']);
  // a field without a default (optional): present on one side only is a change
  assert.deepEqual(layoutDifferences({ 'data.size': 16 }, { 'data.size': 16, 'data.evalSize': 8 }), ['data.evalSize: (unset) -> 8']);
  // a field the schema does not have (removed by a release): a change, whatever its value
  assert.deepEqual(layoutDifferences({ 'data.gone': false }, {}), ['data.gone: false -> (unset)']);
});

test('review26d F2: an older learner checkpoint layout of the same samples does not fail the run at a Hello catch-up', () => {
  const meta = { [BATCH_LAYOUT_META_KEY]: JSON.stringify(olderLayout()), last_batch_seq: '3' };
  const c = checkCheckpointLayout(meta, 4, batchLayout(config));
  assert.equal(c.kind, 'compared');
  assert.deepEqual(c.kind === 'compared' && c.changed, []);
});

/** What cursors 0..9 name: each sample's id and a checksum of its corrupted pixels. */
async function named(c: RunConfig): Promise<string[]> {
  const ds = await openRunDataset(c, 'train');
  const out: string[] = [];
  for (let cursor = 0; cursor < 10; cursor++) {
    const s = await ds.sample(cursor);
    let sum = 0;
    for (let i = 0; i < s.corrupted.data.length; i += 7) sum += s.corrupted.data[i]!;
    out.push(`${s.id}:${sum}`);
  }
  return out;
}

test("review26d F2: data.corruptions.types 'all' and the list of all types (in any order) are the same layout, and name the same samples", async () => {
  const all = withData({});
  const listed = withData({ corruptions: { types: [...CORRUPTION_TYPES].reverse() } });
  assert.deepEqual(layoutDifferences(batchLayout(all), batchLayout(listed)), []);
  assert.deepEqual(await named(listed), await named(all));
  // a subset in another order: the same set, the same samples
  const two = withData({ corruptions: { types: ['motion_blur', 'gaussian_noise'] } });
  const owt = withData({ corruptions: { types: ['gaussian_noise', 'motion_blur'] } });
  assert.deepEqual(layoutDifferences(batchLayout(two), batchLayout(owt)), []);
  assert.deepEqual(await named(two), await named(owt));
  // a list short of one type differs, and names other samples
  const fifteen = withData({ corruptions: { types: CORRUPTION_TYPES.slice(1) } });
  assert.equal(layoutDifferences(batchLayout(all), batchLayout(fifteen)).length, 1);
  assert.match(layoutDifferences(batchLayout(all), batchLayout(fifteen))[0]!, /^data\.corruptions\.types: "all" -> \[/);
  assert.notDeepEqual(await named(fifteen), await named(all));
});

test('review26d F3: an unreadable extra.batch_layout is reported as unreadable (not as a change), naming what is wrong', () => {
  const layout = batchLayout(config);
  const check = (v: unknown) => checkCheckpointLayout({ [BATCH_LAYOUT_META_KEY]: v, last_batch_seq: '3' }, 7, layout);
  assert.deepEqual(check(42), { kind: 'unreadable', reason: "checkpoint v7's extra.batch_layout: not a string" });
  const cases: Array<[string, RegExp]> = [
    ['{not json', /not JSON/],
    ['[1,2]', /not a JSON object/],
    ['"a string"', /not a JSON object/],
    ['{}', /no numeric run\.seed/],
    [JSON.stringify({ 'run.seed': 1, data: { size: 16 } }), /field "data" is an object, not a leaf value/],
    [JSON.stringify({ 'run.seed': 1, 'data.size': null }), /field "data\.size" is null/],
  ];
  for (const [text, why] of cases) {
    const c = check(text);
    assert.equal(c.kind, 'unreadable', text);
    assert.match(c.kind === 'unreadable' ? c.reason : '', why, text);
    assert.match(c.kind === 'unreadable' ? c.reason : '', /^checkpoint v7's extra\.batch_layout: /);
  }
  assert.deepEqual(check(undefined), { kind: 'absent' });
  assert.ok(!(parseBatchLayout(JSON.stringify(layout), 'x') instanceof Error), 'a genuine layout reads back');
});

test('a corruption weight of 1 is the same layout as no weight for that type (types not listed weigh 1), and names the same samples; any other weight is a change', async () => {
  const none = withData({});
  const one = withData({ corruptions: { weights: { gaussian_noise: 1 } } });
  const c = compareLayouts(batchLayout(none), batchLayout(one));
  assert.deepEqual(c.changed, []);
  assert.deepEqual(c.defaulted, ["data.corruptions.weights.gaussian_noise (absent from the run's layout; 1 is its default)"]);
  assert.deepEqual(await named(one), await named(none));
  // with a list of types too, either side
  const two = withData({ corruptions: { types: ['motion_blur', 'gaussian_noise'] } });
  const twoOne = withData({ corruptions: { types: ['motion_blur', 'gaussian_noise'], weights: { motion_blur: 1 } } });
  assert.deepEqual(layoutDifferences(batchLayout(twoOne), batchLayout(two)), []);
  assert.deepEqual(await named(twoOne), await named(two));
  // weight 3 draws that type three times as often: other samples, a change
  const three = withData({ corruptions: { weights: { gaussian_noise: 3 } } });
  assert.deepEqual(layoutDifferences(batchLayout(none), batchLayout(three)), ['data.corruptions.weights.gaussian_noise: (unset) -> 3']);
  assert.notDeepEqual(await named(three), await named(none));
});
