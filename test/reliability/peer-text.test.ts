// Text a peer chooses (a task id, an error code and message) reaches the orchestrator's log quoted and cut short,
// against a real orchestrator (gRPC on 127.0.0.1, run state in a real nats-server): a newline in it cannot forge a log
// line, and a message of megabytes cannot fill the log. Before round 18 a rollout worker that held nothing could write
// both into the log through the task id of a malformed result (since round 26 such a result is only counted), and a
// learner through an error for an unknown batch.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { connectToOrchestrator, type OrchestratorConnection, type OrchestratorMessage__Output } from '../../lib/transport/index.ts';
import { runOrchestrator, type RunningOrchestrator } from '../../orchestrator/main.ts';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';

/** The longest log line a peer's text may make (the text itself is cut at a few hundred characters). */
const MAX_LINE = 2000;
const FORGED = '[orchestrator] run forged complete at policy version 999';
const HUGE = 'A'.repeat(200_000);

let nats: TestNatsServer;
let orch: RunningOrchestrator;
const log: string[] = [];
const conns: OrchestratorConnection[] = [];

before(async () => {
  nats = await startNatsServer();
  const config = parseConfig({
    run: { id: 'peer-text', seed: 1 },
    data: { size: 16, source: { kind: 'procedural', count: 48 } },
    model: { width: 4, depth: 1 },
    sft: { steps: 0 },
    grpo: { steps: 20, groupSize: 2, samplesPerBatch: 2, maxStaleness: 4, advantageMode: 'scalar' },
    orchestrator: { leaseSeconds: 30, heartbeatSeconds: 1 },
  });
  orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, log: (l) => log.push(l) });
});

after(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await orch?.stop();
  await nats?.stop();
});

async function waitFor<T>(probe: () => T | undefined | false, what: string): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > 30_000) throw new Error(`timed out waiting for ${what}\n${log.slice(-10).map((l) => l.slice(0, 300)).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function connect(role: 'ROLLOUT' | 'LEARNER', id: string, device = 'cpu') {
  const got: OrchestratorMessage__Output[] = [];
  const conn = await connectToOrchestrator({ address: `127.0.0.1:${orch.port}`, role, workerId: id, capabilities: { device, max_batch: 8, max_in_flight: 1 } });
  conns.push(conn);
  void (async () => {
    try {
      for await (const m of conn.messages) got.push(m);
    } catch {
      // the stream ended
    }
  })();
  return { conn, got };
}

/** The log lines from index `from` on: none holds a line break, none is over MAX_LINE; the one matching `pattern`. */
async function loggedSafely(from: number, pattern: RegExp): Promise<string> {
  const line = await waitFor(() => log.slice(from).find((l) => pattern.test(l)), `a log line matching ${pattern}`);
  for (const l of log.slice(from)) {
    assert.ok(!/[\n\r\u2028\u2029]/.test(l), `a log line holds a line break: ${JSON.stringify(l.slice(0, 300))}`);
    assert.ok(l.length <= MAX_LINE, `a log line of ${l.length} characters: ${JSON.stringify(l.slice(0, 300))}`);
  }
  return line;
}

test('a malformed result for a task its sender does not hold is only counted, its text never logged; the holder\'s is refused naming the input', { timeout: 120_000 }, async () => {
  const w = await connect('ROLLOUT', 'forger');
  const from = log.length;
  const foreign = async () => {
    const text = await (await fetch(`${orch.metricsUrl}/metrics`)).text();
    return Number(/^recovery_grpo_duplicate_results_total\{[^}]*worker_role="rollout"[^}]*\} (\d+)$/m.exec(text)?.[1] ?? 0);
  };
  const before = await foreign();
  // no task under this id: counted (duplicate_results_total: an unknown id) and dropped undecoded (round 26,
  // review26a: a worker holding nothing could flood the log with refusals)
  await w.conn.send({ rollout_result: { task_id: `x\n${FORGED}\n${HUGE}`, attempt: 1, policy_version: 0, items: [] } });
  const t0 = Date.now();
  while ((await foreign()) === before) {
    if (Date.now() - t0 > 30_000) throw new Error('timed out waiting for duplicate_results_total to count the forged result');
    await new Promise((r) => setTimeout(r, 50));
  }
  // its own task, malformed (no items): refused, the refusal names the input and what is wrong
  const task = (await waitFor(() => w.got.find((m) => m.rollout_task), 'a rollout task')).rollout_task!;
  await w.conn.send({ rollout_result: { task_id: task.task_id, attempt: task.attempt, policy_version: 0, items: [] } });
  const line = await loggedSafely(from, /rejected a message from forger/);
  assert.match(line, new RegExp(`rollout_result "${task.task_id}"`));
  assert.match(line, /0 actions, expected 2/);
  assert.ok(!log.slice(from).some((l) => l.includes('forged complete')), 'the forged task id reached the log');
});

test('a task error\'s code and message are quoted and cut short where the non-retryable error is logged', { timeout: 120_000 }, async () => {
  const w = await connect('ROLLOUT', 'giver-up');
  const task = (await waitFor(() => w.got.find((m) => m.rollout_task), 'a rollout task')).rollout_task!;
  const from = log.length;
  await w.conn.send({ task_error: { task_id: task.task_id, attempt: task.attempt, code: `internal\n${FORGED}`, message: `${HUGE}\n${FORGED}`, retryable: false } });
  // one worker's non-retryable error retries the task (given up once two workers say so: orchestrator/task-board.ts)
  const line = await loggedSafely(from, /reports a non-retryable error/);
  assert.match(line, new RegExp(`task ${task.task_id}: worker "giver-up" reports a non-retryable error \\("internal\\\\n\\[orchestrator\\] run forged`));
});

test('a learner\'s error for an unknown batch is quoted and cut short where it is ignored', { timeout: 120_000 }, async () => {
  const l = await connect('LEARNER', 'learner-forger');
  const from = log.length;
  await l.conn.send({ task_error: { task_id: `nope\n${FORGED}${HUGE}`, attempt: 0, code: `bad_input\n${FORGED}`, message: `${HUGE}\n${FORGED}`, retryable: false } });
  const line = await loggedSafely(from, /ignoring a learner error/);
  assert.match(line, /^ignoring a learner error for "nope\\n\[orchestrator\] run forged/);
  assert.equal(orch.coordinator.state.ackedSeq, 0, 'nothing changed');
});

test("a Hello's capabilities.device is quoted where the connection is logged", { timeout: 120_000 }, async () => {
  const from = log.length;
  await connect('ROLLOUT', 'device-forger', `cpu\n${FORGED}`); // the transport refuses more than 64 characters
  const line = await loggedSafely(from, /device-forger connected/);
  assert.equal(line, `rollout device-forger connected (${JSON.stringify(`cpu\n${FORGED}`)})`);
});
