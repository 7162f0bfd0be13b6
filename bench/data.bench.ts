// Data pipeline throughput on one core: decode + resize (to 256x256) + corrupt, per corruption type.
// Sources: 256x256 PNGs (decode only, no resize needed) and 384x288 PNGs (decode, resize to shorter side
// 256, centre crop). Levels cycle low / mid / high. Reported: wall-clock images/s, and images per CPU-second
// of this process (sharp's worker thread included). Other load only ever slows a run down, so every figure
// is the best of ROUNDS rounds (env DATA_BENCH_ROUNDS, default 3) taken at different moments.
// The measurement runs in a child process with the product's glibc malloc settings (lib/deploy/allocator-env.ts:
// glibc reads them at start-up only, so a process cannot set them for itself); DATA_BENCH_ALLOC=off measures in
// this process with its own environment.
// DATA_BENCH_COMPARE=<git revision> (e.g. main) times the code as it was at that revision ("before": lib/data
// extracted with git archive under .tmp/, run without the malloc settings unless DATA_BENCH_BEFORE_ALLOC=1) against
// the working tree ("after": with them), each arm in its own child processes, alternating, DATA_BENCH_ROUNDS
// (default 5) of each; per child: decode alone, then per type decode + corrupt and corrupt alone, 24 images a block
// (DATA_BENCH_WARM=<n>, default 24: n untimed images of the type first; DATA_BENCH_SETTLE_MS, default 300: an idle pause
// before the decode block and each type's blocks, so background JIT compiles finish outside the timing; both 0: round 8);
// medians over the children. Types: DATA_BENCH_TYPES (default all). With DATA_BENCH_SAME_PROCESS=1 both arms run
// in one child (the malloc settings for both), interleaved as in the v1 mode below: the code alone compared.
// Beside its figures, each child counts minor page faults and main-thread GC ms per image, and after every type's first
// blocks it times a second pass (72 decode + corrupt images a type, printed as a second table): a fresh process's first
// ~32-40 MiB of image buffers land in fresh pages (~13 us a fault in this project's VMs), which the first blocks include
// (docs/performance-history/corruption.md, round 13: data13).
// DATA_BENCH_COMPARE=v1 instead times decode + corrupt with the current code and with the previous decode (a
// header read, the pipeline and a copy) and the frozen pre-#15 corruptions (test/data/reference/, the same bytes) side by side: interleaved short blocks,
// wall-clock and CPU, medians of ROUNDS rounds (default 9 in that mode), for the types named in
// DATA_BENCH_TYPES (comma-separated; default all).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { ALLOCATOR_ENV, allocatorEnvFor } from '../lib/deploy/allocator-env.ts';
import { CORRUPTION_TYPES, LEVELS, corrupt } from '../lib/data/corruptions.ts';
import { decodeImage, imageSize, MAX_INPUT_PIXELS, writeImage, type RgbImage } from '../lib/data/image.ts';
import { renderScene } from '../lib/data/procedural.ts';

const SIZE = 256;
const GOAL = 200;
const BUDGET_MS = 250;
const ROUNDS = Math.max(1, Number(process.env.DATA_BENCH_ROUNDS ?? 3));
const LEVEL_CYCLE = [LEVELS.low, LEVELS.mid, LEVELS.high];

/** Nanoseconds per multiply-add of a plain typed-array loop: how fast this core runs JS right now. */
function calibrate(): number {
  const a = new Float32Array(1 << 16), b = new Float32Array(1 << 16);
  for (let i = 0; i < a.length; i++) a[i] = i & 255;
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let k = 0; k < 40; k++) for (let j = 0; j < a.length; j++) b[j] += 0.01 * a[j];
    best = Math.min(best, ((performance.now() - t0) * 1e6) / (40 * a.length));
  }
  return best;
}

async function measure(fn: (k: number) => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  for (let k = 0; k < 3; k++) await fn(k); // warm up
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  while (n < 12 || performance.now() - t0 < BUDGET_MS) await fn(n++);
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { wall: n / wall, cpu: n / ((c.user + c.system) / 1e6) };
}

type CorruptFn = typeof corrupt;

/**
 * decodeImage's previous path, frozen here as "before": a header read (imageSize), then sharp's pipeline, then
 * a copy of sharp's buffer (main at 74a6b65 did all three; decodeImage now takes one sharp call for a PNG and
 * returns a view of sharp's buffer).
 */
async function decodeViaSharpV1(path: string, size: number): Promise<RgbImage> {
  await imageSize(path);
  const { data, info } = await sharp(path, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS }).autoOrient()
    .resize(size, size, { fit: 'cover', position: 'centre' }).removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)) };
}

/**
 * Current vs frozen pre-#15 implementation, interleaved in short blocks so load hits both alike. "Before"
 * decodes as decodeImage did before (decodeViaSharp) and corrupts with test/data/reference/corruptions-v1.ts;
 * "after" is decodeImage and corrupt as they are. Wall-clock and CPU images/s (process CPU, sharp's thread
 * included), medians of the blocks.
 */
async function compareWithV1(square: string[], before?: { corrupt: CorruptFn; decode: (path: string, size: number) => Promise<RgbImage> }): Promise<void> {
  // `before` (DATA_BENCH_COMPARE=<revision> with DATA_BENCH_SAME_PROCESS=1): that revision's corrupt and decodeImage.
  const corruptV1 = before?.corrupt ?? ((await import('../test/data/reference/corruptions-v1.ts')) as { corrupt: CorruptFn }).corrupt;
  const decodeViaSharp = before?.decode ?? decodeViaSharpV1;
  const rounds = Math.max(1, Number(process.env.DATA_BENCH_ROUNDS ?? 9));
  const types = process.env.DATA_BENCH_TYPES ? process.env.DATA_BENCH_TYPES.split(',') : [...CORRUPTION_TYPES];
  const decoded = await Promise.all(square.map((p) => decodeImage(p)));
  for (const [k, p] of square.entries()) {
    if ((await decodeViaSharp(p, SIZE)).data.join() !== decoded[k]!.data.join()) throw new Error(`${p}: the two decoders disagree`);
  }
  type Decode = (path: string, size: number) => Promise<RgbImage>;
  // Images/s of 12 calls (wall, CPU): decode + corrupt (the figure of the issue), or corrupt alone on decoded images.
  const block = async (fn: CorruptFn, decode: Decode, type: string, withDecode: boolean): Promise<{ wall: number; cpu: number }> => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let k = 0; k < 12; k++) {
      const img = withDecode ? await decode(square[k % 8], SIZE) : decoded[k % 8];
      await fn(img, type, LEVEL_CYCLE[k % 3], k);
    }
    const c = process.cpuUsage(c0);
    return { wall: 12_000 / (performance.now() - t0), cpu: 12e6 / (c.user + c.system) };
  };
  const median = (v: number[]): number => { const s = [...v].sort((a, b) => a - b); return s[s.length >> 1]; };
  // Decode alone, 24 images a block: ms per image, wall and CPU.
  const decodeBlock = async (decode: Decode): Promise<{ wall: number; cpu: number }> => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let k = 0; k < 24; k++) await decode(square[k % 8], SIZE);
    const c = process.cpuUsage(c0);
    return { wall: (performance.now() - t0) / 24, cpu: (c.user + c.system) / 1000 / 24 };
  };
  const dec = { before: [] as Array<{ wall: number; cpu: number }>, after: [] as Array<{ wall: number; cpu: number }> };
  await decodeBlock(decodeViaSharp); await decodeBlock(decodeImage);
  for (let r = 0; r < rounds; r++) {
    dec.before.push(await decodeBlock(decodeViaSharp));
    dec.after.push(await decodeBlock(decodeImage));
  }
  const ms = (v: Array<{ wall: number; cpu: number }>) => `${median(v.map((x) => x.wall)).toFixed(2)} ms wall, ${median(v.map((x) => x.cpu)).toFixed(2)} ms CPU`;
  console.log(`decode of a 256x256 PNG at 256, per image (medians of ${rounds} interleaved blocks of 24): before ${ms(dec.before)}; now ${ms(dec.after)}`);
  console.log(`images/s, median of ${rounds} interleaved blocks of 12 (levels low/mid/high), wall-clock / per CPU-second;`);
  console.log(before ? 'before = the revision above; after = decodeImage and corrupt as they are' : 'before = the frozen previous decode (sharp header read + pipeline + copy) and test/data/reference/corruptions-v1.ts; after = decodeImage and corrupt as they are');
  console.log('type                     decode+corrupt: before   after   ratio (wall; CPU)   | corrupt only: before   after   ratio (wall; CPU)');
  for (const type of types) {
    const cols: string[] = [];
    for (const withDecode of [true, false]) {
      const old = () => block(corruptV1, decodeViaSharp, type, withDecode);
      const now = () => block(corrupt, decodeImage, type, withDecode);
      await old(); await now(); // warm up
      const before: Array<{ wall: number; cpu: number }> = [], after: typeof before = [];
      for (let r = 0; r < rounds; r++) {
        if (r % 2 === 0) { before.push(await old()); after.push(await now()); }
        else { after.push(await now()); before.push(await old()); }
      }
      const b = { wall: median(before.map((x) => x.wall)), cpu: median(before.map((x) => x.cpu)) };
      const a = { wall: median(after.map((x) => x.wall)), cpu: median(after.map((x) => x.cpu)) };
      cols.push(`${b.wall.toFixed(0)}; ${b.cpu.toFixed(0)} -> ${a.wall.toFixed(0)}; ${a.cpu.toFixed(0)}  (${(a.wall / b.wall).toFixed(2)}x; ${(a.cpu / b.cpu).toFixed(2)}x)`);
    }
    console.log(`${type.padEnd(24)} ${cols[0].padStart(40)} | ${cols[1].padStart(40)}`);
  }
}

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const loads = () => loadavg().map((v) => v.toFixed(1)).join(' ');

/** Runs `node --import tsx bench/index.ts data` with `env` added; resolves with its stdout (stderr passes through). */
function child(env: Record<string, string | undefined>, capture: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...process.execArgv, join(ROOT, 'bench/index.ts'), 'data'], {
      cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'],
    });
    let out = '';
    p.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`data bench child exited with ${code}`))));
  });
}

/** Images per block in a compare child (levels low/mid/high in turn). */
const ARM_BLOCK = 24;

/** One arm's figures from one process: decode alone (ms CPU) and, per type, images per CPU-second. */
type ArmResult = {
  decodeMs: number; decodeFaults: number;
  types: Record<string, { dc: number; c: number; dcFaults: number; cFaults: number; dcGcMs: number; steady: number; steadyFaults: number; steadyGcMs: number }>;
};

/** Images per type in the second pass (decode + corrupt once every type's first blocks are done). */
const STEADY_BLOCK = 72;

/** In a child: decode + corrupt with the lib/data under `codeDir`, as in compareWithV1's blocks; prints one JSON line. */
async function runArm(codeDir: string, square: string[]): Promise<void> {
  const { corrupt: corruptArm } = (await import(join(codeDir, 'lib/data/corruptions.ts'))) as { corrupt: CorruptFn };
  const { decodeImage: decodeArm } = (await import(join(codeDir, 'lib/data/image.ts'))) as { decodeImage: typeof decodeImage };
  const types = process.env.DATA_BENCH_TYPES ? process.env.DATA_BENCH_TYPES.split(',') : [...CORRUPTION_TYPES];
  const decoded = await Promise.all(square.map((p) => decodeArm(p, SIZE)));
  const cpuMs = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1000; };
  // Minor page faults per image: fresh memory the malloc heaps grow into (cost ~13 us each in this project's VMs;
  // docs/performance-history/corruption.md, round 13). Printed beside the figures, which they do not change.
  const faults = () => process.resourceUsage().minorPageFault;
  // Main-thread GC pauses (ms), likewise beside the figures.
  let gcMs = 0;
  const gcObserver = new PerformanceObserver((list) => { for (const e of list.getEntries()) gcMs += e.duration; });
  gcObserver.observe({ entryTypes: ['gc'] });
  // Warm up (the JIT, and the allocator's heap: a fresh process's first few hundred images fault its pages in).
  for (let k = 0; k < 48; k++) await decodeArm(square[k % 8], SIZE);
  for (const type of types) for (let k = 0; k < 6; k++) await corruptArm(await decodeArm(square[k % 8], SIZE), type, LEVEL_CYCLE[k % 3], k);
  // DATA_BENCH_SETTLE_MS (default 300; 0 before round 9): an idle pause after the warm-up and before each type's timed
  // blocks, so TurboFan compiles that earlier images queued on V8's background thread finish outside the timing. Without
  // it the first timed block paid for other types' compiles (watermark_damage's inpaintBlend, 30-180 ms, landed in
  // lens_blur's block: docs/performance-history/corruption.md, round 9). The process's CPU time still counts everything done while timing.
  const settle = Math.max(0, Number(process.env.DATA_BENCH_SETTLE_MS ?? 300));
  const pause = () => (settle > 0 ? new Promise((r) => setTimeout(r, settle)) : Promise.resolve());
  await pause();
  let f0 = faults();
  let t0 = cpuMs();
  for (let k = 0; k < 48; k++) await decodeArm(square[k % 8], SIZE);
  const res: ArmResult = { decodeMs: (cpuMs() - t0) / 48, decodeFaults: (faults() - f0) / 48, types: {} };
  // DATA_BENCH_WARM=<n>: n untimed decode + corrupt images of each type right before its timed blocks (default 24 since
  // round 9; 0 before). The first block of a process costs more than later ones (corr7, round 7): with 6 warm-up images
  // per type, V8 compiled (and on-stack replaced, deoptimised and compiled again) the type's large functions during its
  // timed block, 30-320 ms per compile as --trace-opt reports it at load (meanShiftModes, lineRows: docs/performance-history/corruption.md,
  // round 9), a one-time cost of the process that the per-image figure is not about. DATA_BENCH_WARM=0
  // DATA_BENCH_SETTLE_MS=0 measures as round 8 did.
  const warm = Math.max(0, Number(process.env.DATA_BENCH_WARM ?? 24));
  for (const type of types) {
    for (let k = 0; k < warm; k++) await corruptArm(await decodeArm(square[k % 8], SIZE), type, LEVEL_CYCLE[k % 3], k);
    await pause();
    f0 = faults();
    const g0 = gcMs;
    t0 = cpuMs();
    for (let k = 0; k < ARM_BLOCK; k++) await corruptArm(await decodeArm(square[k % 8], SIZE), type, LEVEL_CYCLE[k % 3], k);
    const dc = (ARM_BLOCK * 1000) / (cpuMs() - t0);
    const dcFaults = (faults() - f0) / ARM_BLOCK;
    await new Promise((r) => setImmediate(r)); // the observer's entries for the block
    const dcGcMs = (gcMs - g0) / ARM_BLOCK;
    f0 = faults();
    t0 = cpuMs();
    for (let k = 0; k < ARM_BLOCK; k++) await corruptArm(decoded[k % 8], type, LEVEL_CYCLE[k % 3], k);
    res.types[type] = { dc, c: (ARM_BLOCK * 1000) / (cpuMs() - t0), dcFaults, cFaults: (faults() - f0) / ARM_BLOCK, dcGcMs, steady: 0, steadyFaults: 0, steadyGcMs: 0 };
  }
  // Second pass, after every type's first blocks (so those are timed exactly as before round 13): decode + corrupt in a
  // longer block, once the process's malloc heaps have grown. A fresh process's first ~32-40 MiB of image buffers are
  // fresh pages (buffers are freed only when V8 collects their objects), ~100-150 faults an image until then: a
  // once-per-process cost that the first blocks above can include and a long-running role does not pay per image.
  for (const type of types) {
    await pause();
    f0 = faults();
    const g0 = gcMs;
    t0 = cpuMs();
    for (let k = 0; k < STEADY_BLOCK; k++) await corruptArm(await decodeArm(square[k % 8], SIZE), type, LEVEL_CYCLE[k % 3], k);
    const r = res.types[type]!;
    r.steady = (STEADY_BLOCK * 1000) / (cpuMs() - t0);
    r.steadyFaults = (faults() - f0) / STEADY_BLOCK;
    await new Promise((resolve) => setImmediate(resolve));
    r.steadyGcMs = (gcMs - g0) / STEADY_BLOCK;
  }
  gcObserver.disconnect();
  console.log(`ARM ${JSON.stringify(res)}`);
}

/** DATA_BENCH_COMPARE=<revision>: that revision's lib/data (no malloc settings) against the working tree (with them). */
/** lib/data as at `rev`, extracted once under .tmp/ (ignored; its imports of sharp and zod resolve to the same node_modules). */
function revisionDir(rev: string): { sha: string; dir: string } {
  const sha = execFileSync('git', ['rev-parse', '--short', rev], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = join(ROOT, '.tmp', `data-bench-${sha}`);
  if (!existsSync(join(dir, 'lib/data/corruptions.ts'))) {
    mkdirSync(dir, { recursive: true });
    execFileSync('bash', ['-c', `git archive ${sha} lib/data | tar -x -C '${dir}'`], { cwd: ROOT });
  }
  return { sha, dir };
}

async function compareWithRevision(rev: string): Promise<void> {
  const { sha, dir: before } = revisionDir(rev);
  const rounds = Math.max(1, Number(process.env.DATA_BENCH_ROUNDS ?? 5));
  const noAlloc = Object.fromEntries(Object.keys(ALLOCATOR_ENV).map((k) => [k, undefined]));
  const arms = {
    before: { DATA_BENCH_ARM: before, ...(process.env.DATA_BENCH_BEFORE_ALLOC === '1' ? ALLOCATOR_ENV : noAlloc) },
    after: { DATA_BENCH_ARM: ROOT, ...ALLOCATOR_ENV },
  };
  console.log(`before = lib/data at ${sha}${process.env.DATA_BENCH_BEFORE_ALLOC === '1' ? ' with' : ' without'} the malloc settings; after = the working tree with ${Object.entries(ALLOCATOR_ENV).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  console.log(`${rounds} child processes per arm, alternating; load average at the start ${loads()}`);
  const got: { before: ArmResult[]; after: ArmResult[] } = { before: [], after: [] };
  for (let r = 0; r < rounds; r++) {
    for (const arm of (r % 2 === 0 ? ['before', 'after'] : ['after', 'before']) as Array<'before' | 'after'>) {
      const line = (await child(arms[arm], true)).split('\n').find((l) => l.startsWith('ARM '));
      if (!line) throw new Error(`the ${arm} child printed no result`);
      got[arm].push(JSON.parse(line.slice(4)) as ArmResult);
    }
  }
  const median = (v: number[]): number => { const s = [...v].sort((a, b) => a - b); return s[s.length >> 1]; };
  const dB = median(got.before.map((x) => x.decodeMs)), dA = median(got.after.map((x) => x.decodeMs));
  const dBb = Math.min(...got.before.map((x) => x.decodeMs)), dAb = Math.min(...got.after.map((x) => x.decodeMs));
  console.log(`decode of a 256x256 PNG, ms CPU (median of ${rounds} processes, 48 decodes each): before ${dB.toFixed(2)}, after ${dA.toFixed(2)} (${(dB / dA).toFixed(2)}x) [best ${dBb.toFixed(2)} -> ${dAb.toFixed(2)}]; minor page faults per decode ${median(got.before.map((x) => x.decodeFaults)).toFixed(0)} -> ${median(got.after.map((x) => x.decodeFaults)).toFixed(0)}`);
  console.log(`images per CPU-second, medians of the ${rounds} processes per arm [best process before -> after], ${ARM_BLOCK} images a block:`);
  console.log('type                     decode+corrupt: before -> after (ratio) [best]     | corrupt only: before -> after (ratio) [best]       | >= 200/s after (median; best) | minor faults per image, decode+corrupt (corrupt only), medians: before -> after; main-thread GC ms per image of decode+corrupt');
  const below: string[] = [];
  for (const type of Object.keys(got.after[0]!.types)) {
    // Medians, and in brackets the best process of each arm (other load only ever slows a process down).
    const col = (key: 'dc' | 'c') => {
      const bs = got.before.map((x) => x.types[type]![key]), as = got.after.map((x) => x.types[type]![key]);
      const b = median(bs), a = median(as), bb = Math.max(...bs), ab = Math.max(...as);
      return { b, a, best: ab, text: `${b.toFixed(0).padStart(4)} -> ${a.toFixed(0).padStart(4)} (${(a / b).toFixed(2)}x) [${bb.toFixed(0)} -> ${ab.toFixed(0)}]` };
    };
    const dc = col('dc'), c = col('c');
    if (dc.a < GOAL) below.push(`${type} (${dc.a.toFixed(0)})`);
    const m = (arm: ArmResult[], key: 'dcFaults' | 'cFaults' | 'dcGcMs') => median(arm.map((x) => x.types[type]![key]));
    const faultText = `${m(got.before, 'dcFaults').toFixed(0)} (${m(got.before, 'cFaults').toFixed(0)}) -> ${m(got.after, 'dcFaults').toFixed(0)} (${m(got.after, 'cFaults').toFixed(0)}); GC ${m(got.before, 'dcGcMs').toFixed(2)} -> ${m(got.after, 'dcGcMs').toFixed(2)} ms`;
    console.log(`${type.padEnd(24)} ${dc.text.padEnd(48)} | ${c.text.padEnd(50)} | ${(dc.a >= GOAL ? 'yes' : 'no') + '; ' + (dc.best >= GOAL ? 'yes' : 'no')}`.padEnd(152) + ` | ${faultText}`);
  }
  console.log(`second pass, after every type's first blocks: decode + corrupt, ${STEADY_BLOCK} images a type (the process's heaps grown; the first blocks above,`);
  console.log('the issue\'s figure, can hold its first ~32-40 MiB of fresh image-buffer pages: see their fault column); medians [best], minor faults and main-thread GC ms per image:');
  const steadyBelow: string[] = [];
  for (const type of Object.keys(got.after[0]!.types)) {
    const v = (arm: ArmResult[], key: 'steady' | 'steadyFaults' | 'steadyGcMs') => arm.map((x) => x.types[type]![key]);
    const b = median(v(got.before, 'steady')), a = median(v(got.after, 'steady'));
    if (a < GOAL) steadyBelow.push(`${type} (${a.toFixed(0)})`);
    console.log(`${type.padEnd(24)} ${b.toFixed(0).padStart(4)} -> ${a.toFixed(0).padStart(4)} (${(a / b).toFixed(2)}x) [${Math.max(...v(got.before, 'steady')).toFixed(0)} -> ${Math.max(...v(got.after, 'steady')).toFixed(0)}]` +
      ` | faults ${median(v(got.before, 'steadyFaults')).toFixed(0)} -> ${median(v(got.after, 'steadyFaults')).toFixed(0)}; GC ${median(v(got.before, 'steadyGcMs')).toFixed(2)} -> ${median(v(got.after, 'steadyGcMs')).toFixed(2)} ms`);
  }
  console.log(`second pass below ${GOAL}/s after: ${steadyBelow.length ? steadyBelow.join(', ') : 'none'}`);
  console.log(`below ${GOAL}/s after (decode + corrupt): ${below.length ? below.join(', ') : 'none'}; load average at the end ${loads()}`);
}

export async function run(): Promise<void> {
  sharp.concurrency(1); // one libvips thread: the figures are per core
  const compare = process.env.DATA_BENCH_COMPARE;
  const arm = process.env.DATA_BENCH_ARM;
  // Measure with the malloc settings the product runs with: in a child process that starts with them.
  const sameProcess = process.env.DATA_BENCH_SAME_PROCESS === '1';
  if (!arm && compare !== undefined && compare !== 'v1' && compare !== '' && !sameProcess) return compareWithRevision(compare);
  const missing = allocatorEnvFor(process.env);
  if (!arm && process.env.DATA_BENCH_ALLOC !== 'off' && Object.keys(missing).length > 0) {
    console.log(`(measuring in a child process with ${Object.entries(missing).map(([k, v]) => `${k}=${v}`).join(' ')}; DATA_BENCH_ALLOC=off measures here)`);
    await child(missing, false);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'data-bench-'));
  try {
    const square: string[] = [];
    const wide: string[] = [];
    for (let k = 0; k < 8; k++) {
      square.push(join(dir, `s${k}.png`));
      await writeImage(renderScene(k, SIZE), square[k]);
      wide.push(join(dir, `w${k}.png`));
      await writeImage(renderScene(k + 100, 384, 288), wide[k]);
    }
    if (arm) {
      await runArm(arm, square);
      return;
    }
    if (compare === 'v1' || (compare && sameProcess)) {
      console.log(`one core (sharp concurrency ${sharp.concurrency()}), ${SIZE}x${SIZE}, load average ${loadavg().map((v) => v.toFixed(1)).join(' ')}`);
      let before: Parameters<typeof compareWithV1>[1];
      if (compare !== 'v1') {
        const { sha, dir } = revisionDir(compare);
        console.log(`before = lib/data at ${sha} (its corrupt and decodeImage), in this process: the same malloc settings for both arms`);
        const c = (await import(join(dir, 'lib/data/corruptions.ts'))) as { corrupt: CorruptFn };
        const d = (await import(join(dir, 'lib/data/image.ts'))) as { decodeImage: typeof decodeImage };
        before = { corrupt: c.corrupt, decode: (path, size) => d.decodeImage(path, size) };
      }
      await compareWithV1(square, before);
      console.log(`load average at the end ${loads()}`);
      return;
    }
    const decoded: RgbImage[] = await Promise.all(square.map((p) => decodeImage(p)));
    console.log(`one core (sharp concurrency ${sharp.concurrency()}), ${SIZE}x${SIZE}, load average ${loadavg().map((v) => v.toFixed(1)).join(' ')}, ` +
      `JS ${calibrate().toFixed(2)} ns per multiply-add (an idle core: about 1.3)`);
    type Row = { only: number; a: { wall: number; cpu: number }; b: { wall: number; cpu: number } };
    const best = (x: { wall: number; cpu: number } | undefined, y: { wall: number; cpu: number }) =>
      x ? { wall: Math.max(x.wall, y.wall), cpu: Math.max(x.cpu, y.cpu) } : y;
    let dec256: { wall: number; cpu: number } | undefined, dec384: typeof dec256;
    const rows = new Map<string, Row>();
    for (let round = 0; round < ROUNDS; round++) {
      dec256 = best(dec256, await measure((k) => decodeImage(square[k % 8], SIZE)));
      dec384 = best(dec384, await measure((k) => decodeImage(wide[k % 8], SIZE)));
      for (const type of CORRUPTION_TYPES) {
        const only = await measure((k) => corrupt(decoded[k % 8], type, LEVEL_CYCLE[k % 3], k));
        const a = await measure(async (k) => corrupt(await decodeImage(square[k % 8], SIZE), type, LEVEL_CYCLE[k % 3], k));
        const b = await measure(async (k) => corrupt(await decodeImage(wide[k % 8], SIZE), type, LEVEL_CYCLE[k % 3], k));
        const prev = rows.get(type);
        rows.set(type, { only: Math.max(prev?.only ?? 0, only.wall), a: best(prev?.a, a), b: best(prev?.b, b) });
      }
    }
    console.log(`decode only: 256 PNG ${dec256!.wall.toFixed(0)}/s (${dec256!.cpu.toFixed(0)}/cpu-s); 384x288 PNG -> 256 ${dec384!.wall.toFixed(0)}/s (${dec384!.cpu.toFixed(0)}/cpu-s)`);
    console.log('');
    console.log('type                     corrupt ms | 256 PNG: img/s  img/cpu-s | 384x288 PNG->256: img/s  img/cpu-s');
    const slow: string[] = [];
    for (const [type, { only, a, b }] of rows) {
      if (Math.max(a.wall, a.cpu) < GOAL) slow.push(`${type} (${Math.max(a.wall, a.cpu).toFixed(0)}/s)`);
      console.log(
        `${type.padEnd(24)} ${(1000 / only).toFixed(2).padStart(10)} | ${a.wall.toFixed(0).padStart(14)} ${a.cpu.toFixed(0).padStart(10)} |` +
        ` ${b.wall.toFixed(0).padStart(23)} ${b.cpu.toFixed(0).padStart(10)}`,
      );
    }
    console.log('');
    console.log(`below ${GOAL} images/s (256 PNG sources, best of wall and CPU figure): ${slow.length ? slow.join(', ') : 'none'}`);
    console.log(`JS ${calibrate().toFixed(2)} ns per multiply-add at the end; load average ${loadavg().map((v) => v.toFixed(1)).join(' ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
