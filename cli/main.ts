// The recovery-grpo command line: one yargs command module per verb, in cli/commands/.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { CommandModule } from 'yargs';
import { CONFIG_EXIT_CODE } from '../lib/config/setup-error.ts';

/** The commands that run a role of a run (as a supervisor or a pod starts them). */
const ROLES = new Set(['orchestrator', 'learner', 'rollout-worker', 'reward-worker']);

// Command modules keep heavy imports (onnxruntime, sharp) inside their handlers, so `--help` stays fast.
const commands: Array<() => Promise<{ default: CommandModule<any, any> }>> = [
  // COMMANDS (one line each, keep sorted)
  () => import('./commands/corrupt.ts'),
  () => import('./commands/dataset.ts'),
  () => import('./commands/demo.ts'),
  () => import('./commands/eval.ts'),
  () => import('./commands/export.ts'),
  () => import('./commands/import.ts'),
  () => import('./commands/learner.ts'),
  () => import('./commands/orchestrator.ts'),
  () => import('./commands/reward-worker.ts'),
  () => import('./commands/rollout-worker.ts'),
  () => import('./commands/score.ts'),
  () => import('./commands/sweep.ts'),
];

const cli = yargs(hideBin(process.argv)).scriptName('recovery-grpo').strict().demandCommand(1).help()
  // Bad input from any command (a flag yargs refuses, or an error its handler throws): the message on
  // stderr, prefixed by the command, and exit status 1; no help text, no stack trace. The roles (whose handlers
  // catch their own errors, so only refused flags reach here) exit CONFIG_EXIT_CODE: a supervisor must not restart
  // them as they are (lib/config/setup-error.ts).
  .fail((msg: string | null, err: Error | undefined) => {
    const first = hideBin(process.argv)[0];
    const command = first && /^[a-z][a-z-]*$/.test(first) ? first : 'recovery-grpo';
    const text = (err?.message ?? msg ?? 'failed').trim().replace(/\n\s+at .*/gs, '');
    process.stderr.write(`${command}: ${text}\n`);
    process.exit(ROLES.has(command) ? CONFIG_EXIT_CODE : 1);
  });
for (const load of commands) cli.command((await load()).default);
await cli.parseAsync();
