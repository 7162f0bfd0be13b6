// Load: the orchestrator's dispatch path (its gRPC server and TaskBoard, the code that hands RolloutTasks to
// workers and takes their results) with many simulated workers on tiny tasks, for a fixed time.
//
//   LOAD_WORKERS=200,500 LOAD_SECONDS=60 LOAD_IN_FLIGHT=2 npm run bench load
//
// The workers (bench/load-workers.ts) run in a child process, each with its own gRPC connection on 127.0.0.1,
// answering every task at once; the orchestrator side keeps `workers * (inFlight + 1)` tasks outstanding (one
// new task per result). Figures per run: tasks dispatched and completed per second, the dispatch-to-result
// latency (p50 / p99 / max, from a fixed log-bucket histogram, so recording costs no memory), and the
// orchestrator process's memory sampled every 2 s after a full GC: mean RSS and heap in the first and last
// third of the run (flat = no growth). Issue #4's target: >= 5,000 tasks/s with 200 workers.
import { fork } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createMetrics } from '../lib/metrics/index.ts';
import { encodeTensor, startOrchestratorServer, type WorkerSession } from '../lib/transport/index.ts';
import { TaskBoard, type Task } from '../orchestrator/task-board.ts';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

/** Latency histogram: buckets 1% wide from 10 us to ~100 s. */
class Histogram {
  private readonly counts = new Float64Array(1700);
  n = 0;
  max = 0;
  add(ms: number): void {
    const i = Math.min(this.counts.length - 1, Math.max(0, Math.floor(Math.log(Math.max(ms, 0.01) / 0.01) / Math.log(1.01))));
    this.counts[i]++;
    this.n++;
    if (ms > this.max) this.max = ms;
  }
  quantile(q: number): number {
    let seen = 0;
    const want = q * this.n;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= want) return 0.01 * 1.01 ** (i + 1);
    }
    return this.max;
  }
}

export interface LoadFigures {
  workers: number;
  seconds: number;
  dispatchedPerSecond: number;
  completedPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  rssFirstMiB: number;
  rssLastMiB: number;
  heapFirstMiB: number;
  heapLastMiB: number;
  /** Orchestrator CPU seconds per wall second over the measured window. */
  serverCpu: number;
  /** The simulated workers' process, CPU seconds per wall second (over its whole life). */
  clientCpu: number;
  errors: number;
}

export async function runLoad(o: { workers: number; seconds: number; inFlight?: number; log?: (l: string) => void }): Promise<LoadFigures> {
  const inFlight = o.inFlight ?? 2;
  const log = o.log ?? (() => {});
  const metrics = createMetrics('load-bench', 'orchestrator');
  const board = new TaskBoard({ leaseMs: 60_000, maxAttempts: 5, metrics, onGiveUp: () => {} });
  const image = encodeTensor({ dtype: 'float32', shape: [3, 4, 4], data: new Float32Array(48).fill(0.25) });
  let next = 0;
  const newTask = (): Task => {
    const id = `t${next++}`;
    return {
      id,
      role: 'ROLLOUT',
      attempt: 0,
      message: (attempt, leaseMs) => ({
        rollout_task: { task_id: id, attempt, lease_ms: leaseMs, policy_version_min: 0, items: [{ sample_id: id, group_index: 0, noise_seed: String(next), image }] },
      }),
    };
  };
  let measuring = false;
  let completed = 0;
  let dispatchedAtStart = 0;
  let errors = 0;
  const hist = new Histogram();
  const server = await startOrchestratorServer({
    listen: '127.0.0.1:0',
    heartbeatTimeoutMs: 60_000,
    onError: () => errors++,
    onConnect: async (s: WorkerSession) => {
      await s.send({ welcome: { run_id: 'load-bench', config_json: '{}', heartbeat_interval_ms: 5000 } });
      board.attach(s);
      void s.closed.then(() => board.detach(s));
      for await (const m of s.messages) {
        if (m.heartbeat) board.renew(s, m.heartbeat.active_task_ids);
        else if (m.rollout_result) {
          const t = board.complete(s, m.rollout_result.task_id);
          if (!t) continue;
          if (measuring) {
            completed++;
            hist.add(Date.now() - t.dispatchedAt!);
          }
          board.add(newTask());
        }
      }
    },
  });
  const tChild = performance.now();
  const child = fork(fileURLToPath(new URL('./load-workers.ts', import.meta.url)), [`127.0.0.1:${server.port}`, String(o.workers), String(inFlight)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const fromChild = <T>(key: string) => new Promise<T>((resolve, reject) => {
    const on = (m: Record<string, unknown>) => {
      if (m.error) errors++;
      if (key in m) {
        child.off('message', on);
        resolve(m as T);
      }
    };
    child.on('message', on);
    child.once('exit', (code) => reject(new Error(`load workers exited (${code})`)));
  });
  try {
    const { connected } = await fromChild<{ connected: number }>('connected');
    log(`  ${connected} workers connected`);
    for (let i = 0; i < o.workers * (inFlight + 1); i++) board.add(newTask());
    await new Promise((r) => setTimeout(r, 2000)); // warm up
    const dispatched = () => metricsValue(metrics);
    measuring = true;
    dispatchedAtStart = await dispatched();
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const samples: Array<{ rss: number; heap: number }> = [];
    while (performance.now() - t0 < o.seconds * 1000) {
      await new Promise((r) => setTimeout(r, 2000));
      gc();
      const m = process.memoryUsage();
      samples.push({ rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20 });
    }
    measuring = false;
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const dispatchedN = (await dispatched()) - dispatchedAtStart;
    child.send({ stop: true });
    const end = await fromChild<{ answered: number; cpu: NodeJS.CpuUsage }>('answered').catch(() => undefined);
    const clientWall = (performance.now() - tChild) / 1000;
    const third = Math.max(1, Math.floor(samples.length / 3));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    return {
      workers: o.workers,
      seconds: wall,
      dispatchedPerSecond: dispatchedN / wall,
      completedPerSecond: completed / wall,
      p50Ms: hist.quantile(0.5),
      p99Ms: hist.quantile(0.99),
      maxMs: hist.max,
      rssFirstMiB: mean(samples.slice(0, third).map((s) => s.rss)),
      rssLastMiB: mean(samples.slice(-third).map((s) => s.rss)),
      heapFirstMiB: mean(samples.slice(0, third).map((s) => s.heap)),
      heapLastMiB: mean(samples.slice(-third).map((s) => s.heap)),
      serverCpu: (cpu.user + cpu.system) / 1e6 / wall,
      clientCpu: end ? (end.cpu.user + end.cpu.system) / 1e6 / clientWall : NaN,
      errors,
    };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await server.close({ graceMs: 500 });
  }
}

async function metricsValue(metrics: ReturnType<typeof createMetrics>): Promise<number> {
  const m = await metrics.registry.getSingleMetric('recovery_grpo_tasks_dispatched_total')?.get();
  return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
}

export function formatLoad(f: LoadFigures): string {
  const growth = (a: number, b: number) => `${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(1)}%`;
  return `${String(f.workers).padStart(4)} workers, ${f.seconds.toFixed(0)} s: dispatched ${f.dispatchedPerSecond.toFixed(0)} tasks/s, completed ${f.completedPerSecond.toFixed(0)}/s; ` +
    `dispatch-to-result p50 ${f.p50Ms.toFixed(1)} ms, p99 ${f.p99Ms.toFixed(1)} ms, max ${f.maxMs.toFixed(0)} ms; ` +
    `orchestrator RSS ${f.rssFirstMiB.toFixed(1)} -> ${f.rssLastMiB.toFixed(1)} MiB (${growth(f.rssFirstMiB, f.rssLastMiB)}), ` +
    `heap after GC ${f.heapFirstMiB.toFixed(1)} -> ${f.heapLastMiB.toFixed(1)} MiB (${growth(f.heapFirstMiB, f.heapLastMiB)}) first -> last third; ` +
    `CPU: orchestrator ${(f.serverCpu * 100).toFixed(0)}% (${((f.serverCpu * 1e6) / f.completedPerSecond).toFixed(0)} us per task, i.e. ~${(f.completedPerSecond / f.serverCpu).toFixed(0)} tasks/s per dedicated core), simulated workers ${(f.clientCpu * 100).toFixed(0)}%${f.errors ? `; ${f.errors} errors` : ''}`;
}

export async function run(): Promise<void> {
  const workerCounts = (process.env.LOAD_WORKERS ?? '200,500').split(',').map(Number);
  const seconds = Number(process.env.LOAD_SECONDS ?? 60);
  const inFlight = Number(process.env.LOAD_IN_FLIGHT ?? 2);
  console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} cores`);
  console.log(`orchestrator dispatch path (gRPC server + TaskBoard) with simulated rollout workers (own process, one connection each, max_in_flight ${inFlight}), tiny tasks, ${seconds} s each:`);
  for (const workers of workerCounts) {
    const f = await runLoad({ workers, seconds, inFlight, log: (l) => console.log(l) });
    console.log(`  ${formatLoad(f)}`);
    if (workers === 200) console.log(`  (issue #4 target with 200 workers: >= 5,000 tasks/s: ${f.completedPerSecond >= 5000 ? 'met' : 'NOT met'})`);
  }
}
