// A reward-weight (or any config) ablation on the cluster: one complete run per value, each in its own namespace,
// rendered as kustomizations on top of an overlay; one `kubectl apply -k` deploys them all.
//
//   scripts/k8s-ablation.sh reward.weights.clip=0,0.1,0.2
//   scripts/k8s-ablation.sh --overlay cpu-dev --out runs/clip-sweep --set grpo.steps=200 reward.weights.clip=0,0.2 reward.alpha=2,5
//
// Several sweep arguments give their grid (every combination). Each run gets run.id <name>-<key>-<value>... (also its
// namespace; dots become "p", minus signs "m": clip=0.1 -> clip-0p1), its own run.yaml (the overlay's, with the
// overrides applied and validated by lib/config), and a KEDA query rewritten to its run_id. Writes:
//   OUT/kustomization.yaml        every run (kubectl apply -k OUT)
//   OUT/<run-id>/kustomization.yaml, OUT/<run-id>/run.yaml, OUT/<run-id>/nats.conf (the overlay's nats.conf where
//                                 its kustomization generates recovery-grpo-nats-config from one, else
//                                 k8s/base/nats.conf; with its NATS grants naming this run: lib/deploy/k8s-nats-conf.ts)
//   OUT/runs.tsv                  run id, namespace, overrides
// and prints the commands that deploy them. It does not call kubectl itself.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import YAML from 'yaml';
import { applyOverrides, ConfigError, parseConfig, parseConfigText } from '../lib/config/index.ts';
import { withNatsAccounts } from '../lib/deploy/k8s-nats-conf.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CONFIG_MAP = 'recovery-grpo-config';
const NATS_CONFIG_MAP = 'recovery-grpo-nats-config';
/** The NATS configuration an overlay mounts unless it generates recovery-grpo-nats-config itself. */
const BASE_NATS_CONF = join(ROOT, 'k8s/base/nats.conf');

export interface AblationOptions {
  /** An overlay name under k8s/overlays (cpu-dev, gpu) or a path to a kustomization folder. Default gpu. */
  overlay?: string;
  /** Output folder. Default runs/k8s-ablation (relative to the current directory). */
  out?: string;
  /** Prefix of every run id. Default: the overlay's run.id. */
  name?: string;
  /** Overrides applied to every run (key=value). */
  set?: string[];
  /** Sweeps: key=v1,v2,... (values split on top-level commas, so [0.9,0.99] stays one value). */
  sweeps: string[];
}

export interface PlannedRun {
  runId: string;
  namespace: string;
  overrides: string[];
  /** The run's run.yaml text. */
  config: string;
  /** The run's kustomization.yaml text (paths relative to OUT/<run-id>). */
  kustomization: string;
  /** The run's nats.conf text: the base's, its grants naming this run (a run's credentials touch its streams only). */
  natsConf: string;
}

export interface AblationPlan {
  out: string;
  overlayDir: string;
  runs: PlannedRun[];
}

// The grid's value syntax is shared with `recovery-grpo sweep` (lib/experiments/sweep-values.ts).
export { slug, splitValues } from '../lib/experiments/sweep-values.ts';
import { slug, splitValues } from '../lib/experiments/sweep-values.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function fail(msg: string): never {
  throw new Error(`k8s-ablation: ${msg}`);
}

function overlayDirOf(overlay: string): string {
  const named = join(ROOT, 'k8s', 'overlays', overlay);
  const dir = existsSync(named) ? named : resolve(overlay);
  if (!existsSync(join(dir, 'kustomization.yaml'))) fail(`overlay ${overlay}: no kustomization.yaml in ${dir} (try cpu-dev or gpu)`);
  return dir;
}

/**
 * The run.yaml the overlay gives recovery-grpo-config, the nats.conf it gives recovery-grpo-nats-config (undefined:
 * it mounts the base's), and the ScaledObjects among its resource files. Only the overlay's own kustomization is
 * read: an overlay built on another that replaces nats.conf must replace it too (or the base's is used).
 */
function readOverlay(dir: string): { configPath: string; natsConfPath: string | undefined; scaledObjects: { name: string; queries: string[] }[] } {
  const k = YAML.parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Record<string, any>;
  const generated = (name: string, file: string): string | undefined => {
    let found: string | undefined;
    for (const g of k.configMapGenerator ?? []) {
      if (g.name !== name) continue;
      for (const f of g.files ?? []) {
        const [key, p] = String(f).includes('=') ? String(f).split('=', 2) : [String(f).split('/').pop(), String(f)];
        if (key === file) found = join(dir, p!);
      }
    }
    return found;
  };
  const configPath = generated(CONFIG_MAP, 'run.yaml');
  if (!configPath) fail(`${dir}/kustomization.yaml does not generate ${CONFIG_MAP} from a run.yaml`);
  const natsConfPath = generated(NATS_CONFIG_MAP, 'nats.conf');
  const scaledObjects: { name: string; queries: string[] }[] = [];
  for (const r of k.resources ?? []) {
    const p = join(dir, r);
    if (!existsSync(p) || !p.endsWith('.yaml')) continue;
    for (const doc of YAML.parseAllDocuments(readFileSync(p, 'utf8'))) {
      const o = doc.toJS() as Record<string, any> | null;
      if (o?.kind !== 'ScaledObject') continue;
      const queries = (o.spec?.triggers ?? []).map((t: any) => (t.type === 'prometheus' ? String(t.metadata?.query ?? '') : ''));
      scaledObjects.push({ name: o.metadata.name, queries });
    }
  }
  return { configPath, natsConfPath, scaledObjects };
}

export function planAblation(opts: AblationOptions): AblationPlan {
  if (opts.sweeps.length === 0) fail('nothing to sweep: give key=v1,v2,... (e.g. reward.weights.clip=0,0.1,0.2)');
  const overlayDir = overlayDirOf(opts.overlay ?? 'gpu');
  const out = resolve(opts.out ?? 'runs/k8s-ablation');
  const { configPath, natsConfPath = BASE_NATS_CONF, scaledObjects } = readOverlay(overlayDir);
  const baseText = readFileSync(configPath, 'utf8');
  const base = parseConfigText(baseText, configPath);
  const baseRunId = parseConfig(base, { source: configPath }).run.id;
  const prefix = slug(opts.name ?? baseRunId);
  if (!prefix) fail(`--name ${opts.name}: nothing left for a run id`);

  const sweeps = opts.sweeps.map((s) => {
    const eq = s.indexOf('=');
    if (eq <= 0) fail(`sweep ${JSON.stringify(s)} must look like key.path=v1,v2,...`);
    const key = s.slice(0, eq).trim();
    const values = splitValues(s.slice(eq + 1));
    if (values.some((v) => v === '')) fail(`sweep ${key}: empty value in ${JSON.stringify(s.slice(eq + 1))}`);
    if (new Set(values).size !== values.length) fail(`sweep ${key}: repeated value`);
    return { key, values };
  });
  const keys = sweeps.map((s) => s.key);
  if (new Set(keys).size !== keys.length) fail('a key is swept twice');
  // Short key names in run ids (last segment) unless two sweeps share it.
  const lasts = keys.map((k) => k.split('.').pop()!);
  const short = (k: string, i: number) => slug(lasts.filter((l) => l === lasts[i]).length > 1 ? k : lasts[i]!);

  let grid: { key: string; value: string }[][] = [[]];
  for (const s of sweeps) grid = grid.flatMap((combo) => s.values.map((value) => [...combo, { key: s.key, value }]));

  const runs: PlannedRun[] = [];
  for (const combo of grid) {
    const runId = [prefix, ...combo.flatMap((c, i) => [short(c.key, i), slug(c.value)])].join('-');
    if (runId.length > 63 || !DNS_LABEL.test(runId)) fail(`run id ${runId} is not a valid namespace name (at most 63 of a-z, 0-9, -): use a shorter --name`);
    const overrides = [...(opts.set ?? []), ...combo.map((c) => `${c.key}=${c.value}`)];
    const all = [...overrides, `run.id=${runId}`];
    let data: Record<string, unknown>;
    try {
      data = applyOverrides(base, all);
      parseConfig(data, { source: `${relative(process.cwd(), configPath)} with ${overrides.join(' ')}` });
    } catch (e) {
      if (e instanceof ConfigError) fail(`run ${runId}: ${e.message}`);
      throw e;
    }
    const config = [
      `# Ablation run ${runId}: ${overrides.join(' ')}`,
      `# ${relative(ROOT, configPath)} with these overrides; generated by scripts/k8s-ablation.sh (re-run it rather than edit).`,
      YAML.stringify(data, { lineWidth: 0 }),
    ].join('\n');

    const runDir = join(out, runId);
    const patches = scaledObjects.map((so) => ({
      target: { group: 'keda.sh', kind: 'ScaledObject', name: so.name },
      patch: YAML.stringify(
        so.queries.flatMap((q, i) => {
          if (!q) return [];
          if (!/run_id="[^"]*"/.test(q)) fail(`ScaledObject ${so.name}: its query does not filter on run_id="...": ${q}`);
          if (!/namespace="[^"]*"/.test(q)) fail(`ScaledObject ${so.name}: its query does not filter on namespace="...": ${q}`);
          // each run's namespace is its run id
          const value = q.replace(/run_id="[^"]*"/g, `run_id="${runId}"`).replace(/namespace="[^"]*"/g, `namespace="${runId}"`);
          return [{ op: 'replace', path: `/spec/triggers/${i}/metadata/query`, value }];
        }),
        { lineWidth: 0 },
      ),
    }));
    const kustomization = [
      `# Ablation run ${runId}: ${overrides.join(' ')} (generated by scripts/k8s-ablation.sh)`,
      YAML.stringify(
        {
          apiVersion: 'kustomize.config.k8s.io/v1beta1',
          kind: 'Kustomization',
          namespace: runId,
          resources: [relative(runDir, overlayDir)],
          configMapGenerator: [{ name: CONFIG_MAP, behavior: 'replace', files: ['run.yaml'] }, { name: NATS_CONFIG_MAP, behavior: 'replace', files: ['nats.conf'] }],
          ...(patches.length ? { patches } : {}),
        },
        { lineWidth: 0 },
      ),
    ].join('\n');
    const natsConf = withNatsAccounts(readFileSync(natsConfPath, 'utf8'), runId, natsConfPath);
    runs.push({ runId, namespace: runId, overrides, config, kustomization, natsConf });
  }
  return { out, overlayDir, runs };
}

export function writeAblation(plan: AblationPlan, opts: { force?: boolean } = {}): void {
  if (existsSync(join(plan.out, 'kustomization.yaml'))) {
    if (!opts.force) fail(`${plan.out} already holds an ablation: pass --force to replace it, or choose --out`);
    rmSync(plan.out, { recursive: true, force: true });
  }
  mkdirSync(plan.out, { recursive: true });
  for (const r of plan.runs) {
    const dir = join(plan.out, r.runId);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'run.yaml'), r.config);
    writeFileSync(join(dir, 'kustomization.yaml'), r.kustomization);
    writeFileSync(join(dir, 'nats.conf'), r.natsConf);
  }
  writeFileSync(
    join(plan.out, 'kustomization.yaml'),
    `# Every run of this ablation (generated by scripts/k8s-ablation.sh): kubectl apply -k ${shown(plan.out)}\n` +
      YAML.stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: plan.runs.map((r) => r.runId) }),
  );
  writeFileSync(join(plan.out, 'runs.tsv'), ['run_id\tnamespace\toverrides', ...plan.runs.map((r) => `${r.runId}\t${r.namespace}\t${r.overrides.join(' ')}`)].join('\n') + '\n');
}

/** A path as the user would type it: relative to the current directory when under it, else absolute. */
function shown(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel === '' ? '.' : rel.startsWith('..') ? p : rel;
}

export function deployCommands(plan: AblationPlan): string[] {
  return [`${shown(join(ROOT, 'scripts'))}/k8s-secrets.sh ${plan.runs.map((r) => r.namespace).join(' ')}`, `kubectl apply -k ${shown(plan.out)}`];
}

const USAGE = `usage: scripts/k8s-ablation.sh [--overlay gpu|cpu-dev|DIR] [--out DIR] [--name PREFIX] [--set key=value ...] [--force] key=v1,v2,... [key2=...]
  One run per value (per combination, for several keys), each in its own namespace, on top of the overlay.
  Each run gets its own run.yaml and nats.conf (its NATS grants naming its run): the overlay's nats.conf where its
  kustomization.yaml generates recovery-grpo-nats-config from one, else k8s/base/nats.conf (which then replaces any
  NATS configuration of an overlay it builds on).
  example: scripts/k8s-ablation.sh reward.weights.clip=0,0.1,0.2`;

export function parseArgs(argv: string[]): AblationOptions & { force: boolean; help: boolean } {
  const o: AblationOptions & { force: boolean; help: boolean } = { sweeps: [], set: [], force: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (name: string) => {
      const eq = a.indexOf('=');
      if (a.startsWith(`--${name}=`)) return a.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) fail(`--${name} needs a value`);
      return v;
    };
    if (a === '-h' || a === '--help') o.help = true;
    else if (a === '--force') o.force = true;
    else if (a === '--overlay' || a.startsWith('--overlay=')) o.overlay = value('overlay');
    else if (a === '--out' || a.startsWith('--out=')) o.out = value('out');
    else if (a === '--name' || a.startsWith('--name=')) o.name = value('name');
    else if (a === '--set' || a.startsWith('--set=')) o.set!.push(value('set'));
    else if (a.startsWith('-')) fail(`unknown option ${a}\n${USAGE}`);
    else o.sweeps.push(a);
  }
  return o;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const args = parseArgs(process.argv.slice(2));
    if (args.help) {
      console.log(USAGE);
      process.exit(0);
    }
    const plan = planAblation(args);
    writeAblation(plan, { force: args.force });
    const width = Math.max(...plan.runs.map((r) => r.runId.length));
    console.log(`Rendered ${plan.runs.length} runs on ${shown(plan.overlayDir)} into ${shown(plan.out)}:`);
    for (const r of plan.runs) console.log(`  ${r.runId.padEnd(width)}  ${r.overrides.join(' ')}`);
    console.log("\nDeploy (each namespace's Secrets: scripts/k8s-secrets.sh; then every run):");
    for (const c of deployCommands(plan)) console.log(`  ${c}`);
    console.log(`\nWatch: kubectl get pods -A -l app.kubernetes.io/part-of=recovery-grpo; Grafana dashboard "recovery-grpo: GRPO training" (uid recovery-grpo), variable run.`);
    console.log(`Remove: kubectl delete -k ${shown(plan.out)}; kubectl delete namespace ${plan.runs.map((r) => r.namespace).join(' ')}`);
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
}

