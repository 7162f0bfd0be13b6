// `recovery-grpo rollout-worker`: samples actions with the policy for the orchestrator (rollout-worker/).
import type { CommandModule } from 'yargs';
import { applyProcessArgs, runUntilStopped, withWorkerOptions, workerOptionsFromArgs, type WorkerCliArgs } from '../worker-options.ts';
import { applyCheckpointKeyArgs, CHECKPOINT_PUBKEY_OPTION } from '../checkpoint-keys.ts';
import { checkIntegerFlag } from '../flag-checks.ts';

interface Args extends WorkerCliArgs {
  versionWaitMs: number;
  checkpointPubkeyFile?: string;
}

const command: CommandModule<object, Args> = {
  command: 'rollout-worker',
  describe: 'run a rollout worker: policy forward on the tasks the orchestrator sends, following the learner\'s checkpoints',
  builder: (y) =>
    withWorkerOptions(y, { deviceDefault: 'cpu' })
      .option('version-wait-ms', { type: 'number', default: 30_000, describe: 'how long a task may wait for the policy version it needs before it fails (retryable)' })
      .check((a) => {
        checkIntegerFlag(a.versionWaitMs, '--version-wait-ms', 0); // NaN (`abc`) waited for ever
        return true;
      })
      .option('checkpoint-pubkey-file', CHECKPOINT_PUBKEY_OPTION) as never,
  handler: async (args) => {
    applyProcessArgs(args, 'rollout');
    const { runRolloutWorker } = await import('../../rollout-worker/index.ts');
    await runUntilStopped(async () => {
      applyCheckpointKeyArgs({ checkpointPubkeyFile: args.checkpointPubkeyFile });
      return runRolloutWorker({ ...workerOptionsFromArgs(args), versionWaitMs: args.versionWaitMs });
    });
  },
};
export default command;
