// `recovery-grpo dataset`: look at the training data.
//   recovery-grpo dataset preview [--config FILE] --out grid.png   a grid of clean and corrupted examples
//   recovery-grpo dataset info [--config FILE]                     sizes of the source and its splits (JSON)
import type { Argv, CommandModule } from 'yargs';
import { runConfigFrom, withConfig, type ConfigArgs } from '../options.ts';
import { checkImageExtension, checkIntegerFlag } from '../flag-checks.ts';

interface PreviewArgs extends ConfigArgs {
  out: string;
  samples: number;
  cell: number;
  types?: string;
  levels?: string;
}

async function openFromConfig(args: ConfigArgs, split: 'train' | 'eval' | 'all' = 'all') {
  const { dataConfigFrom, openDataset } = await import('../../lib/data/dataset.ts');
  const config = runConfigFrom(args);
  const data = dataConfigFrom(config.data, config.run.seed);
  const ds = await openDataset(data.dataset, { mix: data.corruptions, seed: data.seed, evalFraction: data.evalFraction, split });
  return { data, ds };
}

const preview: CommandModule<ConfigArgs, PreviewArgs> = {
  command: 'preview',
  describe: 'write a picture: one row per corruption type, clean image then each level',
  builder: (y) =>
    (y as Argv<ConfigArgs>)
      .option('out', { type: 'string', demandOption: true, describe: 'output image (.png, .jpg, .webp)' })
      .option('samples', { type: 'number', default: 1, describe: 'images per row (each: clean, then every level)' })
      .option('cell', { type: 'number', default: 96, describe: 'approximate cell size in pixels (images are enlarged by a whole factor)' })
      .option('types', { type: 'string', describe: 'comma-separated types (default: those the mix can draw)' })
      .option('levels', { type: 'string', describe: 'comma-separated levels, names or numbers (default: the mix levels, else low,mid,high)' })
      .check((a) => {
        checkIntegerFlag(a.samples, '--samples', 1);
        checkIntegerFlag(a.cell, '--cell', 1);
        checkImageExtension(a.out, '--out');
        return true;
      }) as never,
  handler: async (args) => {
    try {
      const { CORRUPTION_TYPES, LEVELS, corrupt, parseCorruptionType, parseLevel, typeWeights } = await import('../../lib/data/corruptions.ts');
      const { newImage, writeImage } = await import('../../lib/data/image.ts');
      const { drawText, textWidth } = await import('../../lib/data/draw.ts');
      const { hashSeed } = await import('../../lib/data/random.ts');
      const { data, ds } = await openFromConfig(args);
      const mix = data.corruptions;
      const weights = typeWeights(mix);
      const types = args.types
        ? args.types.split(',').map((t) => parseCorruptionType(t.trim()))
        : CORRUPTION_TYPES.filter((_, k) => weights[k] > 0);
      const levelList: number[] = args.levels
        ? args.levels.split(',').map((l) => parseLevel(l.trim()))
        : Array.isArray(mix.levels)
          ? mix.levels.map((l) => (typeof l === 'string' ? LEVELS[l] : l))
          : [LEVELS.low, LEVELS.mid, LEVELS.high];
      const samples = args.samples;
      const res = ds.resolution;
      const k = Math.max(1, Math.round(args.cell / res));
      const cell = res * k;
      const gap = 4, textH = 10, thick = 1.3;
      const names = types.map((t) => t.toUpperCase());
      const labelW = Math.ceil(Math.max(...names.map((n) => textWidth(n, textH)))) + 2 * gap;
      const cols = samples * (1 + levelList.length);
      const headH = textH + 2 * gap;
      const W = labelW + cols * (cell + gap) + gap;
      const H = headH + types.length * (cell + gap) + gap;
      const grid = newImage(W, H);
      grid.data.fill(30);
      const canvas = { width: W, height: H, channels: 3 as const, data: grid.data };
      const ink = { color: [225, 225, 225] };
      const colX = (c: number): number => labelW + c * (cell + gap);
      for (let j = 0; j < samples; j++) {
        for (let l = -1; l < levelList.length; l++) {
          const c = j * (1 + levelList.length) + l + 1;
          const named = l < 0 ? undefined : (Object.keys(LEVELS) as Array<keyof typeof LEVELS>).find((n) => LEVELS[n] === levelList[l]);
          const label = l < 0 ? 'CLEAN' : named ? `${named} ${levelList[l]}` : String(levelList[l]);
          drawText(canvas, label, colX(c) + (cell - textWidth(label, textH)) / 2, gap, textH, thick, ink);
        }
      }
      const put = (img: { width: number; height: number; data: Uint8Array }, x0: number, y0: number): void => {
        for (let y = 0; y < cell; y++) {
          const sy = Math.floor(y / k);
          for (let x = 0; x < cell; x++) {
            const s = (sy * img.width + Math.floor(x / k)) * 3, d = ((y0 + y) * W + x0 + x) * 3;
            grid.data[d] = img.data[s]; grid.data[d + 1] = img.data[s + 1]; grid.data[d + 2] = img.data[s + 2];
          }
        }
      };
      let cursor = 0;
      const nextClean = async () => {
        for (let tries = 0; tries < ds.size; tries++) {
          const s = await ds.get(cursor++ % ds.size);
          if (s) return s.clean;
        }
        throw new Error('no readable image in the dataset');
      };
      for (const [r, t] of types.entries()) {
        const y0 = headH + r * (cell + gap);
        drawText(canvas, names[r], gap, y0 + (cell - textH) / 2, textH, thick, ink);
        for (let j = 0; j < samples; j++) {
          const clean = await nextClean();
          const base = j * (1 + levelList.length);
          put(clean, colX(base), y0);
          for (const [l, level] of levelList.entries()) {
            put(await corrupt(clean, t, level, hashSeed(data.seed, 'preview', r, j), { refSize: mix.refSize }), colX(base + 1 + l), y0);
          }
        }
      }
      await writeImage(grid, args.out);
      console.error(`${args.out}: ${types.length} types x ${levelList.length} levels x ${samples} image(s) from the ${data.dataset.kind} dataset (${res}px, shown x${k}); ${ds.skipped} unreadable skipped`);
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  },
};

const info: CommandModule<ConfigArgs, ConfigArgs> = {
  command: 'info',
  describe: 'print the dataset source and the sizes of its train and eval splits as JSON',
  handler: async (args) => {
    try {
      const { data, ds } = await openFromConfig(args);
      const { splitOf } = await import('../../lib/data/dataset.ts');
      let evalCount = 0;
      for (let k = 0; k < ds.size; k++) if (splitOf(ds.id(k), data.evalFraction) === 'eval') evalCount++;
      console.log(JSON.stringify({
        dataset: data.dataset, items: ds.size, train: ds.size - evalCount, eval: evalCount,
        evalFraction: data.evalFraction, corruptions: data.corruptions, seed: data.seed,
      }, null, 2));
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  },
};

const command: CommandModule<object, ConfigArgs> = {
  command: 'dataset <command>',
  describe: 'look at the training data: preview (a picture of clean and corrupted examples), info',
  builder: (y) => withConfig(y).command(preview).command(info).demandCommand(1) as never,
  handler: () => {},
};

export default command;
