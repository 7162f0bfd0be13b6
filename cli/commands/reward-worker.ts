// `recovery-grpo reward-worker`: scores candidates (SSIM, embedding cosine) for the orchestrator (reward-worker/).
import type { CommandModule } from 'yargs';
import { applyProcessArgs, runUntilStopped, withWorkerOptions, workerOptionsFromArgs, type WorkerCliArgs } from '../worker-options.ts';

const command: CommandModule<object, WorkerCliArgs> = {
  command: 'reward-worker',
  describe: 'run a reward worker: SSIM and CLIP-embedding cosine of candidates against clean references',
  builder: (y) => withWorkerOptions(y, { deviceDefault: 'cpu' }) as never,
  handler: async (args) => {
    applyProcessArgs(args, 'reward');
    const { runRewardWorker } = await import('../../reward-worker/index.ts');
    await runUntilStopped(() => runRewardWorker(workerOptionsFromArgs(args)));
  },
};
export default command;
