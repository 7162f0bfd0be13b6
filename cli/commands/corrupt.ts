// `recovery-grpo corrupt`: list the corruption types, or apply one to an image.
//   recovery-grpo corrupt --list
//   recovery-grpo corrupt --input IMG --type T --level L --seed S --out OUT [--size N]
import type { CommandModule } from 'yargs';
import { checkImageExtension, checkIntegerFlag } from '../flag-checks.ts';

interface Args {
  list?: boolean;
  input?: string;
  type?: string;
  level: string;
  seed: number;
  out?: string;
  size?: number;
  refSize?: number;
}

const command: CommandModule<object, Args> = {
  command: 'corrupt',
  describe: 'apply one of the 16 Robust-R1 corruptions to an image (seeded), or list them with --list',
  builder: (y) =>
    y
      .option('list', { type: 'boolean', describe: 'print the types, families and named levels as JSON' })
      .option('input', { type: 'string', describe: 'image to corrupt (PNG, JPEG, WebP)' })
      .option('type', { type: 'string', describe: 'corruption type (see --list)' })
      .option('level', { type: 'string', default: 'mid', describe: 'intensity in [0, 1], or low (0.23), mid (0.45), high (0.9)' })
      .option('seed', { type: 'number', default: 0, describe: 'seed: the same seed gives the same bytes' })
      .option('out', { type: 'string', describe: 'output image; the format follows the extension (.png, .jpg, .webp)' })
      .option('size', { type: 'number', describe: 'first resize (shorter side) and centre-crop to size x size' })
      .option('ref-size', { type: 'number', describe: 'shorter side (px) at which pixel-sized parameters take the pipeline values (default 256)' })
      .check((a) => {
        if (a.list) return true;
        const missing = (['input', 'type', 'out'] as const).filter((k) => a[k] === undefined);
        if (missing.length) throw new Error(`missing ${missing.map((k) => `--${k}`).join(', ')} (or use --list)`);
        checkIntegerFlag(a.size, '--size', 1);
        checkIntegerFlag(a.refSize, '--ref-size', 1);
        checkImageExtension(a.out!, '--out');
        return true;
      }) as never,
  handler: async (args) => {
    const { describeCorruptions, corrupt, parseCorruptionType, parseLevel } = await import('../../lib/data/corruptions.ts');
    if (args.list) {
      console.log(JSON.stringify(describeCorruptions(), null, 2));
      return;
    }
    const { decodeImage, writeImage } = await import('../../lib/data/image.ts');
    try {
      const type = parseCorruptionType(args.type!);
      const level = parseLevel(args.level);
      if (!Number.isFinite(args.seed)) throw new Error(`--seed must be a number, got ${args.seed}`);
      let img;
      try {
        img = await decodeImage(args.input!, args.size);
      } catch (e) {
        throw new Error(`${args.input}: cannot read image (${(e as Error).message.split('\n')[0]})`);
      }
      const out = await corrupt(img, type, level, args.seed, { refSize: args.refSize });
      await writeImage(out, args.out!);
      console.error(`${args.out}: ${type} at ${level} (seed ${args.seed}), ${out.width}x${out.height}`);
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  },
};

export default command;
