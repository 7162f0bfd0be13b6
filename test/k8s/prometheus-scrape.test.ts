// Integration: Debian's Prometheus, started on loopback, scrapes recovery-grpo metrics endpoints (lib/metrics:
// createMetrics + startMetricsServer), loads the alert rules of k8s/monitoring/prometheusrule.yaml, and answers
// through its HTTP API: the run's series are there with run_id and role, they move (the policy version rises), every
// rule evaluates cleanly, every dashboard query runs, and an alert fires on a NaN loss.
//
// The scrape targets are the processes of a short real local run (startTargets); alertExporter is an in-test
// exporter whose loss is NaN, for the alert check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { createMetrics, startMetricsServer } from '../../lib/metrics/index.ts';
import { freePort } from '../helpers/nats.ts';
import { renderKustomization } from './kustomize.ts';
import { runLocal } from '../../lib/local/local-run.ts';
import type { Supervisor } from '../../lib/local/supervisor.ts';
import { LABEL_VALUES } from './promql.ts';
import { requireTool } from './tools.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Target {
  /** host:port of a /metrics endpoint. */
  address: string;
  /** The pod label Prometheus gives its series (as the PodMonitor would). */
  pod: string;
}
interface Targets {
  runId: string;
  targets: Target[];
  stop(): Promise<void>;
}

/**
 * The run Prometheus scrapes: a real local run (nats-server and the four roles as processes on loopback,
 * lib/local/local-run.ts), each process's /metrics a target. Its step count is far more than the test needs, so the
 * run is still training whenever Prometheus first looks, however fast the machine; stop() ends it.
 */
async function startTargets(): Promise<Targets> {
  const dir = mkdtempSync(join(tmpdir(), 'scrape-run-'));
  let runId = '';
  let supervisor: Supervisor | undefined;
  let started!: (t: Target[]) => void;
  const targetsReady = new Promise<Target[]>((r) => (started = r));
  const run = runLocal({
    out: dir,
    seed: 5,
    sftSteps: 40,
    steps: 100_000,
    overrides: ['data.source.kind=procedural', 'data.size=16', 'data.source.count=64', 'model.width=4', 'model.depth=1', 'sft.batchSize=8', 'grpo.groupSize=4', 'grpo.samplesPerBatch=2', 'eval.samples=8'],
    log: () => undefined,
    onStarted: (sup, info) => {
      supervisor = sup;
      runId = info.config.run.id;
      started(Object.entries(info.metricsPorts).map(([name, port]) => ({ address: `127.0.0.1:${port}`, pod: `local-${name}` })));
    },
  });
  run.catch(() => undefined);
  const targets = await Promise.race([targetsReady, run.then(() => { throw new Error('the local run ended before it started'); })]);
  return {
    get runId() {
      return runId;
    },
    targets,
    async stop() {
      try {
        await supervisor?.stopAll();
        await run.catch(() => undefined); // rejects with "stopped before orchestrator finished", as it should
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** A learner whose loss turns NaN: RecoveryGrpoNonFiniteLoss must fire. */
async function alertExporter(): Promise<{ target: Target; runId: string; stop(): Promise<void> }> {
  const m = createMetrics('nan-test', 'learner', { processMetrics: false });
  m.get('loss').set({ kind: 'grpo' }, Number.NaN);
  m.get('policy_version').set(1);
  const s = await startMetricsServer({ port: 0, registry: m.registry });
  return { target: { address: s.url.replace(/^http:\/\//, ''), pod: 'nan-learner-0' }, runId: 'nan-test', stop: () => s.close() };
}

interface Prometheus {
  url: string;
  stop(): Promise<void>;
  log(): string;
}

/** `scrapeConfigs`: instead of one job over `targets` with namespace "local" and each target's pod label. */
async function startPrometheus(bin: string, targets: Target[], rulesFile?: string, scrapeConfigs?: unknown[]): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'rg-prometheus-'));
  const port = await freePort();
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '800ms', evaluation_interval: '1s' },
    rule_files: rulesFile ? [rulesFile] : [],
    // As the PodMonitor does it: job "recovery-grpo", namespace and pod target labels.
    scrape_configs: scrapeConfigs ?? [{ job_name: 'recovery-grpo', static_configs: targets.map((t) => ({ targets: [t.address], labels: { namespace: 'local', pod: t.pod } })) }],
  };
  writeFileSync(join(dir, 'prometheus.yml'), YAML.stringify(config));
  let out = '';
  const child: ChildProcess = spawn(
    bin,
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d) => (out = (out + d).slice(-4000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-4000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited (${child.exitCode}):\n${out}`);
    }
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready after 30 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, stop, log: () => out };
}

type Sample = { metric: Record<string, string>; value: [number, string] };
async function query(prom: Prometheus, expr: string): Promise<Sample[]> {
  const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: Sample[] } };
  if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error}`);
  return body.data!.resultType === 'vector' ? body.data!.result : [];
}
async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000, explain?: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${explain ? `: ${await explain()}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('Prometheus scrapes a run: series there with run_id and role, the policy version rises, rules and dashboard queries evaluate, a NaN loss fires its alert', { timeout: 120_000 }, async (t) => {
  const bin = requireTool(t, 'prometheus');
  if (!bin) return;

  const rule = renderKustomization(join(ROOT, 'k8s/monitoring')).find((o) => o.kind === 'PrometheusRule')!;
  const dir = mkdtempSync(join(tmpdir(), 'rg-prom-rules-'));
  const rulesFile = join(dir, 'rules.yml');
  writeFileSync(rulesFile, YAML.stringify({ groups: (rule.spec as { groups: unknown[] }).groups }));

  const run = await startTargets();
  const nan = await alertExporter();
  let prom: Prometheus | undefined;
  try {
    prom = await startPrometheus(bin, [...run.targets, nan.target], rulesFile);
    const p = prom;
    const R = `run_id="${run.runId}"`;

    // Every target scraped successfully at least once. Not `up == 1` at one instant: on a loaded machine one
    // scrape can miss its 800 ms timeout and flip a healthy target's `up` to 0 for a second.
    await until('every target up', async () => {
      const up = await query(p, 'max_over_time(up{job="recovery-grpo"}[1m]) == 1');
      return up.length === run.targets.length + 1 ? up : undefined;
    }, 60_000, async () => {
      const res = (await (await fetch(`${p.url}/api/v1/targets`)).json()) as { data: { activeTargets: { scrapeUrl: string; health: string; lastError: string }[] } };
      return res.data.activeTargets.map((x) => `${x.scrapeUrl} ${x.health} ${x.lastError}`).join('; ');
    });

    // The run's series, with run_id and role, from every role.
    const roles = await until('series from every role', async () => {
      const r = await query(p, `count by (role) ({__name__=~"recovery_grpo_.+", ${R}})`);
      return r.length >= 4 ? r : undefined;
    });
    assert.deepEqual(roles.map((s) => s.metric.role).sort(), ['learner', 'orchestrator', 'reward', 'rollout']);
    assert.deepEqual(await query(p, '{__name__=~"recovery_grpo_.+", run_id=""}'), [], 'every series carries run_id');
    assert.deepEqual(await query(p, '{__name__=~"recovery_grpo_.+", role=""}'), [], 'every series carries role');
    // Label values follow the catalogue's conventions (lower-case roles: the dashboard and alerts match on them).
    for (const [label, allowed] of Object.entries(LABEL_VALUES)) {
      const seen = (await query(p, `count by (${label}) ({__name__=~"recovery_grpo_.+", ${R}, ${label}!=""})`)).map((s) => s.metric[label]!);
      assert.deepEqual(seen.filter((v) => !allowed.includes(v)), [], `${label} values ${seen.join(', ')}: expected among ${allowed.join(', ')}`);
    }

    // The policy version rises.
    const version = async () => {
      const r = await query(p, `max(recovery_grpo_policy_version{${R}, role="learner"})`);
      return r.length ? Number(r[0]!.value[1]) : undefined;
    };
    const v1 = await until('a policy version', version);
    // ... and on into GRPO (the 40 SFT steps are versions 1..40), so the reward panels have data below.
    const v2 = await until('the policy version to rise into GRPO', async () => {
      const v = await version();
      return v !== undefined && v > v1 && v > 41 ? v : undefined;
    }, 60_000);
    t.diagnostic(`policy version ${v1} -> ${v2}`);
    const steps = await until('training steps counted', async () => {
      const r = await query(p, `sum(increase(recovery_grpo_train_steps_total{${R}}[1m]))`);
      return r.length && Number(r[0]!.value[1]) > 0 ? Number(r[0]!.value[1]) : undefined;
    });
    assert.ok(steps > 0);

    // Every alert rule loaded and evaluated without error.
    const rules = await until('every rule evaluated', async () => {
      const res = (await (await fetch(`${p.url}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[] }[] } };
      const all = res.data.groups.flatMap((g) => g.rules);
      return all.length > 0 && all.every((r) => !r.lastEvaluation.startsWith('0001-')) ? all : undefined;
    });
    const expected = (rule.spec as { groups: { rules: unknown[] }[] }).groups.flatMap((g) => g.rules).length;
    assert.equal(rules.length, expected, 'every rule of the PrometheusRule loaded');
    assert.deepEqual(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`), []);

    // The NaN loss fires RecoveryGrpoNonFiniteLoss (prom-client writes NaN, Prometheus reads it, the rule sees it).
    const firing = await until('RecoveryGrpoNonFiniteLoss firing', async () => {
      const res = (await (await fetch(`${p.url}/api/v1/alerts`)).json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } };
      const a = res.data.alerts.filter((x) => x.labels.alertname === 'RecoveryGrpoNonFiniteLoss' && x.state === 'firing');
      return a.length ? a : undefined;
    });
    assert.deepEqual(firing.map((a) => a.labels.run_id), [nan.runId], 'only the NaN run alerts');

    // Every dashboard query runs; the overview panels have data (polled: a gauge the orchestrator sets after its
    // first GRPO batch can reach Prometheus a scrape or two after the learner's version does).
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'k8s/monitoring/dashboards/recovery-grpo.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string; refId: string }[] }[] };
    const emptyQueries = async () => {
      const empty: string[] = [];
      for (const panel of dashboard.panels) {
        for (const target of panel.targets ?? []) {
          const expr = target.expr.replaceAll('$__rate_interval', '1m').replaceAll('$run_id', run.runId);
          const result = await query(p, expr); // throws on a query error
          if (result.length === 0) empty.push(`${panel.title} ${target.refId}`);
        }
      }
      return empty;
    };
    const OVERVIEW = ['Policy version (learner)', 'Training steps per minute', 'Mean reward', 'Workers connected'];
    const withoutOverview = (empty: string[]) => OVERVIEW.every((o) => !empty.some((e) => e.startsWith(`${o} `)));
    let empty = await emptyQueries();
    try {
      empty = await until('the overview panels to have data', async () => {
        const e = await emptyQueries();
        return withoutOverview(e) ? e : undefined;
      });
    } catch { /* asserted below, naming the panel */ }
    for (const overview of OVERVIEW) {
      assert.ok(!empty.some((e) => e.startsWith(`${overview} `)), `overview panel "${overview}" has data`);
    }
    t.diagnostic(empty.length ? `dashboard queries without data in this run: ${empty.join(', ')}` : 'every dashboard query has data');
  } catch (e) {
    if (prom) t.diagnostic(`prometheus log:\n${prom.log()}`);
    throw e;
  } finally {
    await prom?.stop();
    await run.stop();
    await nan.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A relabelling rule of a PodMonitor (camelCase) as Prometheus's scrape configuration writes it (snake_case). */
function relabelRule(rule: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(rule).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]));
}

test('the PodMonitor takes role from the pod: a worker pod posing as the orchestrator, or another namespace, moves no KEDA count', { timeout: 60_000 }, async (t) => {
  const bin = requireTool(t, 'prometheus');
  if (!bin) return;
  const monitor = renderKustomization(join(ROOT, 'k8s/monitoring')).find((o) => o.kind === 'PodMonitor')!;
  const endpoint = (monitor.spec as { podMetricsEndpoints: { relabelings?: Record<string, unknown>[]; metricRelabelings?: Record<string, unknown>[]; honorLabels?: boolean }[] }).podMetricsEndpoints[0]!;
  assert.notEqual(endpoint.honorLabels, true, 'a pod cannot set its own namespace or pod label');
  const scaled = renderKustomization(join(ROOT, 'k8s/overlays/gpu')).find((o) => o.kind === 'ScaledObject')!;
  const kedaQuery = (scaled.spec as { triggers: { metadata: { query: string } }[] }).triggers[0]!.metadata.query;
  const ns = scaled.metadata.namespace!;

  // This run's orchestrator (3 tasks waiting, 2 rollout workers); a rollout worker pod of the same run whose process
  // claims to be the orchestrator with 1000 waiting; another namespace's orchestrator under the same run id.
  const exporters = [
    { ns, pod: 'recovery-grpo-orchestrator-abc', component: 'orchestrator', queue: 3, workers: 2 },
    { ns, pod: 'recovery-grpo-rollout-worker-xyz', component: 'rollout-worker', queue: 1000, workers: 16 },
    { ns: 'someone-else', pod: 'recovery-grpo-orchestrator-def', component: 'orchestrator', queue: 500, workers: 16 },
  ];
  const servers: Awaited<ReturnType<typeof startMetricsServer>>[] = [];
  for (const e of exporters) {
    const m = createMetrics('recovery-grpo', 'orchestrator', { processMetrics: false });
    m.get('queue_depth').set({ queue: 'rollout' }, e.queue);
    m.get('workers_connected').set({ worker_role: 'rollout' }, e.workers);
    servers.push(await startMetricsServer({ port: 0, registry: m.registry }));
  }
  let prom: Prometheus | undefined;
  try {
    // One job as prometheus-operator renders the PodMonitor: target labels namespace and pod, the pod's labels as
    // __meta_kubernetes_pod_label_*, then the endpoint's relabelings and metricRelabelings.
    prom = await startPrometheus(bin, [], undefined, [{
      job_name: 'recovery-grpo',
      static_configs: exporters.map((e, i) => ({
        targets: [servers[i]!.url.replace(/^http:\/\//, '')],
        labels: { namespace: e.ns, pod: e.pod, __meta_kubernetes_pod_label_app_kubernetes_io_component: e.component },
      })),
      relabel_configs: (endpoint.relabelings ?? []).map(relabelRule),
      metric_relabel_configs: (endpoint.metricRelabelings ?? []).map(relabelRule),
    }]);
    const p = prom;
    await until('every exporter scraped', async () => {
      const r = await query(p, 'recovery_grpo_queue_depth');
      return r.length === exporters.length ? r : undefined;
    });
    const roles = Object.fromEntries((await query(p, 'recovery_grpo_queue_depth')).map((s) => [s.metric.pod!, s.metric.role]));
    assert.deepEqual(roles, { 'recovery-grpo-orchestrator-abc': 'orchestrator', 'recovery-grpo-rollout-worker-xyz': 'rollout', 'recovery-grpo-orchestrator-def': 'orchestrator' });
    assert.deepEqual(await query(p, '{exported_role!=""}'), [], 'the role the process wrote is not kept');
    const value = await query(p, kedaQuery);
    assert.equal(value.length, 1, kedaQuery);
    assert.equal(Number(value[0]!.value[1]), 3 + 2, `the KEDA query counts only this namespace's orchestrator: ${kedaQuery}`);
  } catch (e) {
    if (prom) t.diagnostic(`prometheus log:\n${prom.log()}`);
    throw e;
  } finally {
    await prom?.stop();
    for (const s of servers) await s.close();
  }
});

test('Prometheus scrapes a role that takes the metrics token: up with the PodMonitor\'s bearer token from a file, down (401) without it or with another', { timeout: 90_000 }, async (t) => {
  const bin = requireTool(t, 'prometheus');
  if (!bin) return;
  const natsBin = requireTool(t, 'nats-server', 'bash scripts/ensure-nats-server.sh');
  if (!natsBin) return;
  // How the PodMonitor authenticates (prometheus-operator writes the Secret's value into the scrape config; a plain
  // Prometheus reads it from a file, authorization.credentials_file, the same header on the wire).
  const monitor = renderKustomization(join(ROOT, 'k8s/monitoring')).find((o) => o.kind === 'PodMonitor')!;
  const endpoint = (monitor.spec as { podMetricsEndpoints: { authorization?: { type?: string; credentials: { name: string; key: string } } }[] }).podMetricsEndpoints[0]!;
  assert.deepEqual(endpoint.authorization, { type: 'Bearer', credentials: { name: 'recovery-grpo-metrics-scrape', key: 'token' } }, 'the PodMonitor presents the metrics token');
  const type = endpoint.authorization!.type!;

  const dir = mkdtempSync(join(tmpdir(), 'rg-prom-token-'));
  const token = randomBytes(32).toString('hex');
  const tokenFile = join(dir, 'token');
  const wrongFile = join(dir, 'wrong');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  writeFileSync(wrongFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  // The real orchestrator (NATS, its run state) with the token on its metrics port, as a pod runs it.
  const { startNatsServer } = await import('../helpers/nats.ts');
  const { runOrchestrator } = await import('../../orchestrator/main.ts');
  const { loadConfig } = await import('../../lib/config/index.ts');
  const nats = await startNatsServer();
  const config = loadConfig(undefined, ['run.id=scrape-token', 'data.source.kind=procedural', 'data.size=16', 'data.source.count=16', 'model.width=4', 'model.depth=1', 'sft.batchSize=4', 'sft.steps=10', 'grpo.steps=1']);
  const orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, metricsToken: token, log: () => undefined });
  const target = orch.metricsUrl.replace(/^http:\/\//, '');
  let prom: Prometheus | undefined;
  try {
    const job = (name: string, auth?: Record<string, unknown>) => ({ job_name: name, static_configs: [{ targets: [target] }], ...(auth ? { authorization: auth } : {}) });
    prom = await startPrometheus(bin, [], undefined, [
      job('with-token', { type, credentials_file: tokenFile }),
      job('without-token'),
      job('wrong-token', { type, credentials_file: wrongFile }),
    ]);
    const p = prom;
    type Active = { labels: { job: string }; health: string; lastError: string };
    const targets = await until('every job scraped once', async () => {
      const res = (await (await fetch(`${p.url}/api/v1/targets`)).json()) as { data: { activeTargets: Active[] } };
      const a = res.data.activeTargets;
      return a.length === 3 && a.every((x) => x.health !== 'unknown') ? a : undefined;
    }, 30_000);
    const byJob = Object.fromEntries(targets.map((x) => [x.labels.job, x]));
    assert.equal(byJob['with-token']!.health, 'up', `with the token: ${byJob['with-token']!.lastError}`);
    for (const j of ['without-token', 'wrong-token']) {
      assert.equal(byJob[j]!.health, 'down', `${j}: down`);
      assert.match(byJob[j]!.lastError, /401 Unauthorized/, `${j}: the role answered 401`);
    }
    const up = await until('up by job', async () => {
      const r = await query(p, 'up');
      return r.length === 3 ? r : undefined;
    });
    assert.deepEqual(Object.fromEntries(up.map((s) => [s.metric.job!, s.value[1]])), { 'with-token': '1', 'without-token': '0', 'wrong-token': '0' });
    // the series came through the token, and only through it
    const series = await until('the orchestrator\'s series', async () => {
      const r = await query(p, 'recovery_grpo_queue_depth{run_id="scrape-token"}');
      return r.length ? r : undefined;
    });
    assert.deepEqual([...new Set(series.map((s) => s.metric.job))], ['with-token']);
    assert.doesNotMatch(p.log(), new RegExp(token), 'Prometheus does not log the token');
  } catch (e) {
    if (prom) t.diagnostic(`prometheus log:\n${prom.log()}`);
    throw e;
  } finally {
    await prom?.stop();
    await orch.stop();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
