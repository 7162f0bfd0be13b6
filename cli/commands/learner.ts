// `recovery-grpo learner`: applies TrainBatches exactly once and publishes one checkpoint per version (learner/).
import type { CommandModule } from 'yargs';
import { applyProcessArgs, runUntilStopped, withWorkerOptions, workerOptionsFromArgs, type WorkerCliArgs } from '../worker-options.ts';
import { applyCheckpointKeyArgs, CHECKPOINT_KEY_OPTION, type CheckpointKeyArgs } from '../checkpoint-keys.ts';

type Args = WorkerCliArgs & Pick<CheckpointKeyArgs, 'checkpointKeyFile'>;

const command: CommandModule<object, Args> = {
  command: 'learner',
  describe: 'run the learner: SFT / GRPO steps on the batches the orchestrator sends, a checkpoint per version to NATS',
  builder: (y) => withWorkerOptions(y, { deviceDefault: 'cpu' }).option('checkpoint-key-file', CHECKPOINT_KEY_OPTION) as never,
  handler: async (args) => {
    applyProcessArgs(args, 'learner');
    const { runLearner } = await import('../../learner/index.ts');
    await runUntilStopped(async () => {
      applyCheckpointKeyArgs({ checkpointKeyFile: args.checkpointKeyFile });
      return runLearner(workerOptionsFromArgs(args));
    });
  },
};
export default command;
