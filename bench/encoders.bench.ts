// What separates a semantic image encoder from low-level statistics (issue #18), for each reward encoder,
// on photographs read through the `folder` data source:
//   - cosine to the clean photo under nuisance changes that keep the content (2-pixel shift, horizontal
//     flip, +12% brightness, a mild colour cast, JPEG quality 90) and under content changes (another
//     scene, a grey block over the central 49% of the photo); AUC = P(nuisance cosine > content cosine);
//   - Spearman rank correlation of (1 - cosine) with the corruption level, per corruption type;
//   - the reward graph's throughput (pairs per second) at the measured resolution.
// `npm run bench encoders` runs it on the photos installed with the gnome/mate backgrounds and opencv-doc
// packages; ENCODER_BENCH_PHOTOS=<folder> points it at another folder (the project's photo eval split),
// ENCODER_BENCH_SIZE, ENCODER_BENCH_IMAGES and ENCODER_BENCH_JSON=<file> set the resolution, the number
// of photos and where the figures are written.
import { mkdirSync, symlinkSync, existsSync, writeFileSync } from 'node:fs';
import { join, basename } from 'node:path';
import { tmpdir } from 'node:os';
import { openDataset } from '../lib/data/dataset.ts';
import { CORRUPTION_TYPES, corrupt } from '../lib/data/corruptions.ts';
import { cloneImage, toCHWFloat, viaSharp, type RgbImage } from '../lib/data/image.ts';
import { RewardScorer } from '../lib/models/scorer.ts';
import type { EncoderKind } from '../lib/models/reward.ts';

const INSTALLED_PHOTOS = [
  ...['Aqua', 'Blinds', 'Dune', 'FreshFlower', 'Garden', 'GreenMeadow', 'LadyBird', 'RainDrops', 'Storm', 'TwoWings', 'Wood', 'YellowFlower'].map((n) => `/usr/share/backgrounds/mate/nature/${n}.jpg`),
  ...['HappyFish', 'aero1', 'aloeL', 'apple', 'baboon', 'building', 'butterfly', 'fruits', 'home', 'leuvenA', 'messi5', 'orange', 'squirrel_cls', 'starry_night', 'stuff', 'left01'].map((n) => `/usr/share/doc/opencv-doc/examples/data/${n}.jpg`),
];

/** A folder of links to the installed photographs (the folder data source reads it like any other). */
function installedPhotoFolder(): string {
  const dir = join(tmpdir(), 'recovery-grpo-encoder-bench-photos');
  mkdirSync(dir, { recursive: true });
  const present = INSTALLED_PHOTOS.filter((p) => existsSync(p));
  if (present.length < 8) throw new Error(`encoders bench: only ${present.length} of the installed photos exist (apt-get install mate-backgrounds opencv-doc)`);
  for (const p of present) {
    const link = join(dir, `${basename(join(p, '..'))}-${basename(p)}`);
    if (!existsSync(link)) symlinkSync(p, link);
  }
  return dir;
}

function shift(img: RgbImage, dx: number, dy: number): RgbImage {
  const out = cloneImage(img);
  const { width: w, height: h } = img;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sx = Math.min(w - 1, Math.max(0, x - dx));
      const sy = Math.min(h - 1, Math.max(0, y - dy));
      for (let c = 0; c < 3; c++) out.data[(y * w + x) * 3 + c] = img.data[(sy * w + sx) * 3 + c];
    }
  }
  return out;
}

function mapPixels(img: RgbImage, f: (v: number, c: number) => number): RgbImage {
  const out = cloneImage(img);
  for (let i = 0; i < out.data.length; i++) out.data[i] = Math.max(0, Math.min(255, Math.round(f(img.data[i], i % 3))));
  return out;
}

function occlude(img: RgbImage, fraction: number): RgbImage {
  const out = cloneImage(img);
  const side = Math.sqrt(fraction);
  const [x0, x1] = [Math.round(img.width * (1 - side) / 2), Math.round(img.width * (1 + side) / 2)];
  const [y0, y1] = [Math.round(img.height * (1 - side) / 2), Math.round(img.height * (1 + side) / 2)];
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) out.data.fill(128, (y * img.width + x) * 3, (y * img.width + x) * 3 + 3);
  return out;
}

const NUISANCES: Record<string, (img: RgbImage) => Promise<RgbImage> | RgbImage> = {
  'shift 2px': (img) => shift(img, 2, 2),
  'h-flip': (img) => viaSharp(img, (s) => s.flop()),
  'brightness +12%': (img) => mapPixels(img, (v) => v * 1.12),
  'colour cast': (img) => mapPixels(img, (v, c) => v * [1.06, 1, 0.94][c]),
  'jpeg q90': (img) => viaSharp(img, (s) => s.jpeg({ quality: 90 })),
};

interface Pair {
  a: RgbImage;
  b: RgbImage;
  group: string;
  kind: 'nuisance' | 'content' | 'corruption';
  image: number;
  level?: number;
}

async function cosines(scorer: RewardScorer, pairs: Pair[], size: number): Promise<Float32Array> {
  const out = new Float32Array(pairs.length);
  const B = 16;
  for (let i = 0; i < pairs.length; i += B) {
    const chunk = pairs.slice(i, i + B);
    const pix = 3 * size * size;
    const cand = new Float32Array(chunk.length * pix);
    const ref = new Float32Array(chunk.length * pix);
    chunk.forEach((p, j) => {
      cand.set(toCHWFloat(p.b), j * pix);
      ref.set(toCHWFloat(p.a), j * pix);
    });
    const s = await scorer.score({ candidates: cand, references: ref, n: chunk.length, height: size, width: size });
    out.set(s.clip_cos, i);
  }
  return out;
}

function ranks(xs: number[]): number[] {
  const idx = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(xs.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1][0] === idx[i][0]) j++;
    for (let k = i; k <= j; k++) r[idx[k][1]] = (i + j) / 2;
    i = j + 1;
  }
  return r;
}

export function spearman(x: number[], y: number[]): number {
  const rx = ranks(x);
  const ry = ranks(y);
  const n = x.length;
  const mx = rx.reduce((a, b) => a + b, 0) / n;
  const my = ry.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) ** 2;
    syy += (ry[i] - my) ** 2;
  }
  return sxx && syy ? sxy / Math.sqrt(sxx * syy) : 0;
}

const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0) / xs.length;

export interface EncoderFigures {
  encoder: string;
  nuisance: Record<string, number>;
  content: Record<string, number>;
  auc: number;
  rank: Record<string, number>;
  pairsPerSecond: number;
}

export async function measureEncoder(kind: EncoderKind, photos: RgbImage[], size: number, levels: number[], rankImages: number): Promise<EncoderFigures> {
  const scorer = new RewardScorer({ encoder: kind });
  const pairs: Pair[] = [];
  for (let i = 0; i < photos.length; i++) {
    const img = photos[i];
    for (const [name, f] of Object.entries(NUISANCES)) pairs.push({ a: img, b: await f(img), group: name, kind: 'nuisance', image: i });
    pairs.push({ a: img, b: photos[(i + 1) % photos.length], group: 'another scene', kind: 'content', image: i });
    pairs.push({ a: img, b: occlude(img, 0.49), group: 'occlusion 49%', kind: 'content', image: i });
  }
  for (let i = 0; i < Math.min(rankImages, photos.length); i++) {
    for (const type of CORRUPTION_TYPES) {
      for (const level of levels) pairs.push({ a: photos[i], b: await corrupt(photos[i], type, level, 1000 * i + 7), group: type, kind: 'corruption', image: i, level });
    }
  }
  const cos = await cosines(scorer, pairs, size);
  const by = (kind: Pair['kind']) => {
    const groups: Record<string, number[]> = {};
    pairs.forEach((p, i) => p.kind === kind && (groups[p.group] ??= []).push(cos[i]));
    return groups;
  };
  const nuisance = by('nuisance');
  const content = by('content');
  const nAll = Object.values(nuisance).flat();
  const cAll = Object.values(content).flat();
  let wins = 0;
  for (const a of nAll) for (const b of cAll) wins += a > b ? 1 : a === b ? 0.5 : 0;
  const rank: Record<string, number> = {};
  for (const type of CORRUPTION_TYPES) {
    const per: number[] = [];
    for (let i = 0; i < Math.min(rankImages, photos.length); i++) {
      const idx = pairs.map((p, j) => [p, j] as const).filter(([p]) => p.kind === 'corruption' && p.group === type && p.image === i);
      per.push(spearman(idx.map(([p]) => p.level!), idx.map(([, j]) => 1 - cos[j])));
    }
    rank[type] = mean(per);
  }
  // Throughput: batches of 16 pairs, as a reward worker scores a task.
  const batch = pairs.slice(0, 16);
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 5000) {
    await cosines(scorer, batch, size);
    n += batch.length;
  }
  const pairsPerSecond = n / ((performance.now() - t0) / 1000);
  const name = scorer.encoderName;
  await scorer.close();
  const means = (g: Record<string, number[]>) => Object.fromEntries(Object.entries(g).map(([k, v]) => [k, mean(v)]));
  return { encoder: name, nuisance: means(nuisance), content: means(content), auc: wins / (nAll.length * cAll.length), rank, pairsPerSecond };
}

export function figuresTable(figs: EncoderFigures[]): string {
  const rows: string[] = [];
  const head = `| | ${figs.map((f) => f.encoder).join(' | ')} |`;
  rows.push(head, `|---|${figs.map(() => '---:').join('|')}|`);
  const row = (label: string, f: (x: EncoderFigures) => number, digits = 3) => rows.push(`| ${label} | ${figs.map((x) => f(x).toFixed(digits)).join(' | ')} |`);
  for (const k of Object.keys(figs[0].nuisance)) row(`cos, nuisance: ${k}`, (x) => x.nuisance[k]);
  for (const k of Object.keys(figs[0].content)) row(`cos, content: ${k}`, (x) => x.content[k]);
  row('AUC nuisance > content', (x) => x.auc);
  for (const k of Object.keys(figs[0].rank)) row(`Spearman(1-cos, level): ${k}`, (x) => x.rank[k], 2);
  row('Spearman, mean over types', (x) => mean(Object.values(x.rank)), 2);
  row('reward graph pairs/s', (x) => x.pairsPerSecond, 1);
  return rows.join('\n');
}

export async function run(): Promise<void> {
  const size = Number(process.env.ENCODER_BENCH_SIZE ?? 64);
  const folder = process.env.ENCODER_BENCH_PHOTOS ?? installedPhotoFolder();
  const limit = Number(process.env.ENCODER_BENCH_IMAGES ?? 28);
  const ds = await openDataset({ kind: 'folder', path: folder, size, crop: 'center', limit });
  const photos: RgbImage[] = [];
  for await (const s of ds) photos.push(s.clean);
  const levels = [0.1, 0.3, 0.5, 0.7, 0.9];
  const rankImages = Number(process.env.ENCODER_BENCH_RANK_IMAGES ?? 8);
  console.log(`  ${photos.length} photos from ${folder} at ${size}x${size}; rank correlations over ${Math.min(rankImages, photos.length)} photos x ${CORRUPTION_TYPES.length} types x levels ${levels.join(', ')}`);
  const figs: EncoderFigures[] = [];
  for (const kind of ['random-features', 'mobilenet-v2'] as const) figs.push(await measureEncoder(kind, photos, size, levels, rankImages));
  console.log(figuresTable(figs));
  if (process.env.ENCODER_BENCH_JSON) writeFileSync(process.env.ENCODER_BENCH_JSON, JSON.stringify({ size, photos: photos.length, folder, figs }, null, 2));
}
