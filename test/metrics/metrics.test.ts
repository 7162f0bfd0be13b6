import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CATALOGUE, METRIC_PREFIX, createMetrics, startMetricsServer, type Health } from '../../lib/metrics/index.ts';

test('catalogue: valid, prefixed, conventional names', () => {
  const names = Object.keys(CATALOGUE);
  assert.equal(new Set(names).size, names.length);
  for (const [name, spec] of Object.entries(CATALOGUE)) {
    assert.match(METRIC_PREFIX + name, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
    if (spec.type === 'counter') assert.match(name, /_total$/, `${name}: counters end in _total`);
    else assert.doesNotMatch(name, /_total$/, `${name}: only counters end in _total`);
    for (const l of spec.labels as readonly string[]) assert.ok(l !== 'run_id' && l !== 'role', `${name}: label ${l} collides with a default label`);
    if (spec.type === 'histogram') assert.ok('buckets' in spec && spec.buckets.length > 0, `${name}: histogram needs buckets`);
    assert.ok(spec.help.length > 10);
  }
});

test('scrape /metrics over HTTP: run_id and role on every series, only used metrics; /health follows state', async () => {
  const m = createMetrics('run-42', 'learner', { processMetrics: false });
  m.get('policy_version').set(7);
  m.get('train_steps_total').inc({ kind: 'grpo' });
  m.get('staleness').observe(1);
  m.get('reward_component').observe({ component: 'ssim' }, 0.93);
  assert.equal(m.get('policy_version'), m.get('policy_version'));
  let state: Health = { ok: true, detail: { version: 7 } };
  const server = await startMetricsServer({ port: 0, registry: m.registry, health: () => state });
  try {
    const res = await fetch(`${server.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /text\/plain/);
    const text = await res.text();
    const samples = text.split('\n').filter((l) => l && !l.startsWith('#'));
    assert.ok(samples.length > 0);
    for (const line of samples) {
      assert.match(line, /^recovery_grpo_/, line);
      const labels = /\{(.*)\}/.exec(line)?.[1] ?? '';
      assert.match(labels, /(^|,)run_id="run-42"(,|$)/, line);
      assert.match(labels, /(^|,)role="learner"(,|$)/, line);
    }
    assert.ok(samples.some((l) => /^recovery_grpo_policy_version\{.*\} 7$/.test(l)));
    assert.ok(samples.some((l) => /^recovery_grpo_train_steps_total\{kind="grpo",.*\} 1$/.test(l)));
    assert.ok(samples.some((l) => l.startsWith('recovery_grpo_reward_component_bucket{') && l.includes('component="ssim"') && l.includes('le="0.95"') && l.endsWith(' 1')));
    assert.ok(!text.includes('recovery_grpo_queue_depth'), 'unused metrics are not exported');

    let h = await fetch(`${server.url}/health`);
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { ok: true, detail: { version: 7 } });
    state = { ok: false, detail: 'learner stream closed' };
    h = await fetch(`${server.url}/health`);
    assert.equal(h.status, 503);
    assert.deepEqual(await h.json(), { ok: false, detail: 'learner stream closed' });
    const throwing = await startMetricsServer({ port: 0, registry: m.registry, health: () => { throw new Error('boom'); } });
    const t = await fetch(`${throwing.url}/health`);
    assert.equal(t.status, 503);
    assert.match((await t.json()).detail, /boom/);
    await throwing.close();
    assert.equal((await fetch(`${server.url}/nope`)).status, 404);
  } finally {
    await server.close();
  }
});

test('two processes in one test: registries are independent; process metrics carry the labels too', async () => {
  const a = createMetrics('r', 'orchestrator');
  const b = createMetrics('r', 'rollout', { processMetrics: false });
  a.get('workers_connected').set({ worker_role: 'rollout' }, 2);
  b.get('rollouts_total').inc(8);
  const ta = await a.registry.metrics();
  const tb = await b.registry.metrics();
  assert.match(ta, /recovery_grpo_workers_connected\{worker_role="rollout",run_id="r",role="orchestrator"\} 2/);
  assert.match(ta, /process_cpu_user_seconds_total\{run_id="r",role="orchestrator"\}/);
  assert.ok(!ta.includes('rollouts_total'));
  assert.match(tb, /recovery_grpo_rollouts_total\{run_id="r",role="rollout"\} 8/);
});

// Type-level: label names are checked against the catalogue (tsc fails if these stop being errors).
export function _typeChecks(): void {
  const m = createMetrics('r', 'learner');
  m.get('train_steps_total').inc({ kind: 'sft' });
  // @ts-expect-error: 'bogus' is not a label of train_steps_total
  m.get('train_steps_total').inc({ bogus: 'x' });
  // @ts-expect-error: not in the catalogue
  m.get('not_a_metric');
  // @ts-expect-error: counters cannot be set
  m.get('rollouts_total').set(1);
}
