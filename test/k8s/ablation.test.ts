// scripts/k8s-ablation.sh: one complete run per value, each in its own namespace with its own run id and config,
// rendered (offline, and by kubectl kustomize where it exists) into valid objects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { loadConfig, parseConfig, parseConfigText, type RunConfig } from '../../lib/config/index.ts';
import { parseArgs, planAblation, slug, splitValues, writeAblation } from '../../scripts/k8s-ablation.ts';
import { parseK8sYaml, renderKustomization, type K8sObject } from './kustomize.ts';
import { k8sNatsAccounts } from '../../lib/deploy/k8s-nats-conf.ts';
import { validateK8sObject } from './schemas.ts';
import { run, which } from './tools.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = join(ROOT, 'scripts/k8s-ablation.sh');

function configsByNamespace(objs: K8sObject[]): Map<string, RunConfig> {
  const out = new Map<string, RunConfig>();
  for (const o of objs) {
    if (o.kind !== 'ConfigMap' || !o.metadata.name.startsWith('recovery-grpo-config')) continue;
    out.set(o.metadata.namespace!, parseConfig(parseConfigText((o.data as Record<string, string>)['run.yaml']!, o.metadata.name)));
  }
  return out;
}
/** A config without the fields an ablation run changes, for comparing with the overlay's. */
function rest(c: RunConfig): unknown {
  const x = structuredClone(c) as Record<string, any>;
  delete x.run.id;
  delete x.reward.weights.clip;
  return x;
}

test('reward.weights.clip=0,0.1,0.2: three runs, each in its namespace, with its weight, run id and KEDA query', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'rg-ablation-'));
  try {
    const r = run('bash', [SCRIPT, '--out', out, '--force', 'reward.weights.clip=0,0.1,0.2'], { cwd: ROOT });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /recovery-grpo-clip-0p1\s+reward\.weights\.clip=0\.1/);
    assert.match(r.out, /k8s-secrets\.sh recovery-grpo-clip-0 recovery-grpo-clip-0p1 recovery-grpo-clip-0p2/);
    assert.match(r.out, new RegExp(`kubectl apply -k ${out.replace(/[/.]/g, '\\$&')}`));
    assert.equal(readFileSync(join(out, 'runs.tsv'), 'utf8').trim().split('\n').length, 4);

    const objs = renderKustomization(out);
    const gpu = renderKustomization(join(ROOT, 'k8s/overlays/gpu'));
    assert.equal(objs.length, 3 * gpu.length, 'a complete stack per run');
    const base = loadConfig(join(ROOT, 'k8s/overlays/gpu/run.yaml'));
    const configs = configsByNamespace(objs);
    assert.deepEqual([...configs.keys()].sort(), ['recovery-grpo-clip-0', 'recovery-grpo-clip-0p1', 'recovery-grpo-clip-0p2']);
    for (const [ns, cfg] of configs) {
      assert.equal(cfg.run.id, ns, 'run id = namespace');
      assert.equal(cfg.reward.weights.clip, { 'recovery-grpo-clip-0': 0, 'recovery-grpo-clip-0p1': 0.1, 'recovery-grpo-clip-0p2': 0.2 }[ns]);
      assert.equal(cfg.reward.weights.ssim, base.reward.weights.ssim, 'the other weight untouched');
      assert.deepEqual(rest(cfg), rest(base), 'everything else as in the overlay');
      const so = objs.find((o) => o.kind === 'ScaledObject' && o.metadata.namespace === ns)!;
      assert.match((so.spec as any).triggers[0].metadata.query, new RegExp(`run_id="${ns}"`), 'KEDA follows this run\'s queue');
      const namespaces = [...((so.spec as any).triggers[0].metadata.query as string).matchAll(/namespace="([^"]*)"/g)].map((m) => m[1]);
      assert.ok(namespaces.length > 0 && namespaces.every((n) => n === ns), `KEDA counts only namespace ${ns}: ${namespaces.join(', ')}`);
      // its NATS grants name this run (the base's name recovery-grpo, whose streams this run's learner does not make)
      const nats = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.namespace === ns && o.metadata.name.startsWith('recovery-grpo-nats-config'))!;
      assert.ok((nats.data as Record<string, string>)['nats.conf']!.includes(k8sNatsAccounts(ns)), `${ns}: nats.conf's grants name run ${ns}`);
      const workloads = objs.filter((o) => o.metadata.namespace === ns && ['Job', 'Deployment', 'StatefulSet'].includes(o.kind));
      assert.equal(workloads.length, 5, `${ns}: orchestrator, learner, two worker kinds, NATS`);
      for (const w of workloads) {
        const vol = ((w.spec as any).template.spec.volumes as any[]).find((v) => v.configMap?.name?.startsWith('recovery-grpo-config'));
        if (vol) assert.ok(objs.some((o) => o.kind === 'ConfigMap' && o.metadata.namespace === ns && o.metadata.name === vol.configMap.name), `${ns}/${w.metadata.name} mounts its own run's config`);
      }
    }
    for (const o of objs) await validateK8sObject(o);

    const kubectl = which('kubectl');
    if (!kubectl) {
      t.diagnostic('kubectl is not installed: the ablation render is not cross-checked against kustomize');
      return;
    }
    const k = run(kubectl, ['kustomize', out], { timeoutMs: 60_000 });
    assert.equal(k.code, 0, k.out);
    const theirs = parseK8sYaml(k.out, 'kubectl kustomize') as K8sObject[];
    const key = (o: K8sObject) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`;
    const mine = new Map(objs.map((o) => [key(o), o]));
    assert.equal(theirs.length, objs.length);
    for (const o of theirs) assert.ok(isDeepStrictEqual(mine.get(key(o)), o), `${key(o)} differs from kubectl kustomize`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a grid over two keys on cpu-dev, with a fixed override and a name', () => {
  const out = mkdtempSync(join(tmpdir(), 'rg-ablation-'));
  try {
    const plan = planAblation(parseArgs(['--overlay', 'cpu-dev', '--out', out, '--name', 'sweep', '--set', 'grpo.steps=20', 'reward.weights.clip=0,0.5', 'reward.alpha=2,5']));
    writeAblation(plan, { force: true });
    const configs = configsByNamespace(renderKustomization(out));
    assert.deepEqual([...configs.keys()].sort(), ['sweep-clip-0-alpha-2', 'sweep-clip-0-alpha-5', 'sweep-clip-0p5-alpha-2', 'sweep-clip-0p5-alpha-5']);
    for (const [ns, cfg] of configs) {
      assert.equal(cfg.grpo.steps, 20);
      assert.equal(cfg.reward.alpha, Number(ns.split('-alpha-')[1]));
      assert.equal(cfg.data.source.count, 64, 'the cpu-dev overlay\'s own settings');
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('an overlay that generates its own nats.conf: each run\'s is that one, its grants naming the run (not the base\'s)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rg-ablation-overlay-'));
  try {
    copyFileSync(join(ROOT, 'k8s/overlays/cpu-dev/run.yaml'), join(dir, 'run.yaml'));
    writeFileSync(join(dir, 'nats.conf'), `# a custom overlay's NATS configuration\nmax_connections: 123\n${readFileSync(join(ROOT, 'k8s/base/nats.conf'), 'utf8')}`);
    writeFileSync(join(dir, 'kustomization.yaml'), `resources:\n  - ${relative(dir, join(ROOT, 'k8s/base'))}\nconfigMapGenerator:\n  - name: recovery-grpo-config\n    behavior: replace\n    files: [run.yaml]\n  - name: recovery-grpo-nats-config\n    behavior: replace\n    files: [nats.conf]\n`);
    const plan = planAblation(parseArgs(['--overlay', dir, '--out', join(dir, 'out'), 'reward.weights.clip=0,0.5']));
    assert.equal(plan.runs.length, 2);
    for (const r of plan.runs) {
      assert.match(r.natsConf, /^max_connections: 123$/m, `${r.runId}: the overlay's nats.conf, not k8s/base's`);
      assert.ok(r.natsConf.includes(k8sNatsAccounts(r.runId)), `${r.runId}: its grants name its run`);
    }
    // an overlay without one: the base's
    const gpu = planAblation(parseArgs(['--overlay', 'gpu', '--out', join(dir, 'out2'), 'reward.weights.clip=0']));
    assert.doesNotMatch(gpu.runs[0]!.natsConf, /max_connections: 123/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mistakes are refused with a message that names them', () => {
  const out = mkdtempSync(join(tmpdir(), 'rg-ablation-'));
  try {
    const bad = (args: string[], re: RegExp) => assert.throws(() => planAblation(parseArgs(['--out', join(out, 'x'), ...args])), re, args.join(' '));
    bad(['reward.weights.cilp=0,1'], /reward\.weights\.cilp: is not used by reward\.expression/);
    bad(['grpo.clipLow=0.1,-1'], /grpo\.clipLow: must be > 0/);
    bad([], /nothing to sweep/);
    bad(['reward.weights.clip=0,0'], /repeated value/);
    bad(['--overlay', 'nope', 'reward.weights.clip=0'], /overlay nope: no kustomization\.yaml/);
    bad(['--name', 'x'.repeat(60), 'reward.weights.clip=0'], /not a valid namespace name/);
    bad(['--bogus', 'reward.weights.clip=0'], /unknown option --bogus/);
    writeAblation(planAblation(parseArgs(['--out', join(out, 'y'), 'reward.weights.clip=0'])));
    assert.throws(() => writeAblation(planAblation(parseArgs(['--out', join(out, 'y'), 'reward.weights.clip=0']))), /already holds an ablation: pass --force/);
    assert.ok(!existsSync(join(out, 'x')), 'nothing written on error');
    // From the command line: exit code 2 and the message on stderr.
    const r = run('bash', [SCRIPT, '--out', join(out, 'z'), 'reward.weights.cilp=0,1'], { cwd: ROOT });
    assert.equal(r.code, 2);
    assert.match(r.out, /k8s-ablation: run recovery-grpo-cilp-0: config error: reward\.weights\.cilp/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('values split on top-level commas; run-id slugs', () => {
  assert.deepEqual(splitValues('0,0.1,0.2'), ['0', '0.1', '0.2']);
  assert.deepEqual(splitValues('[0.9,0.99],[0.8,0.9]'), ['[0.9,0.99]', '[0.8,0.9]']);
  assert.deepEqual(splitValues('"a,b",c'), ['"a,b"', 'c']);
  assert.equal(slug('0.1'), '0p1');
  assert.equal(slug('-0.5'), 'm0p5');
  assert.equal(slug('[0.9,0.99]'), '0p9-0p99');
  assert.equal(slug('Dense'), 'dense');
});
