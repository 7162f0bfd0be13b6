// `recovery-grpo sweep`: one training run per value (a grid over several keys), here one after another or as
// Kubernetes runs rendered by scripts/k8s-ablation.ts, then one comparison report (sweep.md, sweep.html).
import type { CommandModule } from 'yargs';

interface Args {
  config?: string;
  set?: string[];
  out: string;
  engine: 'local' | 'single';
  seed?: number;
  k8s: boolean;
  overlay?: string;
  name?: string;
  force: boolean;
  report?: string;
}

const command: CommandModule<object, Args> = {
  command: 'sweep',
  describe: 'one training run per config value (grid over several --set key=v1,v2,...), then a comparison report (sweep.md, sweep.html); --k8s renders Kubernetes runs instead',
  builder: (y) =>
    y
      .option('config', { type: 'string', describe: 'base run configuration (defaults apply where absent)' })
      .option('set', { type: 'string', array: true, describe: 'key=v1,v2,... sweeps the key (several give a grid); key=value fixes it for every run (repeatable)' })
      .option('out', { type: 'string', default: 'runs/sweep', describe: 'output folder: one folder per run, sweep.md, sweep.html' })
      .option('engine', { type: 'string', choices: ['local', 'single'], default: 'local', describe: 'local: the real pipeline (nats-server and the four roles as processes); single: the single-process loop (same graphs and math, faster)' })
      .option('seed', { type: 'number', describe: 'run seed of every run (default: run.seed of the config)' })
      .option('k8s', { type: 'boolean', default: false, describe: 'render one Kubernetes run per value (scripts/k8s-ablation.ts) and print the kubectl commands, instead of running here' })
      .option('overlay', { type: 'string', describe: 'with --k8s: the overlay (gpu, cpu-dev or a folder; default gpu)' })
      .option('name', { type: 'string', describe: "with --k8s: run id prefix (default: the overlay's run.id)" })
      .option('force', { type: 'boolean', default: false, describe: 'with --k8s: replace an ablation already rendered in --out' })
      .option('report', { type: 'string', describe: 'only (re)build the report of a sweep folder whose runs have finished (e.g. on a cluster)' })
      .check((a) => {
        if (!a.report && !(a.set ?? []).some((s) => /=.*,/.test(String(s)))) throw new Error('give at least one --set key=v1,v2,... to sweep (or --report DIR)');
        return true;
      }) as never,
  handler: async (args) => {
    const sweep = await import('../../lib/eval/sweep.ts');
    try {
      if (args.report) {
        const r = await sweep.reportFromFolder(args.report);
        console.log(`[sweep] report of ${r.runs.length} runs: ${r.md}, ${r.html}`);
        return;
      }
      if (args.k8s) {
        const { planAblation, writeAblation, deployCommands } = await import('../../scripts/k8s-ablation.ts');
        const { axes, fixed } = sweep.parseSets(args.set ?? []);
        const carried = args.config ? sweep.configFileAsOverrides(args.config) : [];
        const plan = planAblation({ overlay: args.overlay, out: args.out, name: args.name, set: [...carried, ...fixed], sweeps: axes.map((a) => `${a.key}=${a.values.join(',')}`) });
        writeAblation(plan, { force: args.force });
        console.log(`[sweep] rendered ${plan.runs.length} Kubernetes runs into ${plan.out}${args.config ? ` (${args.config} applied as overrides on the overlay's run.yaml)` : ''}:`);
        for (const r of plan.runs) console.log(`  ${r.runId}  ${r.overrides.filter((o) => !carried.includes(o)).join(' ')}`);
        console.log('deploy:');
        for (const c of deployCommands(plan)) console.log(`  ${c}`);
        console.log(`report: when the runs are done, put each run's eval.json (recovery-grpo eval of its final checkpoint) and orchestrator event log (events.jsonl, --events) in ${plan.out}/<run-id>/, then: recovery-grpo sweep --report ${plan.out}`);
        return;
      }
      const r = await sweep.runSweep({ configFile: args.config, sets: args.set ?? [], out: args.out, engine: args.engine, seed: args.seed });
      console.log(`[sweep] ${r.runs.length} runs; report: ${r.md}, ${r.html}`);
    } catch (e) {
      console.error(`sweep: ${(e as Error).message}`);
      process.exit(1);
    }
  },
};
export default command;
