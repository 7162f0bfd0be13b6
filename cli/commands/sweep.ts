// `recovery-grpo sweep`: one training run per value (a grid over several keys), here one after another or as
// Kubernetes runs rendered by scripts/k8s-ablation.ts, then one comparison report (sweep.md, sweep.html).
// With --methods it compares training methods instead (dense/scalar GRPO, continued SFT, direct reward
// backprop) from the same warm start at equal wall-clock compute (lib/experiments/compare.ts).
// With --pool it writes one such report over the kept per-seed results of several --methods runs with the same
// settings (poolComparisons), training nothing.
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
  methods?: string;
  budget: number;
  'budget-clock': 'wall' | 'cpu';
  seeds?: number;
  pool?: string[];
  'sft-steps'?: number;
  from?: string;
  'shared-warm-start': boolean;
  'first-seed'?: number;
  'set-for'?: string[];
  samples?: number;
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
      .option('methods', { type: 'string', describe: 'compare training methods instead of config values: a list among dense,scalar,sft,backprop, each optionally of a family (flow:scalar, gaussian:dense); one method is compared with its warm start (compare.md, compare.json, grid.png)' })
      .option('budget', { type: 'number', default: 90, describe: 'with --methods: seconds of training per method and seed (on --budget-clock)' })
      .option('budget-clock', { type: 'string', choices: ['wall', 'cpu'], default: 'wall', describe: "with --methods: what --budget counts: wall-clock seconds, or this process's CPU seconds (all threads; fair on a shared machine)" })
      .option('seeds', { type: 'number', describe: 'with --methods: seeds 0..N-1 (each its own warm start, noise and data order; default 3); with --pool: pool seeds 0..N-1 (or K..N-1 with --first-seed) only, naming those not found' })
      .option('first-seed', { type: 'number', describe: 'with --methods: run seeds K..N-1 only; --first-seed K --seeds K+1 runs seed K alone, so processes given different K and the same --out run seeds side by side (each writes the report over seeds K..N-1 and every seed below K on file with the same settings)' })
      .option('pool', { type: 'string', array: true, describe: 'write one method-comparison report (compare.md, compare.json in --out) over the seeds kept by several sweep --methods runs: their --out folders or seed-<k>.json files; refused, naming the setting, when their settings differ; no training' })
      .option('sft-steps', { type: 'number', describe: 'with --methods: SFT steps of each warm start (default: sft.steps)' })
      .option('from', { type: 'string', describe: 'with --methods: a warm-start checkpoint (.safetensors) instead of training one per seed; {seed} in the path names one per seed (runs/demo-s{seed}/reference.safetensors), else every seed shares it; per family: flow=PATH,gaussian=PATH' })
      .option('shared-warm-start', { type: 'boolean', default: false, describe: 'with --methods: train one warm start per family (seed 0) and start every seed from it' })
      .option('set-for', { type: 'string', array: true, describe: "with --methods: FAMILY:key=value, an override for one family's runs only (e.g. flow:sft.lr=2e-3; repeatable)" })
      .option('samples', { type: 'number', describe: 'with --methods: evaluation images (default: eval.samples)' })
      .check((a) => {
        if (a.pool && (a.methods || a.k8s || a.report || a.set?.length || a.config)) throw new Error('--pool only reads kept seed results: it does not combine with --methods, --k8s, --report, --set or --config (the settings come from the pooled files)');
        if (!a.pool && !a.report && !a.methods && !(a.set ?? []).some((s) => /=.*,/.test(String(s)))) throw new Error('give at least one --set key=v1,v2,... to sweep (or --methods LIST, --report DIR, or --pool DIR...)');
        if (a.methods && (a.k8s || a.report)) throw new Error('--methods runs here, in one process: it does not combine with --k8s or --report');
        return true;
      }) as never,
  handler: async (args) => {
    const sweep = await import('../../lib/experiments/sweep.ts');
    try {
      if (args.report) {
        const r = await sweep.reportFromFolder(args.report);
        console.log(`[sweep] report of ${r.runs.length} runs: ${r.md}, ${r.html}`);
        return;
      }
      if (args.pool) {
        const { poolComparisons } = await import('../../lib/experiments/compare.ts');
        const r = await poolComparisons({ inputs: args.pool, out: args.out, seeds: args.seeds, firstSeed: args['first-seed'], log: (l) => console.log(l) });
        console.log(`[sweep] pooled ${r.seeds.length} seed(s): ${r.md}, ${r.json}`);
        return;
      }
      if (args.methods) {
        const { compareMethods, parseMethods, parseFrom, parseFamilyOverrides } = await import('../../lib/experiments/compare.ts');
        const methods = parseMethods(args.methods);
        const { axes, fixed } = sweep.parseSets(args.set ?? []);
        if (axes.length) throw new Error('--methods compares methods under one configuration: give --set key=value (one value), not a list');
        const r = await compareMethods({
          configFile: args.config, overrides: fixed, methods, seeds: args.seeds ?? 3, budgetSeconds: args.budget, budgetClock: args['budget-clock'],
          familyOverrides: parseFamilyOverrides(args['set-for'] ?? []), sharedWarmStart: args['shared-warm-start'], firstSeed: args['first-seed'],
          sftSteps: args['sft-steps'], from: args.from ? parseFrom(args.from) : undefined, samples: args.samples, out: args.out, log: (l) => console.log(l),
        });
        console.log(`[sweep] compared ${methods.join(', ')} over ${r.seeds.length} seed(s): ${r.md}, ${r.json}, ${r.grid}`);
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
        // The rendered runs keep no files: no --events, and run.outDir is an emptyDir that goes with its pod.
        console.log(`report: the runs write no event log and no command copies a checkpoint out of NATS yet; when they are done, put each run's eval.json (recovery-grpo eval --checkpoint of its final policy, fetched from its NATS object store checkpoints-<run-id> with a NATS client) in ${plan.out}/<run-id>/, then: recovery-grpo sweep --report ${plan.out} (final evaluations; the reward curves are in Prometheus: recovery_grpo_reward_mean by run_id)`);
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
