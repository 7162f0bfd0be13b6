// Corrupt only, per level, two arms interleaved in one process: the CPU cost of one corruption type's code against
// another revision's, without the decode (the data bench's figure mixes both). Per level (low/mid/high): R rounds
// (DATA_LEVELS_ROUNDS, default 15) of 16 calls on 8 `renderScene(k, 256)` images, the arms' order alternating each
// round, after 24 warm-up calls per arm and level; medians of process CPU ms per call.
// Usage (the code to compare against extracted under .tmp/, which holds node_modules' resolution):
//   mkdir -p .tmp/base && git archive <rev> lib | tar -x -C .tmp/base
//   DATA_LEVELS_BEFORE=.tmp/base DATA_LEVELS_TYPE=mean_shift MALLOC_MMAP_THRESHOLD_=4194304 \
//     MALLOC_TRIM_THRESHOLD_=33554432 taskset -c 1 node --import tsx bench/data-levels.ts
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderScene } from '../lib/data/procedural.ts';
import type { RgbImage } from '../lib/data/image.ts';

type Corrupt = (img: RgbImage, type: string, level: number, seed: number) => Promise<RgbImage>;
const before = process.env.DATA_LEVELS_BEFORE;
if (!before) throw new Error('DATA_LEVELS_BEFORE: a directory holding lib/data (the code to compare against) is required');
const here = fileURLToPath(new URL('../', import.meta.url));
const arms: [string, Corrupt][] = [];
for (const [name, dir] of [['before', resolve(before)], ['after', here]] as const) {
  arms.push([name, ((await import(resolve(dir, 'lib/data/corruptions.ts'))) as { corrupt: Corrupt }).corrupt]);
}
const type = process.env.DATA_LEVELS_TYPE ?? 'mean_shift';
const rounds = Math.max(1, Number(process.env.DATA_LEVELS_ROUNDS ?? 15));
const images = Array.from({ length: 8 }, (_, k) => renderScene(k, 256));
const levels = [0.23, 0.45, 0.9];
const cpuMs = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1000; };
const times = new Map<string, number[]>();
for (const [, corrupt] of arms) for (const level of levels) for (let k = 0; k < 24; k++) await corrupt(images[k % 8], type, level, k);
for (let r = 0; r < rounds; r++) {
  for (const level of levels) {
    for (const [name, corrupt] of r % 2 ? arms.slice().reverse() : arms) {
      const t0 = cpuMs();
      for (let k = 0; k < 16; k++) await corrupt(images[k % 8], type, level, k);
      const key = `${name} ${level}`;
      times.set(key, [...(times.get(key) ?? []), (cpuMs() - t0) / 16]);
    }
  }
}
const median = (a: number[]) => a.slice().sort((x, y) => x - y)[a.length >> 1];
let sumBefore = 0, sumAfter = 0;
for (const level of levels) {
  const b = median(times.get(`before ${level}`)!), a = median(times.get(`after ${level}`)!);
  sumBefore += b; sumAfter += a;
  console.log(`${type} level ${level}: before ${b.toFixed(2)} ms, after ${a.toFixed(2)} ms CPU per call (${(b / a).toFixed(3)}x)`);
}
console.log(`mean of the three levels: ${(sumBefore / 3).toFixed(2)} -> ${(sumAfter / 3).toFixed(2)} ms (${(sumBefore / sumAfter).toFixed(3)}x); ${rounds} rounds; load ${loadavg()[0].toFixed(1)}`);
