// Generates the Grafana dashboard k8s/monitoring/dashboards/recovery-grpo.json (shipped as a ConfigMap by
// k8s/monitoring/kustomization.yaml). Run after changing a panel:
//   node --import tsx scripts/k8s-dashboard.ts          (writes the file)
//   node --import tsx scripts/k8s-dashboard.ts --check  (exit 1 when the file is stale)
// test/k8s/monitoring.test.ts fails when the file is stale and checks every expression against the metric catalogue.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const DASHBOARD_PATH = fileURLToPath(new URL('../k8s/monitoring/dashboards/recovery-grpo.json', import.meta.url));

/** Selector every query starts from: the run picked in the dashboard's run_id variable. */
const R = 'run_id="$run_id"';

interface Target {
  expr: string;
  legend: string;
}
interface PanelSpec {
  title: string;
  description: string;
  kind?: 'timeseries' | 'stat';
  unit?: string;
  targets: Target[];
  width?: number;
  height?: number;
  min?: number;
  max?: number;
  /** Colour steps (Grafana's absolute thresholds): the first from -infinity (value null), each next from its value up. */
  thresholds?: { color: string; value: number | null }[];
}
type Row = { row: string; panels: PanelSpec[] };

const q = (expr: string, legend: string): Target => ({ expr, legend });
const quantiles = (metric: string, by: string[], extra = ''): Target[] =>
  [0.5, 0.95].map((p) =>
    q(
      `histogram_quantile(${p}, sum by (${['le', ...by].join(', ')}) (rate(${metric}_bucket{${R}${extra}}[$__rate_interval])))`,
      `p${p * 100}${by.map((b) => ` {{${b}}}`).join('')}`,
    ),
  );

export const ROWS: Row[] = [
  {
    row: 'Overview',
    panels: [
      { title: 'Policy version (learner)', kind: 'stat', width: 6, height: 4, description: 'Last version the learner trained (one per training batch).', targets: [q(`max(recovery_grpo_policy_version{${R}, role="learner"})`, 'version')] },
      { title: 'Training steps per minute', kind: 'stat', width: 6, height: 4, description: 'Optimizer steps per minute, SFT and GRPO.', targets: [q(`sum(rate(recovery_grpo_train_steps_total{${R}}[$__rate_interval])) * 60`, 'steps/min')] },
      { title: 'Mean reward', kind: 'stat', width: 6, height: 4, description: 'Mean scalar reward of the groups completed most recently (orchestrator).', targets: [q(`max(recovery_grpo_reward_mean{${R}, role="orchestrator"})`, 'reward')] },
      { title: 'Workers connected', kind: 'stat', width: 6, height: 4, description: 'Open worker streams at the orchestrator, per role.', targets: [q(`max by (worker_role) (recovery_grpo_workers_connected{${R}, role="orchestrator"})`, '{{worker_role}}')] },
    ],
  },
  {
    row: 'Reward',
    panels: [
      {
        title: 'Reward and components',
        description: 'Mean scalar reward and the mean of each reward component (ssim, clip_cos, clip_term) over the groups completed most recently.',
        targets: [q(`recovery_grpo_reward_mean{${R}, role="orchestrator"}`, 'reward'), q(`recovery_grpo_reward_component_mean{${R}, role="orchestrator"}`, '{{component}}')],
      },
      {
        title: 'Reward distribution',
        description: 'Median and 95th percentile of the per-action reward, and of each component.',
        targets: [...quantiles('recovery_grpo_reward', [], ', role="orchestrator"'), ...quantiles('recovery_grpo_reward_component', ['component'], ', role="orchestrator"')],
      },
      {
        title: 'Advantages',
        description: 'Std of the scalar advantages of the last batch, and the fraction of groups whose rewards were all equal (no learning signal).',
        targets: [q(`recovery_grpo_advantage_std{${R}}`, 'advantage std'), q(`recovery_grpo_zero_variance_group_fraction{${R}}`, 'zero-variance groups')],
      },
      {
        title: 'Samples dropped and images skipped',
        description: 'Samples dropped before training (by reason) and input images skipped, per second.',
        targets: [q(`sum by (reason) (rate(recovery_grpo_samples_dropped_total{${R}}[$__rate_interval]))`, 'dropped: {{reason}}'), q(`sum by (reason) (rate(recovery_grpo_bad_images_skipped_total{${R}}[$__rate_interval]))`, 'bad image: {{reason}}')],
        unit: 'ops',
      },
    ],
  },
  {
    row: 'Policy update',
    panels: [
      {
        title: 'KL and clip fraction',
        description: 'KL penalty term of the last GRPO step (beta excluded) and the fraction of samples whose PPO ratio was clipped.',
        targets: [q(`recovery_grpo_kl{${R}, role="learner"}`, 'KL'), q(`recovery_grpo_clip_fraction{${R}, role="learner"}`, 'clip fraction')],
      },
      {
        title: 'Loss and gradient norm',
        description: 'Loss of the last applied step per kind (sft, grpo) and the global gradient norm before clipping.',
        targets: [q(`recovery_grpo_loss{${R}, role="learner"}`, 'loss {{kind}}'), q(`recovery_grpo_grad_norm{${R}, role="learner"}`, 'grad norm')],
      },
      {
        title: 'Log-prob mismatch (learner vs rollout)',
        description: 'Mean |logp recomputed by the learner - logp from the rollout| on on-policy samples: should stay ~0.',
        targets: [q(`recovery_grpo_logp_mismatch{${R}, role="learner"}`, 'mismatch')],
      },
      {
        title: 'Training batches and skipped steps',
        description: 'TrainBatches per second by outcome (applied, duplicate, skipped) and steps skipped for non-finite loss or gradients.',
        targets: [q(`sum by (kind, outcome) (rate(recovery_grpo_train_batches_total{${R}}[$__rate_interval]))`, '{{kind}} {{outcome}}'), q(`sum(rate(recovery_grpo_nonfinite_steps_skipped_total{${R}}[$__rate_interval]))`, 'non-finite skipped')],
        unit: 'ops',
      },
    ],
  },
  {
    row: 'Versions and staleness',
    panels: [
      {
        title: 'Policy version per process',
        description: 'Version each process holds: learner = last trained, rollout worker = loaded, orchestrator = learner version it knows.',
        targets: [q(`recovery_grpo_policy_version{${R}}`, '{{role}} {{pod}}')],
      },
      {
        title: 'Staleness of trained samples',
        description: 'Learner version minus behaviour version of the samples trained (median, 95th percentile), and the largest lag of a rollout worker behind the learner.',
        targets: [
          ...quantiles('recovery_grpo_staleness', [], ', role="learner"'),
          q(`max(recovery_grpo_policy_version{${R}, role="learner"}) - min(recovery_grpo_policy_version{${R}, role="rollout"})`, 'rollout lag (versions)'),
        ],
      },
    ],
  },
  {
    row: 'Throughput',
    panels: [
      {
        title: 'Throughput per role',
        description: 'Actions produced by rollout workers, candidates scored by reward workers, optimizer steps by the learner, per second.',
        targets: [
          q(`sum(rate(recovery_grpo_rollouts_total{${R}, role="rollout"}[$__rate_interval]))`, 'rollout: actions/s'),
          q(`sum(rate(recovery_grpo_scores_total{${R}, role="reward"}[$__rate_interval]))`, 'reward: scores/s'),
          q(`sum by (kind) (rate(recovery_grpo_train_steps_total{${R}, role="learner"}[$__rate_interval]))`, 'learner: {{kind}} steps/s'),
        ],
        unit: 'ops',
      },
      {
        title: 'Task latency',
        description: 'Time from dispatching a task to receiving its result, per worker role (median, 95th percentile).',
        targets: quantiles('recovery_grpo_task_latency_seconds', ['worker_role'], ', role="orchestrator"'),
        unit: 's',
      },
      {
        title: 'Tasks completed by outcome',
        description: 'Task results per second at the orchestrator, per worker role and outcome (ok, error, duplicate, expired, cancelled).',
        targets: [q(`sum by (worker_role, outcome) (rate(recovery_grpo_tasks_completed_total{${R}, role="orchestrator"}[$__rate_interval]))`, '{{worker_role}} {{outcome}}')],
        unit: 'ops',
      },
      {
        title: 'Tasks dispatched per worker',
        description: 'Tasks sent per second, per worker role, and per connected worker of that role.',
        targets: [
          q(`sum by (worker_role) (rate(recovery_grpo_tasks_dispatched_total{${R}, role="orchestrator"}[$__rate_interval]))`, '{{worker_role}}'),
          q(`sum by (worker_role) (rate(recovery_grpo_tasks_dispatched_total{${R}, role="orchestrator"}[$__rate_interval])) / on (worker_role) max by (worker_role) (recovery_grpo_workers_connected{${R}, role="orchestrator"})`, '{{worker_role}} per worker'),
        ],
        unit: 'ops',
      },
    ],
  },
  {
    row: 'Queues and workers',
    panels: [
      {
        title: 'Queue depths',
        description: 'Items waiting in each orchestrator queue: rollout and score tasks waiting for a worker, train batches sent and not yet acknowledged. KEDA scales rollout workers on the rollout queue.',
        targets: [q(`recovery_grpo_queue_depth{${R}, role="orchestrator"}`, '{{queue}}')],
      },
      {
        title: 'Worker counts',
        description: 'Open worker streams per role at the orchestrator, and the pods exporting metrics per role.',
        targets: [
          q(`max by (worker_role) (recovery_grpo_workers_connected{${R}, role="orchestrator"})`, 'connected {{worker_role}}'),
          q(`count by (role) (recovery_grpo_policy_version{${R}})`, 'pods exporting: {{role}}'),
        ],
      },
      {
        title: 'Re-dispatches, lease expiries, errors',
        description: 'Per second, per worker role: tasks handed to another worker, leases that ran out, TaskErrors (by code), duplicate results.',
        targets: [
          q(`sum by (worker_role) (rate(recovery_grpo_redispatches_total{${R}}[$__rate_interval]))`, 're-dispatched {{worker_role}}'),
          q(`sum by (worker_role) (rate(recovery_grpo_lease_expiries_total{${R}}[$__rate_interval]))`, 'lease expired {{worker_role}}'),
          q(`sum by (worker_role, code) (rate(recovery_grpo_task_errors_total{${R}}[$__rate_interval]))`, 'error {{worker_role}} {{code}}'),
          q(`sum by (worker_role) (rate(recovery_grpo_duplicate_results_total{${R}}[$__rate_interval]))`, 'duplicate {{worker_role}}'),
        ],
        unit: 'ops',
      },
    ],
  },
  {
    row: 'Checkpoints',
    panels: [
      {
        title: 'Checkpoint broadcast times',
        description: 'Time to store and announce a checkpoint (learner) and to fetch and verify one (rollout workers): median and 95th percentile.',
        targets: [
          ...quantiles('recovery_grpo_checkpoint_publish_seconds', [], ', role="learner"').map((t) => ({ ...t, legend: `publish ${t.legend}` })),
          ...quantiles('recovery_grpo_checkpoint_fetch_seconds', [], ', role="rollout"').map((t) => ({ ...t, legend: `fetch ${t.legend}` })),
        ],
        unit: 's',
      },
      {
        title: 'Checkpoint fetch failures',
        description: 'Checkpoints rollout workers refused or could not fetch, per second, by reason: integrity (digest, size), invalid (names, shapes, metadata), unavailable (not in the store, NATS error).',
        targets: [q(`sum by (reason) (rate(recovery_grpo_checkpoint_fetch_failures_total{${R}}[$__rate_interval]))`, '{{reason}}')],
        unit: 'ops',
      },
      {
        title: 'Checkpoint bytes',
        description: 'Checkpoint bytes published to and fetched from the NATS object store, per second.',
        targets: [
          q(`sum(rate(recovery_grpo_checkpoint_publish_bytes_total{${R}}[$__rate_interval]))`, 'published'),
          q(`sum(rate(recovery_grpo_checkpoint_fetch_bytes_total{${R}}[$__rate_interval]))`, 'fetched'),
        ],
        unit: 'Bps',
      },
    ],
  },
  {
    row: 'TLS',
    panels: [
      {
        title: 'Days until each presented certificate expires',
        kind: 'stat',
        width: 12,
        height: 4,
        description:
          "Days left on the certificates of the run's connections, the earliest of each role's pods (recovery_grpo_tls_certificate_expiry_timestamp_seconds by role and certificate: grpc_server, the orchestrator's served one in use; grpc_client, a worker's client certificate; nats_client, the NATS client certificate; nats_server, the one NATS serves as the orchestrator sees it; grpc_ca and nats_ca, the CA bundles a role trusts, the earliest certificate of each; each read every minute, a renewal moves it). A 90-day cert-manager certificate renews with 30 days left: under 21 its renewal is stuck (alert RecoveryGrpoTlsRenewalStuck, orange), under 7 critical (RecoveryGrpoTlsCertificateExpiring, red).",
        targets: [q(`(min by (role, certificate) (recovery_grpo_tls_certificate_expiry_timestamp_seconds{${R}, role=~"orchestrator|rollout|reward|learner"}) - time()) / 86400`, '{{role}} {{certificate}}')],
        unit: 'd',
        thresholds: [{ color: 'red', value: null }, { color: 'orange', value: 7 }, { color: 'green', value: 21 }],
      },
    ],
  },
];

/** The dashboard as Grafana's JSON model (schemaVersion 39). Deterministic: ids and positions follow ROWS. */
export function renderDashboard(): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let id = 1;
  let y = 0;
  for (const row of ROWS) {
    panels.push({ type: 'row', id: id++, title: row.row, collapsed: false, gridPos: { x: 0, y, w: 24, h: 1 }, panels: [] });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const p of row.panels) {
      const w = p.width ?? 12;
      const h = p.height ?? 8;
      if (x + w > 24) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      const kind = p.kind ?? 'timeseries';
      panels.push({
        type: kind,
        id: id++,
        title: p.title,
        description: p.description,
        datasource: { type: 'prometheus', uid: '${datasource}' },
        gridPos: { x, y, w, h },
        fieldConfig: {
          defaults: {
            unit: p.unit ?? (kind === 'stat' ? 'none' : 'short'),
            ...(p.min !== undefined ? { min: p.min } : {}),
            ...(p.max !== undefined ? { max: p.max } : {}),
            ...(p.thresholds !== undefined ? { thresholds: { mode: 'absolute', steps: p.thresholds } } : {}),
            ...(kind === 'timeseries' ? { custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 0, showPoints: 'never', spanNulls: true } } : {}),
          },
          overrides: [],
        },
        options:
          kind === 'stat'
            ? { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'area', textMode: 'auto' }
            : { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'none' } },
        targets: p.targets.map((t, i) => ({
          refId: String.fromCharCode(65 + i),
          datasource: { type: 'prometheus', uid: '${datasource}' },
          expr: t.expr,
          legendFormat: t.legend,
          range: true,
          instant: false,
        })),
      });
      x += w;
      rowHeight = Math.max(rowHeight, h);
    }
    y += rowHeight;
  }
  return {
    uid: 'recovery-grpo',
    title: 'recovery-grpo: GRPO training',
    description: 'One recovery-grpo run: reward, policy updates, versions and staleness, throughput, queues, workers, checkpoints. Generated by scripts/k8s-dashboard.ts; metrics: lib/metrics/catalogue.ts.',
    tags: ['recovery-grpo', 'grpo'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    timezone: 'browser',
    annotations: { list: [] },
    links: [],
    templating: {
      list: [
        { name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', current: {}, hide: 0, refresh: 1 },
        {
          name: 'run_id',
          label: 'run',
          type: 'query',
          datasource: { type: 'prometheus', uid: '${datasource}' },
          definition: 'label_values(recovery_grpo_policy_version, run_id)',
          query: { query: 'label_values(recovery_grpo_policy_version, run_id)', refId: 'run_id' },
          refresh: 2,
          sort: 1,
          current: {},
          hide: 0,
          includeAll: false,
          multi: false,
        },
      ],
    },
    panels,
  };
}

export function dashboardText(): string {
  return `${JSON.stringify(renderDashboard(), null, 2)}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const text = dashboardText();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(DASHBOARD_PATH, 'utf8');
    } catch { /* missing: stale */ }
    if (current !== text) {
      console.error(`${DASHBOARD_PATH} is stale: run node --import tsx scripts/k8s-dashboard.ts`);
      process.exit(1);
    }
  } else {
    writeFileSync(DASHBOARD_PATH, text);
    console.log(`wrote ${DASHBOARD_PATH}`);
  }
}
