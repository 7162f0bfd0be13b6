// The orchestrator's run monitor without a run: history thinning, routes, and the periodic evaluator's schedule
// (every N versions, one at a time, a due one skipped and counted while another runs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config/index.ts';
import { createMetrics } from '../../lib/metrics/index.ts';
import { PeriodicEvaluator } from '../../lib/eval/periodic.ts';
import type { CheckpointStore } from '../../lib/transport/index.ts';
import { MAX_POINTS, RunMonitor } from '../../orchestrator/monitor.ts';

const config = loadConfig(undefined, ['sft.steps=100', 'grpo.steps=9900', 'eval.everyVersions=10']);
const state = () => ({ phase: 'grpo', ackedBatch: 1, totalBatches: 10000, version: 1, workers: [{ role: 'ROLLOUT', workerId: 'r0', device: 'cpu' }] });

test('history: thinned evenly to at most MAX_POINTS over the whole run; progress lines go to the event log', async () => {
  const lines: Record<string, unknown>[] = [];
  const m = new RunMonitor({ config, state, appendEvent: (e) => lines.push(e) });
  for (let seq = 1; seq <= 10000; seq++) {
    const grpo = seq > 100;
    m.progress({ phase: grpo ? 'grpo' : 'sft', seq, totalSeq: 10000, version: seq, loss: 0.1, samplesPerSecond: 1, ...(grpo ? { reward: 0.9, components: { ssim: 0.8, clip_cos: 0.9 }, kl: 0, clipFraction: 0 } : {}) });
  }
  assert.equal(lines.length, 10000, 'every batch in the event log');
  assert.ok(m.points.length <= MAX_POINTS && m.points.length > MAX_POINTS / 4, `${m.points.length} points`);
  assert.ok(m.points[0]!.seq < 50 && m.points.at(-1)!.seq > 9900, 'the whole run stays visible');
  const gaps = new Set(m.points.slice(1).map((p, i) => p.seq - m.points[i]!.seq));
  assert.equal(gaps.size, 1, 'evenly spaced');
  const routes = m.routes();
  const h = JSON.parse(String((await routes['/api/history']!(new URL('http://x/api/history'))).body));
  assert.equal(h.state.phase, 'grpo');
  assert.deepEqual(h.workers, [{ role: 'rollout', worker_id: 'r0', device: 'cpu' }]);
  assert.equal((await routes['/api/eval-grid.png']!(new URL('http://x/'))).status, 404);
  assert.match(String((await routes['/']!(new URL('http://x/'))).body), /<svg id="chart-reward"/);
});

test('periodic evaluation: due every N versions, never two at once, a due one skipped while another runs', async () => {
  const metrics = createMetrics('sched', 'orchestrator', { processMetrics: false });
  const ev = new PeriodicEvaluator({ config, store: {} as CheckpointStore, metrics, log: () => undefined });
  const started: number[] = [];
  let release!: () => void;
  ev.run = async () => {
    started.push(started.length);
    await new Promise<void>((r) => (release = r));
    return null;
  };
  for (let v = 1; v <= 9; v++) ev.maybeRun(v);
  assert.equal(started.length, 0, 'nothing before version 10');
  ev.maybeRun(10);
  assert.equal(started.length, 1);
  ev.maybeRun(11);
  ev.maybeRun(20); // due, but the first still runs: skipped
  assert.equal(started.length, 1);
  release();
  await new Promise((r) => setTimeout(r, 10));
  ev.maybeRun(25);
  assert.equal(started.length, 1, 'next due at 30');
  ev.maybeRun(31);
  assert.equal(started.length, 2);
  release();
  await new Promise((r) => setTimeout(r, 10));
  const text = await metrics.registry.metrics();
  assert.match(text, /recovery_grpo_evaluations_total\{outcome="skipped",run_id="sched",role="orchestrator"\} 1/);
  assert.match(text, /recovery_grpo_evaluations_total\{outcome="ok",run_id="sched",role="orchestrator"\} 2/);
  const off = new PeriodicEvaluator({ config: loadConfig(undefined, ['eval.everyVersions=0']), store: {} as CheckpointStore, metrics, log: () => undefined });
  assert.equal(off.enabled, false);
});

test('periodic evaluation at shutdown: one outlasting close()\'s wait keeps its sessions until it ends', async () => {
  const metrics = createMetrics('close', 'orchestrator', { processMetrics: false });
  const logs: string[] = [];
  const ev = new PeriodicEvaluator({ config, store: {} as CheckpointStore, metrics, log: (l) => logs.push(l) });
  const released: string[] = [];
  // The sessions a real run would hold (PolicyRunner, RewardScorer), reduced to what close() calls.
  Object.assign(ev, { runner: { release: async () => void released.push('runner') }, scorer: { close: async () => void released.push('scorer') } });
  let finish!: () => void;
  ev.run = async () => {
    await new Promise<void>((r) => (finish = r));
    assert.deepEqual(released, [], 'sessions still held while the evaluation runs');
    return null;
  };
  ev.maybeRun(10);
  const alive = setTimeout(() => undefined, 5000); // close()'s own timer is unref'd
  await ev.close(20);
  clearTimeout(alive);
  assert.deepEqual(released, [], 'close() returned without releasing under the running evaluation');
  assert.match(logs.join('\n'), /still running after 0.02 s at shutdown/);
  finish();
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(released, ['runner', 'scorer'], 'released once it ended');
  assert.match(await metrics.registry.metrics(), /recovery_grpo_evaluations_total\{outcome="ok",run_id="close",role="orchestrator"\} 1/);
  ev.maybeRun(20);
  assert.deepEqual(released, ['runner', 'scorer'], 'nothing starts after close');
});

test('history: the flow family\'s clip fraction and KL per trained step reach the page and the event log', async () => {
  const lines: Record<string, unknown>[] = [];
  const m = new RunMonitor({ config, state, appendEvent: (e) => lines.push(e) });
  const flowSteps = [{ step: 1, clipFraction: 0.25, kl: 0.002 }, { step: 2, clipFraction: 0.5, kl: 0.004 }];
  m.progress({ phase: 'grpo', seq: 1, totalSeq: 10, version: 1, loss: 0.1, samplesPerSecond: 1, reward: 0.9, kl: 0.003, clipFraction: 0.375, flowSteps });
  m.progress({ phase: 'grpo', seq: 2, totalSeq: 10, version: 2, loss: 0.1, samplesPerSecond: 1, reward: 0.9, kl: 0, clipFraction: 0 });
  const expected = [{ step: 1, clip_fraction: 0.25, kl: 0.002 }, { step: 2, clip_fraction: 0.5, kl: 0.004 }];
  const h = JSON.parse(String((await m.routes()['/api/history']!(new URL('http://x/api/history'))).body));
  assert.deepEqual(h.points[0].flow_steps, expected);
  assert.equal(h.points[1].flow_steps, undefined, 'a Gaussian batch has none');
  assert.deepEqual(lines[0]!.flow_steps, expected);
  const page = String((await m.routes()['/']!(new URL('http://x/'))).body);
  assert.match(page, /<svg id="chart-flow-clip"/);
  assert.match(page, /<svg id="chart-flow-kl"/);
});
