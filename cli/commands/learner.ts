// `recovery-grpo learner`: applies TrainBatches exactly once and publishes one checkpoint per version (learner/).
import type { CommandModule } from 'yargs';
import { applyProcessArgs, runUntilStopped, withWorkerOptions, workerOptionsFromArgs, type WorkerCliArgs } from '../worker-options.ts';

const command: CommandModule<object, WorkerCliArgs> = {
  command: 'learner',
  describe: 'run the learner: SFT / GRPO steps on the batches the orchestrator sends, a checkpoint per version to NATS',
  builder: (y) => withWorkerOptions(y, { deviceDefault: 'cpu' }) as never,
  handler: async (args) => {
    applyProcessArgs(args, 'learner');
    const { runLearner } = await import('../../learner/index.ts');
    await runUntilStopped(() => runLearner(workerOptionsFromArgs(args)));
  },
};
export default command;
