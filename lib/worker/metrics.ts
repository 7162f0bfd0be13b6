// Worker metrics that the shared catalogue (lib/metrics/catalogue.ts) does not list yet. Same conventions: prefix
// recovery_grpo_, registered on the process's registry, so they carry its run_id and role default labels.
// TODO(lib/metrics owner): move checkpoint_fetch_failures_total into the catalogue and use metrics.get() here.
import { Counter } from 'prom-client';
import { METRIC_PREFIX, type Metrics } from '../metrics/index.ts';

const fetchFailures = new WeakMap<Metrics, Counter<'reason'>>();

/**
 * recovery_grpo_checkpoint_fetch_failures_total{reason}: checkpoints a worker refused or could not fetch.
 * reason: integrity (digest / size mismatch), invalid (not a checkpoint of this run and model: names, shapes,
 * metadata), unavailable (not in the store, NATS error).
 */
export function checkpointFetchFailures(metrics: Metrics): Counter<'reason'> {
  let c = fetchFailures.get(metrics);
  if (!c) {
    c = new Counter({
      name: `${METRIC_PREFIX}checkpoint_fetch_failures_total`,
      help: 'Checkpoints refused (digest, size, names/shapes, metadata) or not fetched, by reason (integrity | invalid | unavailable)',
      labelNames: ['reason'],
      registers: [metrics.registry],
    });
    fetchFailures.set(metrics, c);
  }
  return c;
}
