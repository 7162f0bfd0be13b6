// Monitoring: the Grafana dashboard, the PrometheusRule alerts and the KEDA query refer only to metrics and labels
// the code exports (lib/metrics/catalogue.ts); promtool accepts the rules and their unit tests pass; the dashboard
// file is what scripts/k8s-dashboard.ts generates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { CATALOGUE, METRIC_PREFIX } from '../../lib/metrics/catalogue.ts';
import { loadConfig } from '../../lib/config/index.ts';
import { DASHBOARD_PATH, dashboardText, renderDashboard } from '../../scripts/k8s-dashboard.ts';
import { renderKustomization } from './kustomize.ts';
import { RUN_OVERLAYS } from './overlays.ts';
import { checkPromql, promqlRefs } from './promql.ts';
import { requireTool, run } from './tools.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const at = (p: string) => join(ROOT, p);

const monitoring = renderKustomization(at('k8s/monitoring'));
const rule = monitoring.find((o) => o.kind === 'PrometheusRule')!;
type RuleSpec = { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
const groups = (rule.spec as { groups: { name: string; rules: RuleSpec[] }[] }).groups;
const alerts = groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8')) as { panels: Panel[]; templating: { list: { name: string; query?: unknown; definition?: string }[] } };
type Panel = { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets?: { refId: string; expr: string; legendFormat?: string }[] };

/** Grafana variables replaced by values Prometheus accepts. */
function substitute(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '1m').replaceAll('$run_id', 'run-x');
}
const legendLabels = (legend = '') => [...legend.matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)].map((m) => m[1]!);

function dashboardExpressions(): { where: string; expr: string; legend: string[] }[] {
  const out: { where: string; expr: string; legend: string[] }[] = [];
  for (const p of dashboard.panels) {
    for (const t of p.targets ?? []) out.push({ where: `dashboard panel "${p.title}" ${t.refId}`, expr: substitute(t.expr), legend: legendLabels(t.legendFormat) });
  }
  for (const v of dashboard.templating.list) {
    if (v.definition) out.push({ where: `dashboard variable ${v.name}`, expr: v.definition, legend: [] });
  }
  return out;
}

function kedaQueries(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const overlay of ['k8s/overlays/cpu-dev', 'k8s/overlays/gpu']) {
    for (const o of renderKustomization(at(overlay))) {
      if (o.kind !== 'ScaledObject') continue;
      for (const tr of (o.spec as { triggers: { type: string; metadata: Record<string, string> }[] }).triggers) {
        if (tr.type === 'prometheus') out.push({ where: `${overlay} ScaledObject ${o.metadata.name}`, expr: tr.metadata.query! });
      }
    }
  }
  return out;
}

test('dashboard file is what scripts/k8s-dashboard.ts generates', () => {
  assert.equal(readFileSync(DASHBOARD_PATH, 'utf8'), dashboardText(), 'stale: run node --import tsx scripts/k8s-dashboard.ts');
  const cm = monitoring.find((o) => o.kind === 'ConfigMap')!;
  assert.equal(cm.metadata.labels?.grafana_dashboard, '1', 'the Grafana sidecar label');
  assert.deepEqual(JSON.parse((cm.data as Record<string, string>)['recovery-grpo.json']!), renderDashboard());
});

test('dashboard: the panels an operator looks at first, a sound layout, the run variable', () => {
  const titles = dashboard.panels.map((p) => p.title);
  for (const want of [
    'Reward and components', 'KL and clip fraction', 'Policy version per process', 'Staleness of trained samples',
    'Throughput per role', 'Queue depths', 'Worker counts', 'Checkpoint broadcast times', 'Days until each presented certificate expires',
  ]) assert.ok(titles.includes(want), `panel "${want}" is missing`);
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of dashboard.panels) {
    assert.ok(p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title}: fits the 24-column grid`);
    if (p.type === 'row') continue;
    assert.ok(p.targets && p.targets.length > 0, `${p.title}: has queries`);
    for (const t of p.targets!) assert.match(t.expr, /run_id="\$run_id"/, `${p.title} ${t.refId}: filters on the run variable`);
  }
  // No two panels overlap.
  const cells = new Set<string>();
  for (const p of dashboard.panels) {
    for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
      for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
        assert.ok(!cells.has(`${x},${y}`), `${p.title} overlaps another panel at ${x},${y}`);
        cells.add(`${x},${y}`);
      }
    }
  }
  assert.ok(dashboard.templating.list.some((v) => v.name === 'run_id'));
  assert.ok(dashboard.templating.list.some((v) => v.name === 'datasource'));
});

test('every PromQL expression (dashboard, alerts, KEDA) refers to metrics and labels the code exports', (t) => {
  const all = [
    ...dashboardExpressions(),
    ...alerts.map((r) => ({ where: `alert ${r.alert ?? r.record}`, expr: r.expr, legend: [] as string[] })),
    ...kedaQueries().map((q) => ({ ...q, legend: [] as string[] })),
  ];
  assert.ok(all.length > 40, `found ${all.length} expressions`);
  const problems = all.flatMap(({ where, expr, legend }) => checkPromql(expr, legend).map((p) => `${where}: ${p}`));
  assert.deepEqual(problems, []);

  // Which catalogue metrics the dashboard shows (a new metric without a panel is worth a look, not a failure).
  const shown = new Set(dashboardExpressions().flatMap((e) => promqlRefs(e.expr).selectors.map((s) => s.metric.replace(/_(bucket|sum|count)$/, ''))));
  const missing = Object.keys(CATALOGUE).filter((m) => !shown.has(METRIC_PREFIX + m));
  t.diagnostic(missing.length ? `catalogue metrics not on the dashboard: ${missing.join(', ')}` : 'every catalogue metric is on the dashboard');
});

test('the reference checker catches what it should (not vacuous)', () => {
  const cases: [string, RegExp][] = [
    ['recovery_grpo_polcy_version{run_id="x"}', /polcy_version is not exported/],
    ['rate(recovery_grpo_train_steps_total{worker_role="learner"}[5m])', /has no label worker_role/],
    ['recovery_grpo_workers_connected{worker_role="learners"}', /worker_role is one of/],
    ['recovery_grpo_staleness_bucket{le="5"}', /not a bucket bound/],
    ['recovery_grpo_reward_mean_bucket', /not exported/],
    ['recovery_grpo_queue_depth_count', /not exported/],
    ['sum by (queue) (recovery_grpo_policy_version)', /groups or matches on queue/],
    ['rates(recovery_grpo_train_steps_total[5m])', /unknown function rates/],
    ['recovery_grpo_policy_version{run_id="$run_id"}', /unsubstituted variable/],
    // reasons and codes the code never emits (a NaN reward is refused as a TaskError, not dropped as a sample)
    ['recovery_grpo_samples_dropped_total{reason="non_finite_reward"}', /reason is one of task_failed, zero_variance/],
    ['recovery_grpo_task_errors_total{code=~"bad_result|nan_reward"}', /code is one of/],
    // no queue of that name is ever set (orchestrator/task-board.ts: rollout, score; learner-link.ts: train)
    ['recovery_grpo_queue_depth{queue="samples"}', /queue is one of rollout, score, train/],
  ];
  for (const [expr, re] of cases) assert.match(checkPromql(expr).join('\n'), re, expr);
  assert.deepEqual(checkPromql('recovery_grpo_queue_depth{queue="rollout"}', ['queue', 'pod']), []);
  assert.match(checkPromql('recovery_grpo_queue_depth', ['worker_role']).join(), /legend uses \{\{worker_role\}\}/);
  assert.deepEqual(checkPromql('histogram_quantile(0.9, sum by (le) (rate(recovery_grpo_task_latency_seconds_bucket{worker_role="reward"}[1m])))'), []);
});

test('alerts: the ones the issue asks for, each with a severity, a summary and a description', () => {
  const names = alerts.map((r) => r.alert!);
  assert.equal(new Set(names).size, names.length, 'alert names are unique');
  for (const want of [
    'RecoveryGrpoNoTrainingProgress', 'RecoveryGrpoNonFiniteLoss', 'RecoveryGrpoNonFiniteReward', 'RecoveryGrpoStalenessOverBound',
    'RecoveryGrpoNoWorkers', 'RecoveryGrpoCheckpointFetchFailing', 'RecoveryGrpoRedispatchStorm',
    // round 34: a run state lost while the orchestrator was down (run_state_lost_total, round 33) had no alert
    'RecoveryGrpoRunStateLost',
  ]) assert.ok(names.includes(want), `alert ${want} is missing`);
  for (const r of alerts) {
    assert.ok(['critical', 'warning', 'info'].includes(r.labels?.severity ?? ''), `${r.alert}: severity`);
    assert.ok(r.annotations?.summary && r.annotations.description, `${r.alert}: summary and description`);
  }
});

test('the staleness alert uses the bound of every shipped overlay (grpo.maxStaleness)', () => {
  const stale = alerts.find((r) => r.alert === 'RecoveryGrpoStalenessOverBound')!;
  const les = promqlRefs(stale.expr).selectors.flatMap((s) => s.matchers.filter((m) => m.label === 'le').map((m) => m.value)).filter((v) => v !== '+Inf');
  assert.equal(les.length, 1, 'one finite bucket bound');
  for (const overlay of RUN_OVERLAYS) {
    // an overlay without a run.yaml of its own runs the base's (gpu-all: gpu's)
    if (!existsSync(at(`${overlay}/run.yaml`))) continue;
    const cfg = loadConfig(at(`${overlay}/run.yaml`));
    assert.equal(String(cfg.grpo.maxStaleness), les[0], `${overlay}/run.yaml grpo.maxStaleness vs the alert's le bucket`);
  }
});

test('every alert takes its series from the role that exports them (a role="..." matcher on each selector)', () => {
  // role is set by the PodMonitor from the pod's component label (k8s/monitoring/podmonitor.yaml): without it a
  // pod of another component, or anything else scraped with the same names, could raise or hide the alert
  const roles = new Set(['orchestrator', 'rollout', 'reward', 'learner']);
  for (const r of alerts) {
    for (const s of promqlRefs(r.expr).selectors) {
      if (s.metric === 'up') continue; // the scrape itself: by job
      const role = s.matchers.find((m) => m.label === 'role');
      // one role, or an alternation of roles (the certificate alerts read every role's series): never an open regex
      const named = role && (role.op === '=' ? [role.value] : role.op === '=~' ? role.value.split('|') : []);
      assert.ok(named && named.length > 0 && named.every((v) => roles.has(v)), `${r.alert ?? r.record}: ${s.metric} without role="<role>" or role=~"<role>|<role>"`);
    }
  }
});

function writeRules(dir: string, opts: { annotations: boolean }): string {
  const g = structuredClone(groups);
  if (!opts.annotations) for (const grp of g) for (const r of grp.rules) delete r.annotations;
  const file = join(dir, 'rules.yml');
  writeFileSync(file, YAML.stringify({ groups: g }));
  return file;
}

test('promtool check rules accepts the PrometheusRule', (t) => {
  const promtool = requireTool(t, 'promtool');
  if (!promtool) return;
  const dir = mkdtempSync(join(tmpdir(), 'rg-rules-'));
  try {
    const r = run(promtool, ['check', 'rules', writeRules(dir, { annotations: true })]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`SUCCESS: ${alerts.length} rules found`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('promtool unit tests: each alert fires when it should and not otherwise', (t) => {
  const promtool = requireTool(t, 'promtool');
  if (!promtool) return;
  const dir = mkdtempSync(join(tmpdir(), 'rg-rules-'));
  try {
    writeRules(dir, { annotations: false });
    copyFileSync(at('test/k8s/fixtures/alerts.promtool.yaml'), join(dir, 'alerts.promtool.yaml'));
    const r = run(promtool, ['test', 'rules', join(dir, 'alerts.promtool.yaml')]);
    assert.equal(r.code, 0, r.out);
    // Every alert has at least one case in the fixture.
    const fixture = readFileSync(at('test/k8s/fixtures/alerts.promtool.yaml'), 'utf8');
    for (const r2 of alerts) assert.match(fixture, new RegExp(`alertname: ${r2.alert}\\b`), `${r2.alert} has no promtool test case`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('promtool parses every dashboard and KEDA expression (as recording rules)', (t) => {
  const promtool = requireTool(t, 'promtool');
  if (!promtool) return;
  const exprs = [...dashboardExpressions().filter((e) => !e.expr.startsWith('label_values(')), ...kedaQueries()];
  const dir = mkdtempSync(join(tmpdir(), 'rg-dash-'));
  try {
    const file = join(dir, 'dashboard-rules.yml');
    writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules: exprs.map((e, i) => ({ record: `dashboard:expr_${i}:check`, expr: e.expr })) }] }));
    const r = run(promtool, ['check', 'rules', file]);
    assert.equal(r.code, 0, `${r.out}\n${exprs.map((e, i) => `${i}: ${e.where}`).join('\n')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

