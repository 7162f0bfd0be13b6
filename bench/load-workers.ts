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
// Several such processes may share the simulated workers (bench/load.bench.ts LOAD_WORKER_PROCS); idBase numbers this
// process's workers after the previous processes' (worker ids must be distinct across the run).
// LOAD_WORKER_HEAP_PROFILE=<dir>: an allocation profile of this process over the measured window (sampling heap
// profiler; with LOAD_WORKER_HEAP_LIVE=1 only what is still live at the window's end, else collected objects too),
// written to <dir>/workers-<pid>.heapprofile: where this process's garbage and its survivors come from.
//   argv: <address> <workers> <maxInFlight> [perMessage] [codec] [encoder: two-pass|protobufjs] [spinUs] [idBase]
import { connectToOrchestrator, encodeTensor, forEachItem, type OrchestratorConnection } from '../lib/transport/index.ts';
import { useWireCodec, type WireCodecName } from '../lib/transport/grpc-common.ts';
import { useFastEncoder } from '../lib/transport/wire-codec.ts';
import { roleHeapGrowth } from './load-heap.ts';
import { PauseMonitor } from './load-pauses.ts';
import { StallRecorder } from './load-timeline.ts';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';

// The rollout role's V8 heap growth, as `recovery-grpo rollout-worker` applies it at its start (bench/load-heap.ts).
const heapGrowingPercent = roleHeapGrowth('rollout').percent;
const [address, workersArg, inFlightArg, perMessageArg, codecArg, encoderArg, spinArg, idBaseArg] = process.argv.slice(2);
const idBase = Number(idBaseArg ?? 0);
const spinMs = Number(spinArg ?? 0) / 1000;
useWireCodec((codecArg ?? 'direct') as WireCodecName);
useFastEncoder(encoderArg !== 'protobufjs');
const pauses = new PauseMonitor();
// LOAD_TIMELINE=1 (inherited from the bench): this process's GC pauses and loop gaps with their times (bench/load-timeline.ts)
const stalls = process.env.LOAD_TIMELINE === '1' ? new StallRecorder() : undefined;
let measuring = false;
const workers = Number(workersArg);
const maxInFlight = Number(inFlightArg);
const perMessage = Number(perMessageArg ?? 1);
const action = encodeTensor({ dtype: 'float32', shape: [3, 4, 4], data: new Float32Array(48).fill(0.5) });

const conns: OrchestratorConnection[] = [];
const heapDir = process.env.LOAD_WORKER_HEAP_PROFILE;
const profiler = heapDir ? new Session() : undefined;
async function heapProfile(start: boolean): Promise<void> {
  if (!profiler) return;
  if (start) {
    profiler.connect();
    await profiler.post('HeapProfiler.enable');
    const all = process.env.LOAD_WORKER_HEAP_LIVE !== '1';
    await profiler.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMinorGC: all, includeObjectsCollectedByMajorGC: all });
    return;
  }
  const { profile } = await profiler.post('HeapProfiler.stopSampling');
  writeFileSync(`${heapDir}/workers-${process.pid}.heapprofile`, JSON.stringify(profile));
  profiler.disconnect();
}
let answered = 0;
let failed = 0;

async function worker(i: number): Promise<void> {
  // The tasks whose results are not written yet, in send order (a connection settles its sends in that order), so
  // one shared pair of callbacks per worker does for every task: no closure and no finally() per task (round 11:
  // the old .then().finally() chain was ~1/3 of this process's 3.5 KB of garbage per task).
  const held: string[] = [];
  let heldHead = 0;
  const release = () => {
    if (++heldHead >= 1024 && heldHead * 2 >= held.length) {
      held.splice(0, heldHead);
      heldHead = 0;
    }
  };
  const onSent = () => { answered++; release(); };
  const onFailed = () => { failed++; release(); };
  let spun = false;
  const unspin = () => { spun = false; };
  const conn = await connectToOrchestrator({
    address: address!,
    role: 'ROLLOUT',
    workerId: `sim-${idBase + i}`,
    capabilities: { device: 'cpu', max_batch: 8, max_in_flight: maxInFlight, max_tasks_per_message: perMessage },
    heartbeatMs: 5000,
    heartbeat: () => ({ active_task_ids: held.slice(heldHead) }),
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
        held.push(t.task_id);
        conn
          .send({ rollout_result: { task_id: t.task_id, attempt: t.attempt, policy_version: 0, items: [{ sample_id: t.items[0]?.sample_id ?? '', group_index: 0, action, logp: -1 }] } })
          .then(onSent, onFailed);
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
process.send!({ connected: conns.length, heapGrowingPercent });
process.on('message', async (m: { stop?: boolean; cpu?: boolean }) => {
  if (m.cpu) {
    // the first ask opens the measured window, the second closes it
    const c = process.cpuUsage();
    const p = measuring ? pauses.stop() : undefined;
    const q = measuring ? stalls?.runQueueSinceStart() : undefined;
    const s = measuring ? stalls?.stop() : undefined;
    if (!measuring) {
      pauses.start();
      stalls?.start();
    }
    if (heapDir) await heapProfile(!measuring);
    measuring = !measuring;
    process.send!({ cpuNow: c.user + c.system, pauses: p, stalls: s, runQueueMs: q });
    return;
  }
  if (!m.stop) return;
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  process.send!({ answered, failed, cpu: process.cpuUsage() });
  process.exit(0);
});
