// Every unlabelled counter that an alert reads with increase() is exported at 0 from the moment the role's registry
// exists (lib/metrics ALERTED_COUNTERS). Prometheus's increase() sees no rise from a series' first sample, so a counter
// that appeared only at its first increment (value 1) never fired RecoveryGrpoWorkerQuarantined for a run's first
// quarantine, nor the non-finite-loss and excluded-rows alerts for their first event (review26b, round 26: promtool
// with the series absent and then 1 gives no alert; the alert fixtures had modelled the counters as starting at 0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ALERTED_COUNTERS, CATALOGUE, createMetrics, type MetricName } from '../../lib/metrics/index.ts';

interface Rule { alert?: string; expr: string }
const rules = parse(readFileSync('k8s/monitoring/prometheusrule.yaml', 'utf8')) as { spec: { groups: Array<{ rules: Rule[] }> } };

/** A matcher's values: `a` for `l="a"`, each alternative for `l=~"a|b"` (plain words only; else undefined). */
function matcherValues(op: string, v: string): string[] | undefined {
  if (op === '=') return [v];
  return /^[a-z0-9_]+(\|[a-z0-9_]+)*$/.test(v) ? v.split('|') : undefined;
}

/** Every series an alert reads with increase() that names its role and all of its counter's labels: `role name{l="v",...}`. */
function alertedSeries(): Set<string> {
  const out = new Set<string>();
  for (const g of rules.spec.groups) {
    for (const r of g.rules) {
      for (const m of r.expr.matchAll(/increase\(recovery_grpo_([a-z0-9_]+)\{([^}]*)\}/g)) {
        const name = m[1] as MetricName;
        const spec = CATALOGUE[name];
        if (spec?.type !== 'counter') continue;
        const matchers = new Map<string, string[] | undefined>();
        for (const x of m[2]!.matchAll(/([a-z_]+)\s*(=~|=)\s*"([^"]*)"/g)) matchers.set(x[1]!, matcherValues(x[2]!, x[3]!));
        const role = matchers.get('role');
        if (role?.length !== 1) continue;
        if (!spec.labels.every((l) => matchers.get(l) !== undefined)) continue; // a label left open: any value may come
        let combos: string[][] = [[]];
        for (const l of spec.labels) combos = combos.flatMap((c) => matchers.get(l)!.map((v) => [...c, `${l}="${v}"`]));
        for (const c of combos) out.add(`${role[0]} ${name}{${c.join(',')}}`);
      }
    }
  }
  return out;
}

const listed = (role: string) =>
  new Set((ALERTED_COUNTERS[role] ?? []).map((c) => (typeof c === 'string' ? `${c}{}` : `${c.name}{${Object.entries(c.labels).map(([l, v]) => `${l}="${v}"`).join(',')}}`)));

test('the counters the alerts read with increase(), with every label named, are exported at 0 by the role each alert selects', async () => {
  const watched = alertedSeries();
  for (const must of ['orchestrator workers_quarantined_total{}', 'learner nonfinite_steps_skipped_total{}', 'orchestrator task_errors_total{worker_role="reward",code="bad_result"}', 'orchestrator task_errors_total{worker_role="reward",code="non_finite"}']) {
    assert.ok(watched.has(must), `${must} not found among ${[...watched].join(', ')}`);
  }
  for (const pair of watched) {
    const [role, series] = pair.split(' ') as [string, string];
    assert.ok(listed(role).has(series), `${series} (alerted for role ${role}) is not in ALERTED_COUNTERS.${role}`);
    const text = await createMetrics('t', role as 'orchestrator', { processMetrics: false }).registry.metrics();
    const [name, labels] = [series.slice(0, series.indexOf('{')), series.slice(series.indexOf('{') + 1, -1)];
    const wanted = labels ? labels.split(',') : [];
    const line = text.split('\n').find((l) => l.startsWith(`recovery_grpo_${name}{`) && wanted.every((w) => l.includes(w)));
    assert.ok(line?.endsWith(' 0'), `${role} exports ${series} at 0 before its first event:\n${text}`);
  }
  // only the role that counts them: a reward worker exports none of these (a process exports what it uses)
  const reward = await createMetrics('t', 'reward', { processMetrics: false }).registry.metrics();
  assert.doesNotMatch(reward, /^recovery_grpo_/m, reward);
});
