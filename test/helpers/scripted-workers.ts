// Workers scripted as gRPC clients of a real orchestrator, for tests that need the exact messages a worker sends: a
// rollout worker answering every task at once with a chosen log-density, a learner recording the TrainBatches it gets.
import { connectToOrchestrator, type OrchestratorConnection, type OrchestratorMessage__Output, type RolloutTask__Output, type Tensor__Output, type TrainBatch__Output } from '../../lib/transport/index.ts';
import { waitFor } from './wait.ts';

export const capabilities = { device: 'cpu', max_batch: 8, max_in_flight: 1 };

/**
 * Answers each rollout task on `conn` at once with the corrupted input as every action and log-density `logp`, at the
 * task's version, until the stream ends (closed, or the worker quarantined); resolves with the tasks answered.
 */
export async function answerRolloutTasks(conn: OrchestratorConnection, logp: number): Promise<number> {
  let answered = 0;
  try {
    for await (const m of conn.messages) {
      for (const t of (m.rollout_task ? [m.rollout_task] : m.task_bundle?.rollout_tasks ?? []) as RolloutTask__Output[]) {
        let image: Tensor__Output | null = null;
        const items = t.items.map((it) => {
          image = it.image ?? image;
          return { sample_id: it.sample_id, group_index: it.group_index, action: image, logp };
        });
        await conn.send({ rollout_result: { task_id: t.task_id, attempt: t.attempt, policy_version: t.policy_version_min ?? 0, compute_ms: 1, items } as never });
        answered++;
      }
    }
  } catch {
    // the stream ended
  }
  return answered;
}

/** A rollout worker answering each task at once with the corrupted input as every action and log-density `logp`. */
export async function scriptedRollout(address: string, workerId: string, logp: number): Promise<OrchestratorConnection> {
  const conn = await connectToOrchestrator({ address, role: 'ROLLOUT', workerId, capabilities });
  void answerRolloutTasks(conn, logp);
  return conn;
}

/** A learner client recording the TrainBatches it gets. */
export async function scriptedLearner(address: string): Promise<{ conn: OrchestratorConnection; batches: TrainBatch__Output[] }> {
  const conn = await connectToOrchestrator({ address, role: 'LEARNER', workerId: 'l', capabilities, hello: {} });
  const batches: TrainBatch__Output[] = [];
  void (async () => {
    try {
      for await (const m of conn.messages as AsyncIterable<OrchestratorMessage__Output>) if (m.train_batch) batches.push(m.train_batch);
    } catch {
      // closed
    }
  })();
  return { conn, batches };
}

export async function until(probe: () => boolean, what: string, log: string[]): Promise<void> {
  const t0 = Date.now();
  while (!probe()) {
    if (Date.now() - t0 > 30_000) throw new Error(`timed out waiting for ${what}\n${log.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A learner played over gRPC acknowledges batch 1 of the orchestrator `orch` (applied, version 1), and returns once the
 * orchestrator stored the acknowledgement; its connection is closed.
 */
export async function acknowledgeBatchOne(orch: { port: number; coordinator: { state: { ackedSeq: number } } }): Promise<void> {
  const conn = await connectToOrchestrator({ address: `127.0.0.1:${orch.port}`, role: 'LEARNER', workerId: 'learner-1', capabilities });
  try {
    const got: OrchestratorMessage__Output[] = [];
    void (async () => {
      try {
        for await (const m of conn.messages) got.push(m);
      } catch {
        // the stream ended
      }
    })();
    const b1 = await waitFor(() => got.find((m) => m.train_batch?.batch_seq === 1)?.train_batch ?? undefined, 'batch 1');
    await conn.send({ train_result: { batch_id: b1.batch_id, batch_seq: 1, applied: true, skipped_reason: '', version: 1 } });
    await waitFor(() => (orch.coordinator.state.ackedSeq === 1 ? true : undefined), 'batch 1 acknowledged');
  } finally {
    await conn.close();
  }
}
