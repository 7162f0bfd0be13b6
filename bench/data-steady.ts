// Decode + corrupt in a long run, one process per arm: the steady-state CPU cost per image that the data bench's
// 24-image blocks approximate. Per type: 24 untimed images, a 300 ms idle pause (background compiles finish), then
// DATA_STEADY_N (default 144: 48 per level low/mid/high) timed images, each decoded from a 256x256 PNG and corrupted.
// Usage, the two arms alternating (run each under the product's malloc settings, as the data bench's children are):
//   git archive <rev> lib/data | tar -x -C /tmp/before   (the code to compare against)
//   for r in 1 2; do for a in /tmp/before $PWD; do DATA_STEADY_ARM=$a MALLOC_MMAP_THRESHOLD_=4194304 \
//     MALLOC_TRIM_THRESHOLD_=33554432 taskset -c 1 node --import tsx bench/data-steady.ts; done; done
// DATA_STEADY_ARM: a directory holding lib/data (default this checkout); DATA_STEADY_TYPES: comma-separated types.
// Each figure has its minor page faults per image beside it.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { writeImage, type RgbImage } from '../lib/data/image.ts';
import { renderScene } from '../lib/data/procedural.ts';

const arm = process.env.DATA_STEADY_ARM ?? fileURLToPath(new URL('../', import.meta.url));
type Corrupt = (img: RgbImage, type: string, level: number, seed: number) => Promise<RgbImage>;
const { corrupt, LEVELS } = (await import(join(arm, 'lib/data/corruptions.ts'))) as { corrupt: Corrupt; LEVELS: Record<string, number> };
const { decodeImage } = (await import(join(arm, 'lib/data/image.ts'))) as { decodeImage: (p: string, size: number) => Promise<RgbImage> };
const types = (process.env.DATA_STEADY_TYPES ?? 'lens_blur,motion_blur,mean_shift,gaussian_noise').split(',');
const n = Math.max(3, Number(process.env.DATA_STEADY_N ?? 144));
sharp.concurrency(1); // one libvips thread: the figures are per core

const dir = mkdtempSync(join(tmpdir(), 'data-steady-'));
try {
  const square: string[] = [];
  for (let k = 0; k < 8; k++) { square.push(join(dir, `s${k}.png`)); await writeImage(renderScene(k, 256), square[k]); }
  const cpuMs = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1000; };
  // Minor page faults per image beside each figure: the first type's images include the process's heap growth (its
  // first ~32 MiB of young ArrayBuffer memory lands in fresh pages; docs/performance-history/corruption.md, round 13: data13).
  const faults = () => process.resourceUsage().minorPageFault;
  const cycle = [LEVELS.low, LEVELS.mid, LEVELS.high];
  const pause = () => new Promise((r) => setTimeout(r, 300));
  for (let k = 0; k < 48; k++) await decodeImage(square[k % 8], 256);
  await pause();
  let f0 = faults();
  let t0 = cpuMs();
  for (let k = 0; k < 240; k++) await decodeImage(square[k % 8], 256);
  const out = [`decode ${((cpuMs() - t0) / 240).toFixed(2)} ms (${((faults() - f0) / 240).toFixed(0)} faults)`];
  for (const type of types) {
    for (let k = 0; k < 24; k++) await corrupt(await decodeImage(square[k % 8], 256), type, cycle[k % 3], k);
    await pause();
    f0 = faults();
    t0 = cpuMs();
    for (let k = 0; k < n; k++) await corrupt(await decodeImage(square[k % 8], 256), type, cycle[k % 3], k);
    out.push(`${type} ${((n * 1000) / (cpuMs() - t0)).toFixed(0)}/s (${((faults() - f0) / n).toFixed(0)} faults)`);
  }
  console.log(`${arm}: decode + corrupt per CPU-second, ${n} images a type: ${out.join('  ')} (load ${loadavg()[0].toFixed(1)})`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
