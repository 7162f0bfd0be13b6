// The simulated workers of bench/load.bench.ts, in their own process (so their CPU is not the orchestrator's):
// N rollout workers, each its own gRPC connection to the orchestrator on 127.0.0.1, answering every task at once
// with a tiny result and heart-beating the tasks they hold. Started with fork(); told when to stop over IPC.
// A worker asks for up to <perMessage> tasks per message (TaskBundle); the answers to the tasks of one bundle are
// sent in the same turn, so the connection bundles them into one ResultBundle.
// The workers use the same wire codec as the orchestrator side of the run (lib/transport/grpc-common.ts).
// It keeps a PauseMonitor (bench/load-pauses.ts) over the measured window: its event-loop delays and GC pauses
// delay every simulated worker's answers, so they are part of the latency the bench reports.
// spinUs > 0: each received message (a task or a TaskBundle: the tasks one connection delivers in one turn) first
// costs that much CPU (a bounded busy loop), a workers'
// host with a cost per message that falls behind when it gets one message per task (bench/load.bench.ts LOAD_WORKER_SPIN_US).
//   argv: <address> <workers> <maxInFlight> [perMessage] [codec] [encoder: two-pass|protobufjs] [spinUs]
import { connectToOrchestrator, encodeTensor, forEachItem, type OrchestratorConnection } from '../lib/transport/index.ts';
import { useWireCodec, type WireCodecName } from '../lib/transport/grpc-common.ts';
import { useFastEncoder } from '../lib/transport/wire-codec.ts';
import { PauseMonitor } from './load-pauses.ts';

const [address, workersArg, inFlightArg, perMessageArg, codecArg, encoderArg, spinArg] = process.argv.slice(2);
const spinMs = Number(spinArg ?? 0) / 1000;
useWireCodec((codecArg ?? 'direct') as WireCodecName);
useFastEncoder(encoderArg !== 'protobufjs');
const pauses = new PauseMonitor();
let measuring = false;
const workers = Number(workersArg);
const maxInFlight = Number(inFlightArg);
const perMessage = Number(perMessageArg ?? 1);
const action = encodeTensor({ dtype: 'float32', shape: [3, 4, 4], data: new Float32Array(48).fill(0.5) });

const conns: OrchestratorConnection[] = [];
let answered = 0;
let failed = 0;

async function worker(i: number): Promise<void> {
  const held = new Set<string>();
  let spun = false;
  const unspin = () => { spun = false; };
  const conn = await connectToOrchestrator({
    address: address!,
    role: 'ROLLOUT',
    workerId: `sim-${i}`,
    capabilities: { device: 'cpu', max_batch: 8, max_in_flight: maxInFlight, max_tasks_per_message: perMessage },
    heartbeatMs: 5000,
    heartbeat: () => ({ active_task_ids: [...held] }),
    connectTimeoutMs: 60_000,
    // one TCP connection per simulated worker, as separate machines would have
    grpcOptions: { 'grpc.use_local_subchannel_pool': 1 },
  });
  conns.push(conn);
  void (async () => {
    try {
      await forEachItem(conn.messages, (m) => {
        if (spinMs > 0 && !spun) {
          spun = true;
          setImmediate(unspin);
          for (const end = performance.now() + spinMs; performance.now() < end;);
        }
        const t = m.rollout_task;
        if (!t) return;
        held.add(t.task_id);
        conn
          .send({ rollout_result: { task_id: t.task_id, attempt: t.attempt, policy_version: 0, items: [{ sample_id: t.items[0]?.sample_id ?? '', group_index: 0, action, logp: -1 }] } })
          .then(() => answered++, () => failed++)
          .finally(() => held.delete(t.task_id));
      });
    } catch {
      /* the bench ended the stream */
    }
  })();
}

// Connect in waves, so 500 handshakes do not all land in the same millisecond.
for (let i = 0; i < workers; i += 50) {
  await Promise.all(Array.from({ length: Math.min(50, workers - i) }, (_, k) => worker(i + k).catch((e) => process.send!({ error: (e as Error).message }))));
}
process.send!({ connected: conns.length });
process.on('message', async (m: { stop?: boolean; cpu?: boolean }) => {
  if (m.cpu) {
    // the first ask opens the measured window, the second closes it
    const c = process.cpuUsage();
    const p = measuring ? pauses.stop() : undefined;
    if (!measuring) pauses.start();
    measuring = !measuring;
    process.send!({ cpuNow: c.user + c.system, pauses: p });
    return;
  }
  if (!m.stop) return;
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  process.send!({ answered, failed, cpu: process.cpuUsage() });
  process.exit(0);
});
