// `recovery-grpo export`: writes the run's ONNX graphs and initial parameters to a folder.
import type { CommandModule } from 'yargs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withConfig, runConfigFrom, type ConfigArgs } from '../options.ts';

interface Args extends ConfigArgs {
  out: string;
}

const command: CommandModule<object, Args> = {
  command: 'export',
  describe: 'write policy.onnx, train-grpo.onnx, train-sft.onnx, reward.onnx, policy-standalone.onnx and init.safetensors',
  builder: (y) => withConfig(y).option('out', { type: 'string', demandOption: true, describe: 'output folder' }) as never,
  handler: async (args) => {
    const { checkNetworkOf, policyModel, grpoModel, sftModel, rewardModel, standalonePolicyModel, initialParamsOf, resolutionOf } = await import('../../lib/models/bundle.ts');
    const { saveCheckpoint, configHash } = await import('../../lib/checkpoint/index.ts');
    const config = runConfigFrom(args);
    await checkNetworkOf(config); // an imported network that fails the import command's forward check is not exported
    await mkdir(args.out, { recursive: true });
    const params = initialParamsOf(config);
    const reward = await rewardModel(resolutionOf(config), config.reward);
    const files: Record<string, Uint8Array> = {
      'policy.onnx': policyModel(config),
      'train-grpo.onnx': grpoModel(config),
      'train-sft.onnx': sftModel(config),
      'reward.onnx': reward.bytes,
      'policy-standalone.onnx': standalonePolicyModel(config, params),
    };
    for (const [name, bytes] of Object.entries(files)) await writeFile(join(args.out, name), bytes);
    const { digest } = await saveCheckpoint(join(args.out, 'init.safetensors'), {
      meta: { runId: config.run.id, version: 0, step: 0, lastBatchId: null, configHash: configHash(config), extra: { encoder: reward.encoder.name } },
      params,
    });
    console.log(JSON.stringify({ out: args.out, files: [...Object.keys(files), 'init.safetensors'], initDigest: digest, encoder: reward.encoder.name }));
  },
};
export default command;
