// `recovery-grpo demo`: the embedded local run; needs nothing but this machine.
import type { CommandModule } from 'yargs';
import { demoSelectsFlow, FLOW_DEMO_GRPO_STEPS, FLOW_DEMO_OVERRIDES, FLOW_DEMO_SFT_STEPS } from '../../lib/flow/demo.ts';
import { DEMO_GRPO_STEPS, DEMO_OVERRIDES, DEMO_SFT_STEPS } from '../../lib/local/demo-defaults.ts';
import { DEVICES, refusedOn, type Device } from '../../lib/graph/device.ts';
import type { LocalRunOptions, OrtRole } from '../../lib/local/local-run.ts';
import { checkIntegerFlag } from '../flag-checks.ts';

export interface DemoArgs {
  steps?: number;
  sftSteps?: number;
  seed: number;
  out: string;
  config?: string;
  set?: string[];
  rolloutWorkers: number;
  rewardWorkers: number;
  nats?: string;
  device?: string[];
  crashLoopExits?: number;
  crashLoopSeconds?: number;
}

/** The roles `--device` names (as refusedOn does), and their processes in the local run. */
const ROLE_OF = { rollout: 'rollout-worker', reward: 'reward-worker', learner: 'learner' } as const satisfies Record<string, OrtRole>;

/** `--device rollout=webgpu` (repeatable) as each role's --device; an unknown role or device, or a refused use, is an error naming it. */
export function parseDevices(items: readonly string[]): Partial<Record<OrtRole, Device>> {
  const out: Partial<Record<OrtRole, Device>> = {};
  for (const item of items) {
    const [role, device, extra] = item.split('=');
    if (!Object.hasOwn(ROLE_OF, role ?? '') || !(DEVICES as readonly string[]).includes(device ?? '') || extra !== undefined) {
      throw new Error(`--device ${item}: expected ROLE=DEVICE with ROLE one of ${Object.keys(ROLE_OF).join(', ')} and DEVICE one of ${DEVICES.join(', ')}`);
    }
    const r = role as keyof typeof ROLE_OF;
    const refused = refusedOn(device as Device, r);
    if (refused) throw new Error(`--device ${item}: ${refused}`);
    out[ROLE_OF[r]] = device as Device;
  }
  return out;
}

/**
 * The demo's settings (lib/local/demo-defaults.ts, lib/flow/demo.ts): laid underneath --config's file, so they
 * apply only where it leaves a field unset; --set, --steps and --sft-steps still win over both.
 */
export function demoDefaults(flow: boolean): string[] {
  return [
    ...DEMO_OVERRIDES, ...(flow ? FLOW_DEMO_OVERRIDES : []),
    `grpo.steps=${flow ? FLOW_DEMO_GRPO_STEPS : DEMO_GRPO_STEPS}`, `sft.steps=${flow ? FLOW_DEMO_SFT_STEPS : DEMO_SFT_STEPS}`,
  ];
}

/** The local run the demo's flags ask for (its devices aside). */
export function demoRunOptions(args: DemoArgs): LocalRunOptions {
  // The flow family has its own demo settings (lib/flow/demo.ts); what the user sets still wins.
  const flow = demoSelectsFlow(args.config, args.set ?? []);
  return {
    out: args.out,
    seed: args.seed,
    ...(args.steps !== undefined ? { steps: args.steps } : {}),
    ...(args.sftSteps !== undefined ? { sftSteps: args.sftSteps } : {}),
    ...(args.config !== undefined ? { configFile: args.config } : {}),
    defaults: demoDefaults(flow),
    overrides: args.set ?? [],
    rolloutWorkers: args.rolloutWorkers,
    rewardWorkers: args.rewardWorkers,
    ...(args.nats !== undefined ? { natsUrl: args.nats } : {}),
    ...(args.crashLoopExits !== undefined || args.crashLoopSeconds !== undefined
      ? { crashLoop: { ...(args.crashLoopExits !== undefined ? { exits: args.crashLoopExits } : {}), ...(args.crashLoopSeconds !== undefined ? { withinMs: args.crashLoopSeconds * 1000 } : {}) } }
      : {}),
  };
}

const command: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'local run: nats-server and the four roles as processes on loopback, SFT warm start then GRPO, evaluation and summary',
  builder: (y) =>
    y
      .option('steps', { type: 'number', describe: `GRPO steps (default ${DEMO_GRPO_STEPS}; flow family: ${FLOW_DEMO_GRPO_STEPS})` })
      .option('sft-steps', { type: 'number', describe: `SFT warm-start steps (default ${DEMO_SFT_STEPS}; flow family: ${FLOW_DEMO_SFT_STEPS})` })
      .option('seed', { type: 'number', default: 0, describe: 'run seed' })
      .option('out', { type: 'string', default: 'runs/demo', describe: 'output folder (summary.json, grid.png, final checkpoint, standalone policy)' })
      .option('config', { type: 'string', describe: "run configuration file; the demo's settings (README, lib/local/demo-defaults.ts) and then the schema's defaults apply where it leaves a field unset, --set wins over it" })
      .option('set', { type: 'string', array: true, describe: 'override a field: --set grpo.groupSize=8 (repeatable)' })
      .option('rollout-workers', { type: 'number', default: 1, describe: 'rollout worker processes (at least 1)' })
      .option('reward-workers', { type: 'number', default: 1, describe: 'reward worker processes (at least 1)' })
      .option('nats', { type: 'string', describe: 'use this running NATS server instead of starting one' })
      .option('crash-loop-exits', { type: 'number', describe: 'failures in a row (exit 1-127, each soon after its start) after which a process stops the run instead of being restarted (default 5; docs/roles.md)' })
      .option('crash-loop-seconds', { type: 'number', describe: 'how soon after its start a failure counts towards --crash-loop-exits (default 30)' })
      .option('device', { type: 'string', array: true, describe: "a role's device: --device rollout=webgpu (repeatable; roles rollout, reward, learner; docs/gpu.md). Every role defaults to cpu; the final evaluation scores on the reward workers' device" })
      // before anything is written or started: 0 workers left GRPO waiting in silence, -1 or 1.5 reached the roles
      // as an --await-workers the user never passed
      .check((a) => {
        for (const [flag, v] of [['--rollout-workers', a.rolloutWorkers], ['--reward-workers', a.rewardWorkers]] as const) {
          if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`${flag} must be an integer >= 1, got ${String(v)}`);
        }
        if (a.out.trim() === '') throw new Error('--out must name a folder for the run (got "")');
        // named here: passed on as overrides they were refused as "grpo.steps ... (got "NaN") in override grpo.steps=NaN"
        checkIntegerFlag(a.steps, '--steps', 0);
        checkIntegerFlag(a.sftSteps, '--sft-steps', 0);
        checkIntegerFlag(a.seed, '--seed', 0);
        // the local run's crash-loop limits (lib/local/supervisor.ts CrashLoop)
        checkIntegerFlag(a.crashLoopExits, '--crash-loop-exits', 1);
        const within = a.crashLoopSeconds;
        if (within !== undefined && (typeof within !== 'number' || !Number.isFinite(within) || within <= 0)) throw new Error(`--crash-loop-seconds must be a number > 0, got ${String(within)}`);
        return true;
      }) as never,
  handler: async (args) => {
    const devices = parseDevices(args.device ?? []);
    const { runLocal } = await import('../../lib/local/local-run.ts');
    const s = await runLocal({ ...demoRunOptions(args), devices });
    const f = (x: number) => x.toFixed(4);
    console.log(
      `\nreward on ${s.eval_samples} evaluation samples of ${s.eval_images} images: identity ${f(s.identity_reward)} | after SFT ${f(s.reward_before)} | after GRPO ${f(s.reward_after)} ` +
        `(ssim ${f(s.after.ssim)}, clip_cos ${f(s.after.clip_cos)}, psnr ${s.after.psnr.toFixed(2)} dB; encoder ${s.encoder})`,
    );
    console.log(`policy: ${s.sampler}`);
    console.log(`${s.steps} GRPO steps, final version ${s.final_version}, ${s.samples_per_second.toFixed(1)} actions/s, ${s.wall_seconds.toFixed(0)} s`);
    console.log(`summary: ${args.out}/summary.json; grid: ${s.grid}; standalone policy: ${s.standalone_policy}`);
  },
};
export default command;
