// Imported networks with and without LoRA (issue #14): a ~20 M-parameter network (the project's U-Net at
// width 72, depth 4, exported to ONNX and re-imported as model.network), full fine-tuning against rank-8
// adapters on all its convolutions:
//   - checkpoint bytes per version (what is broadcast) and the learner-only optimizer state;
//   - broadcast time of one version to 4 followers in separate processes (fetch + digest + decode + shape check),
//     through nats-server's object store, from the start of the put to the last follower done;
//   - the learner's SFT step time (median) and peak resident memory, each mode in its own process.
// Sizes: IMPORT_BENCH_WIDTH / IMPORT_BENCH_DEPTH / IMPORT_BENCH_SIZE override the defaults (72, 4, 32).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Graph } from '../lib/graph/graph.ts';
import { serialize } from '../lib/graph/onnx.ts';
import { sub } from '../lib/graph/ops.ts';
import { bakeParams, initPolicyParams, policyMean, type PolicySpec } from '../lib/models/policy.ts';
import { loadConfig, type RunConfig } from '../lib/config/index.ts';
import { paramShapes, policySpecOf } from '../lib/models/bundle.ts';
import { baseDigestOf } from '../lib/models/policy.ts';
import { encodeCheckpoint } from '../lib/checkpoint/index.ts';
import { encodeOptimizerState } from '../lib/checkpoint/optimizer-state.ts';
import { zerosLike } from '../lib/checkpoint/tensors.ts';
import { trainingCheckpoint } from '../lib/worker/checkpoints.ts';
import { connectNats, CheckpointStore, spawnNatsServer } from '../lib/transport/index.ts';
import { freePort } from '../test/helpers/nats.ts';

const WIDTH = Number(process.env.IMPORT_BENCH_WIDTH ?? 72);
const DEPTH = Number(process.env.IMPORT_BENCH_DEPTH ?? 4);
const SIZE = Number(process.env.IMPORT_BENCH_SIZE ?? 32);
const FOLLOWERS = 4;
const STEPS = 3;
const child = join(import.meta.dirname, 'import-child.ts');

function exportUnet(path: string): number {
  const spec: PolicySpec = { arch: 'unet', width: WIDTH, depth: DEPTH, logStd: -4, learnLogStd: false };
  const params = initPolicyParams(spec, 1);
  const g = new Graph();
  const image = g.input('image', ['N', 3, SIZE, SIZE]);
  g.output('residual', sub(policyMean(spec, bakeParams(g, spec, params), image), image));
  writeFileSync(path, serialize(g));
  return [...params.values()].reduce((s, t) => s + t.data.length, 0);
}

/** Runs a child process; resolves its stdout lines, calling onLine for each as it arrives. */
function runChild(args: string[], onLine: (l: string) => void = () => {}): { done: Promise<string[]>; stop: () => void } {
  const p = spawn(process.execPath, ['--import', 'tsx', child, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  createInterface({ input: p.stdout! }).on('line', (l) => { lines.push(l); onLine(l); });
  return {
    stop: () => { if (p.exitCode === null) p.kill('SIGTERM'); },
    done: new Promise((resolve, reject) => p.once('exit', (code) => (code === 0 ? resolve(lines) : reject(new Error(`${args[0]} exited with ${code}`))))),
  };
}

async function broadcastSeconds(config: RunConfig, dir: string, tag: string): Promise<{ seconds: number; bytes: number }> {
  const spec = policySpecOf(config);
  const params = initPolicyParams(spec, config.run.seed);
  const ckpt = trainingCheckpoint({ runId: config.run.id, configHash: 'bench', version: 1, step: 1, lastBatchSeq: 1, lastBatchId: null, baseDigest: baseDigestOf(spec) }, params);
  const encoded = encodeCheckpoint(ckpt);
  const shapesFile = join(dir, `${tag}-shapes.json`);
  writeFileSync(shapesFile, JSON.stringify([...paramShapes(spec)]));
  writeFileSync(`${shapesFile}.base`, JSON.stringify(baseDigestOf(spec)));
  const nats = await spawnNatsServer({ port: await freePort(), storeDir: join(dir, `${tag}-nats`) });
  let followers: ReturnType<typeof runChild>[] = [];
  try {
    let ready = 0;
    let signalReady!: () => void;
    const allReady = new Promise<void>((r) => (signalReady = r));
    const doneAt: number[] = [];
    followers = Array.from({ length: FOLLOWERS }, () => runChild(['follower', nats.url, config.run.id, shapesFile, '1'], (l) => {
      if (l === 'ready' && ++ready === FOLLOWERS) signalReady();
      const m = /^done \d+ (\d+)/.exec(l);
      if (m) doneAt.push(Number(m[1]));
    }));
    await allReady;
    const nc = await connectNats({ url: nats.url, name: 'bench-learner' });
    const store = await CheckpointStore.open(nc, { runId: config.run.id });
    // as the learner does, a put that times out (a loaded machine) is retried; the time counts from the last attempt
    let t0 = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        t0 = Date.now();
        await store.put(1, encoded.bytes, `sha256:${encoded.digest}`);
        break;
      } catch (e) {
        if (attempt === 3) throw e;
        console.log(`  (${tag}: put attempt ${attempt} failed: ${(e as Error).message}; retrying)`);
      }
    }
    await Promise.all(followers.map((f) => f.done));
    await nc.close();
    return { seconds: (Math.max(...doneAt) - t0) / 1000, bytes: encoded.bytes.length };
  } finally {
    for (const f of followers) f.stop();
    await nats.stop();
  }
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'import-bench-'));
  try {
    const onnx = join(dir, 'unet.onnx');
    const total = exportUnet(onnx);
    const common = [`data.size=${SIZE}`, 'sft.batchSize=2', `model.network.onnx=${onnx}`, 'run.id=bench'];
    const modes = {
      full: loadConfig(undefined, common),
      'lora r8': loadConfig(undefined, [...common, 'model.adapter.kind=lora', 'model.adapter.rank=8', 'model.adapter.alpha=8']),
    };
    console.log(`network: project U-Net width ${WIDTH}, depth ${DEPTH}, ${total.toLocaleString('en')} parameters, ${SIZE}x${SIZE}; ${FOLLOWERS} followers`);
    console.log('| mode | trained tensors | checkpoint bytes / version | optimizer state (learner only) | broadcast to 4 followers | learner SFT step (batch 2) | learner peak RSS |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const [name, config] of Object.entries(modes)) {
      const spec = policySpecOf(config);
      const params = initPolicyParams(spec, config.run.seed);
      const trained = [...params.values()].reduce((s, t) => s + t.data.length, 0);
      const optimBytes = encodeOptimizerState({ version: 1, checkpointDigest: '0'.repeat(64), state: { step: 1, m: zerosLike(params), v: zerosLike(params) } }).bytes.length;
      const bytes = encodeCheckpoint(trainingCheckpoint({ runId: 'bench', configHash: 'bench', version: 1, step: 1, lastBatchSeq: 1, lastBatchId: null, baseDigest: baseDigestOf(spec) }, params)).bytes.length;
      console.log(`  ${name}: checkpoint ${bytes.toLocaleString('en')} bytes, optimizer state ${optimBytes.toLocaleString('en')} bytes`);
      // a put the machine cannot finish (JetStream publish timeouts under load) is reported, not fatal
      const b = await broadcastSeconds(config, dir, name.replace(/\W/g, '')).catch((e: Error) => ({ seconds: NaN, bytes, error: e.message }));
      const configFile = join(dir, `${name.replace(/\W/g, '')}.json`);
      writeFileSync(configFile, JSON.stringify(config));
      const [line] = (await runChild(['learner', configFile, String(STEPS)]).done).slice(-1);
      const l = JSON.parse(line!) as { importMs: number; stepMs: number; maxRssMB: number };
      console.log(`| ${name} | ${trained.toLocaleString('en')} (${((100 * trained) / total).toFixed(2)}%) | ${b.bytes.toLocaleString('en')} | ${optimBytes.toLocaleString('en')} | ${'error' in b ? `failed (${b.error})` : `${b.seconds.toFixed(2)} s`} | ${l.stepMs.toFixed(0)} ms | ${l.maxRssMB.toFixed(0)} MB |`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
