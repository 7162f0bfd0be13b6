// `recovery-grpo eval`: a checkpoint's recoveries on held-out images, beside identity and the reference (SFT)
// checkpoint; writes eval.json, eval.md, report.html and grid.png.
import type { CommandModule } from 'yargs';
import type { ConfigArgs } from '../options.ts';
import { checkIntegerFlag } from '../flag-checks.ts';
import { DEVICES, type Device } from '../../lib/graph/device.ts';

interface Args extends ConfigArgs {
  checkpoint: string;
  reference?: string;
  data?: string;
  out: string;
  samples?: number;
  device: Device;
}

const command: CommandModule<object, Args> = {
  command: 'eval',
  describe: 'evaluate a checkpoint (policy mean and sampled actions) against identity and the reference (SFT) checkpoint: eval.json, eval.md, report.html',
  builder: (y) =>
    y
      .option('checkpoint', { type: 'string', demandOption: true, describe: 'the policy checkpoint (.safetensors)' })
      .option('config', { type: 'string', describe: "the run's configuration (default: config.json beside the checkpoint, else the defaults)" })
      .option('set', { type: 'string', array: true, describe: 'override a field: --set eval.samples=128 (repeatable)' })
      .option('reference', { type: 'string', describe: "reference (SFT) checkpoint (default: the checkpoint's extra.ref_version, found among the .safetensors beside it)" })
      .option('data', { type: 'string', describe: 'a folder of clean images, corrupted with the configured mix and seed (default: the eval split)' })
      .option('out', { type: 'string', default: 'runs/eval', describe: 'output folder' })
      .option('samples', { type: 'number', describe: 'images to evaluate (default: eval.samples)' })
      .check((a) => {
        checkIntegerFlag(a.samples, '--samples', 1);
        return true;
      })
      .option('device', { choices: DEVICES, default: 'cpu' as Device, describe: "where the reward graph runs: this machine's cpu, or a GPU (cuda, webgpu; docs/gpu.md); the policy runs on the CPU" }) as never,
  handler: async (args) => {
    const { runEvalCommand } = await import('../../lib/eval/eval-run.ts');
    try {
      const { paths } = await runEvalCommand({ checkpoint: args.checkpoint, config: args.config, set: args.set, reference: args.reference, data: args.data, out: args.out, samples: args.samples, device: args.device });
      console.log(`[eval] wrote ${paths.json}, ${paths.md}, ${paths.html}`);
    } catch (e) {
      console.error(`eval: ${(e as Error).message}`);
      process.exit(1);
    }
  },
};
export default command;
