// `recovery-grpo score`: SSIM, embedding cosine and the configured reward of candidate images against
// references, one JSON line per pair (--no-json: a line of text).
import type { CommandModule } from 'yargs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { withConfig, runConfigFrom, type ConfigArgs } from '../options.ts';
import { DEVICES, type Device } from '../../lib/graph/device.ts';

interface Args extends ConfigArgs {
  reference?: string;
  candidate?: string;
  pairs?: string;
  clipModel?: string;
  encoder?: 'random-features' | 'mobilenet-v2' | 'onnx';
  json: boolean;
  device: Device;
}

const pairSchema = z.strictObject({ reference: z.string().min(1), candidate: z.string().min(1) });

async function readPairs(file: string): Promise<Array<z.infer<typeof pairSchema>>> {
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new Error(`${file}: cannot read (${e.message})`);
  });
  const base = dirname(file);
  return text.split('\n').flatMap((line, i) => {
    if (!line.trim()) return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    const r = pairSchema.safeParse(parsed);
    if (!r.success) throw new Error(`${file}:${i + 1}: expected {"reference": path, "candidate": path}: ${r.error.issues.map((x) => `${x.path.join('.') || 'line'}: ${x.message}`).join('; ')}`);
    return [{ reference: resolve(base, r.data.reference), candidate: resolve(base, r.data.candidate) }];
  });
}

const command: CommandModule<object, Args> = {
  command: 'score',
  describe: 'score candidate images against references: ssim, clip_cos and the configured reward',
  builder: (y) =>
    withConfig(y)
      .option('reference', { type: 'string', describe: 'clean reference image (PNG, JPEG, WebP)' })
      .option('candidate', { type: 'string', describe: 'candidate (recovered) image' })
      .option('pairs', { type: 'string', describe: 'JSONL file of {"reference", "candidate"} (paths relative to it)' })
      .option('encoder', { choices: ['random-features', 'mobilenet-v2', 'onnx'] as const, describe: 'image encoder of clip_cos (overrides reward.encoder; docs/encoders.md)' })
      .option('clip-model', { type: 'string', describe: 'ONNX CLIP vision tower (pixel_values [N,3,224,224] -> embedding), implies --encoder onnx; default: reward.encoder of the config' })
      .option('json', { type: 'boolean', default: true, describe: 'print one JSON line per pair; --no-json: one line of text per pair' })
      .option('device', { choices: DEVICES, default: 'cpu' as Device, describe: "where the reward graph runs: this machine's cpu, or a GPU (cuda, webgpu; docs/gpu.md)" })
      .check((a) => {
        if (a.pairs ? a.reference || a.candidate : !(a.reference && a.candidate)) throw new Error('give either --reference and --candidate, or --pairs');
        return true;
      }) as never,
  handler: async (args) => {
    const { decodeImage, toCHWFloat, viaSharp } = await import('../../lib/data/image.ts');
    const { RewardScorer } = await import('../../lib/models/scorer.ts');
    const { compileRewardExpression, rewardConstants } = await import('../../lib/grpo/reward-expression.ts');
    const config = runConfigFrom(args);
    const reward = compileRewardExpression(config.reward.expression, rewardConstants(config.reward));
    const encoder = args.clipModel ? { encoder: 'onnx' as const, clipModel: args.clipModel } : args.encoder ? { ...config.reward, encoder: args.encoder } : config.reward;
    const scorer = new RewardScorer(encoder, args.device);
    const pairs = args.pairs ? await readPairs(args.pairs) : [{ reference: args.reference!, candidate: args.candidate! }];
    const read = async (path: string, size?: { width: number; height: number }) => {
      try {
        const img = await decodeImage(path);
        // A reference of another size is resized to the candidate's (bilinear), as the paper's code does.
        return size && (img.width !== size.width || img.height !== size.height)
          ? await viaSharp(img, (s) => s.resize(size.width, size.height, { fit: 'fill', kernel: 'linear' }))
          : img;
      } catch (e) {
        throw new Error(`${path}: cannot read image (${(e as Error).message})`);
      }
    };
    try {
      for (const p of pairs) {
        const candidate = await read(p.candidate);
        const reference = await read(p.reference, candidate);
        const s = await scorer.score({ candidates: toCHWFloat(candidate), references: toCHWFloat(reference), n: 1, height: candidate.height, width: candidate.width });
        const components = { ssim: s.ssim[0], clip_cos: s.clip_cos[0] };
        const line = { reference: p.reference, candidate: p.candidate, ...components, reward: reward.evaluate(components), encoder: scorer.encoderName };
        console.log(args.json ? JSON.stringify(line)
          : `${line.candidate} against ${line.reference}: reward ${line.reward.toFixed(4)} (ssim ${line.ssim!.toFixed(4)}, clip_cos ${line.clip_cos!.toFixed(4)}; encoder ${line.encoder})`);
      }
    } finally {
      await scorer.close();
    }
  },
};
export default command;
