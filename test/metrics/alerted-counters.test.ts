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

test('the unlabelled counters the alerts read with increase() are exported at 0 by the role each alert selects', async () => {
  const watched = new Set<string>();
  for (const g of rules.spec.groups) {
    for (const r of g.rules) {
      for (const m of r.expr.matchAll(/increase\(recovery_grpo_([a-z0-9_]+)\{[^}]*role="([a-z]+)"/g)) {
        const name = m[1] as MetricName;
        const spec = CATALOGUE[name];
        if (spec?.type === 'counter' && spec.labels.length === 0) watched.add(`${m[2]} ${name}`);
      }
    }
  }
  assert.ok(watched.has('orchestrator workers_quarantined_total') && watched.has('learner nonfinite_steps_skipped_total'), [...watched].join(', '));
  for (const pair of watched) {
    const [role, name] = pair.split(' ') as [string, MetricName];
    assert.ok(ALERTED_COUNTERS[role]?.includes(name), `${name} (alerted for role ${role}) is not in ALERTED_COUNTERS.${role}`);
    const text = await createMetrics('t', role, { processMetrics: false }).registry.metrics();
    assert.match(text, new RegExp(`^recovery_grpo_${name}\\{[^}]*\\} 0$`, 'm'), `${role} exports ${name} at 0 before its first event:\n${text}`);
  }
  // only the role that counts them: a reward worker exports none of these (a process exports what it uses)
  const reward = await createMetrics('t', 'reward', { processMetrics: false }).registry.metrics();
  assert.doesNotMatch(reward, /^recovery_grpo_/m, reward);
});
