// Every Prometheus metric the pipeline exports, in one place: name (without the recovery_grpo_ prefix), type,
// help, label names, histogram buckets. Processes create only the metrics they touch (lib/metrics/index.ts,
// Metrics.get). Every series also carries the registry's default labels run_id and role (the process's role);
// per-metric labels that name another role are called worker_role to keep the two apart.
//
// Label values by convention:
//   worker_role: rollout | reward | learner      kind: sft | grpo
//   component:   ssim | clip_cos | clip_term      outcome (tasks): ok | error | duplicate | expired | cancelled
//   queue:       rollout | score (tasks waiting for a worker) | train (batches sent, not yet acknowledged)
//   reason:      snake_case words, per metric (samples_dropped_total: task_failed | zero_variance | unencodable; a non-finite
//                reward is no drop reason: the orchestrator refuses the result, task_errors_total code bad_result)
//   policy:      policy | reference | identity (periodic evaluation)
//   step:        a trained step's index in the flow family's sampling trajectory (0 = the first, noisiest)

export const METRIC_PREFIX = 'recovery_grpo_';

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec {
  readonly type: MetricType;
  readonly help: string;
  readonly labels: readonly string[];
  readonly buckets?: readonly number[];
}

const UNIT_INTERVAL_BUCKETS = [-1, -0.5, 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1, 1.1, 1.2] as const;
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] as const;
const TRANSFER_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

export const CATALOGUE = {
  // versions and progress
  policy_version: {
    type: 'gauge',
    help: 'Policy version this process holds: learner = last trained, rollout worker = loaded, orchestrator = learner version it knows',
    labels: [],
  },
  rollouts_total: { type: 'counter', help: 'Rollout actions produced (rollout worker) or accepted (orchestrator)', labels: [] },
  scores_total: { type: 'counter', help: 'Candidates scored (reward worker) or score results accepted (orchestrator)', labels: [] },
  train_steps_total: { type: 'counter', help: 'Optimizer steps applied by the learner', labels: ['kind'] },
  train_batches_total: { type: 'counter', help: 'TrainBatches handled, by outcome (applied | duplicate | skipped)', labels: ['kind', 'outcome'] },
  tasks_dispatched_total: { type: 'counter', help: 'Tasks sent to workers (re-dispatches included)', labels: ['worker_role'] },
  tasks_completed_total: { type: 'counter', help: 'Task results received, by outcome', labels: ['worker_role', 'outcome'] },

  // reward and advantages
  reward_mean: { type: 'gauge', help: 'Mean scalar reward of the groups completed most recently', labels: [] },
  reward: { type: 'histogram', help: 'Scalar reward per action', labels: [], buckets: UNIT_INTERVAL_BUCKETS },
  reward_component_mean: { type: 'gauge', help: 'Mean of one reward component over the groups completed most recently', labels: ['component'] },
  reward_component: { type: 'histogram', help: 'Reward component per action', labels: ['component'], buckets: UNIT_INTERVAL_BUCKETS },
  advantage_std: { type: 'gauge', help: 'Standard deviation of the scalar advantages of the last batch', labels: [] },
  zero_variance_group_fraction: { type: 'gauge', help: 'Fraction of groups in the last batch whose rewards were all equal (no learning signal)', labels: [] },

  // learner step diagnostics
  loss: { type: 'gauge', help: 'Loss of the last applied step', labels: ['kind'] },
  kl: { type: 'gauge', help: 'KL penalty term of the last GRPO step (beta excluded)', labels: [] },
  clip_fraction: { type: 'gauge', help: 'Fraction of samples whose PPO ratio was clipped in the last GRPO step', labels: [] },
  grad_norm: { type: 'gauge', help: 'Global gradient norm of the last step, before clipping', labels: [] },
  // flow family (docs/flow.md): the same diagnostics per trained step of the sampler, over the last GRPO batch's rows
  flow_step_clip_fraction: { type: 'gauge', help: 'Flow family: fraction of the last GRPO batch\'s rows at this trained step whose ratio was clipped', labels: ['step'] },
  flow_step_kl: { type: 'gauge', help: 'Flow family: KL term (beta excluded) of the last GRPO batch\'s rows at this trained step; 0 at beta 0', labels: ['step'] },
  flow_step_ratio: { type: 'gauge', help: 'Flow family: mean ratio of the last GRPO batch\'s rows at this trained step', labels: ['step'] },
  logp_mismatch: {
    type: 'gauge',
    help: 'Mean |logp recomputed by the learner - logp from the rollout| over on-policy samples of the last step (should be ~0)',
    labels: [],
  },
  staleness: {
    type: 'histogram',
    help: 'Learner version minus behaviour version of each trained sample',
    labels: [],
    buckets: [0, 1, 2, 3, 4, 6, 8, 12, 16, 32],
  },
  logp_rows_excluded_total: {
    type: 'counter',
    help: 'GRPO training rows excluded from a step because their logp_old disagreed with the learner\'s recomputed logp at their behaviour version (its own, or a stale one it kept: grpo.staleCheckFraction) beyond grpo.logpTolerance (forged or broken rollouts; docs/security.md)',
    labels: [],
  },
  logp_stale_rows_total: {
    type: 'counter',
    help: 'GRPO training rows behind the learner\'s version (grpo.maxStaleness > 0) by what the stale-row check did: checked (recomputed under their behaviour version\'s kept parameters; those beyond grpo.logpTolerance also count in logp_rows_excluded_total), not_sampled (grpo.staleCheckFraction left their group out), not_held (a version from before the learner\'s start); docs/grpo.md',
    labels: ['outcome'],
  },
  rollout_rows_excluded_total: {
    type: 'counter',
    help: 'Orchestrator: GRPO actions the learner excluded by its same-version or stale-row check (logp_old forged or broken), by the rollout worker that produced them; worker_id is that of a worker attached when its result was accepted, at most 64 distinct ids per process, the rest "other" (docs/security.md)',
    labels: ['worker_id'],
  },
  quarantine_reports_missing_total: {
    type: 'counter',
    help: 'Orchestrator: GRPO batches acknowledged without their TrainResult whose exclusion report the learner had kept and dropped to its bound (the newest 8 kept): their excluded and passed rollout results are not counted in the quarantine windows (logged naming the batches; docs/security.md)',
    labels: [],
  },
  run_state_lost_total: {
    type: 'counter',
    help: 'Orchestrator: starts (and Hello catch-ups of a fresh state) that found the run state lost while the newest checkpoint shows progress: the state was lost with the NATS store, or deleted, while the orchestrator was down; the quarantine and worker-id bindings are taken back from the newest checkpoint\'s announcement meta worker_ids, where the learner recorded them, the quarantine windows\' counts start from zero (logged; docs/reliability.md)',
    labels: [],
  },
  workers_quarantined_total: {
    type: 'counter',
    help: 'Orchestrator: rollout worker ids quarantined for the rest of the run after grpo.quarantineAfter results with excluded rows (session closed, reconnect refused)',
    labels: [],
  },
  train_result_digests_total: {
    type: 'counter',
    help: 'Orchestrator: TrainResults (other than "duplicate") by how their batch_digest compares with the batch held under their seq: match (taken), mismatch (the result of another batch under that seq, e.g. an earlier orchestrator process\'s: neither acknowledgement nor attribution; the batch is sent again), absent (an older learner: matched by seq alone) (docs/reliability.md)',
    labels: ['outcome'],
  },
  nonfinite_steps_skipped_total: { type: 'counter', help: 'Learner steps skipped because the loss or a gradient was not finite', labels: [] },
  optimizer_state_refused_total: {
    type: 'counter',
    help: 'Signed run: optimizer states a restarted learner refused (resuming with a fresh AdamW), by reason: missing (the signed announcement records no optimizer_digest), malformed (it records one that is not a sha256 digest), mismatch (the stored state has another sha256)',
    labels: ['reason'],
  },

  // orchestration
  queue_depth: { type: 'gauge', help: 'Items waiting in an orchestrator queue', labels: ['queue'] },
  workers_connected: { type: 'gauge', help: 'Workers with an open stream', labels: ['worker_role'] },
  tls_certificate_expiry_timestamp_seconds: {
    type: 'gauge',
    help: "When a certificate of this process's connections expires (its notAfter, Unix seconds), by certificate: grpc_server (the orchestrator's served one, in use), grpc_client (a worker's client certificate), nats_client (the NATS client certificate), nats_server (the one NATS serves, read by the orchestrator), and the CA bundles it trusts, the earliest certificate of each: grpc_ca (the orchestrator's client CA, in use; a worker's CA for the orchestrator's certificate), nats_ca (the CA for NATS's certificate); a renewal moves it, one near now is a stuck renewal",
    labels: ['certificate'],
  },
  task_latency_seconds: {
    type: 'histogram',
    help: 'Time from dispatching a task to receiving its result',
    labels: ['worker_role'],
    buckets: LATENCY_BUCKETS,
  },
  lease_expiries_total: { type: 'counter', help: 'Tasks whose lease ran out before a result arrived', labels: ['worker_role'] },
  redispatches_total: { type: 'counter', help: 'Tasks handed to another worker after a lease expiry, error or disconnect', labels: ['worker_role'] },
  task_errors_total: { type: 'counter', help: 'TaskError messages received, by error code', labels: ['worker_role', 'code'] },
  duplicate_results_total: { type: 'counter', help: 'Results for a task that already had one (ignored)', labels: ['worker_role'] },
  foreign_results_total: { type: 'counter', help: 'Results or errors for a task from a worker that does not hold its lease (refused)', labels: ['worker_role'] },
  samples_dropped_total: { type: 'counter', help: 'Samples dropped before training, by reason', labels: ['reason'] },
  failed_group_fraction: { type: 'gauge', help: 'Fraction of the last GRPO batch\'s groups dropped for a failure (a task given up, a group that could not be encoded; zero-variance groups not counted)', labels: [] },
  bad_images_skipped_total: { type: 'counter', help: 'Input images skipped because they could not be decoded or were invalid', labels: ['reason'] },

  // periodic evaluation (orchestrator, every eval.everyVersions versions, on eval.samples held-out images)
  eval_reward: { type: 'gauge', help: 'Mean scalar reward of the last periodic evaluation, by policy (policy = the checkpoint evaluated, reference = the SFT warm start, identity = the corrupted image)', labels: ['policy'] },
  eval_ssim: { type: 'gauge', help: 'Mean SSIM against the clean image in the last periodic evaluation, by policy', labels: ['policy'] },
  eval_clip_cos: { type: 'gauge', help: 'Mean image-embedding cosine with the clean image in the last periodic evaluation, by policy', labels: ['policy'] },
  eval_psnr: { type: 'gauge', help: 'Mean PSNR (dB) against the clean image in the last periodic evaluation, by policy', labels: ['policy'] },
  eval_policy_version: { type: 'gauge', help: 'Policy version (checkpoint) of the last periodic evaluation', labels: [] },
  eval_seconds: { type: 'gauge', help: 'Wall time of the last periodic evaluation (fetch, verify, evaluate)', labels: [] },
  evaluations_total: { type: 'counter', help: 'Periodic evaluations by outcome: ok | error | skipped (the previous one was still running)', labels: ['outcome'] },

  // checkpoints
  checkpoint_publish_bytes_total: { type: 'counter', help: 'Checkpoint bytes published to the object store', labels: [] },
  checkpoint_publish_seconds: { type: 'histogram', help: 'Time to store and announce one checkpoint', labels: [], buckets: TRANSFER_BUCKETS },
  checkpoint_fetch_bytes_total: { type: 'counter', help: 'Checkpoint bytes fetched (and verified) from the object store', labels: [] },
  checkpoint_fetch_seconds: { type: 'histogram', help: 'Time to fetch and verify one checkpoint', labels: [], buckets: TRANSFER_BUCKETS },
  checkpoint_fetch_failures_total: {
    type: 'counter',
    help: 'Checkpoints refused or not fetched, by reason: integrity (digest / size), invalid (names, shapes, metadata), unavailable (not in the store, NATS error)',
    labels: ['reason'],
  },
} as const satisfies Record<string, MetricSpec>;

export type Catalogue = typeof CATALOGUE;
export type MetricName = keyof Catalogue;
export type LabelName<K extends MetricName> = Catalogue[K]['labels'][number];

/** Full exported name of a catalogue entry. */
export function metricName(name: MetricName): string {
  return METRIC_PREFIX + name;
}
