// A Coordinator for the orchestrator's unit tests: the run's training photographs, a fresh in-memory run state, its
// events and log lines recorded. The tests attach fake sessions (fake-session.ts) and drive it.
import type { RunConfig } from '../../lib/config/index.ts';
import { openRunDataset } from '../../lib/config/dataset.ts';
import { createMetrics, type Metrics } from '../../lib/metrics/index.ts';
import { Coordinator, type CoordinatorOptions } from '../../orchestrator/coordinator.ts';
import type { RunEvent } from '../../orchestrator/run-state.ts';

export interface TestCoordinator {
  c: Coordinator;
  events: RunEvent[];
  log: string[];
  metrics: Metrics;
}

export async function testCoordinator(config: RunConfig, name: string, extra: Partial<CoordinatorOptions> = {}): Promise<TestCoordinator> {
  const events: RunEvent[] = [];
  const log: string[] = [];
  const metrics = extra.metrics ?? createMetrics(name, 'orchestrator');
  const c = new Coordinator({
    config, dataset: await openRunDataset(config, 'train'), metrics,
    state: { ackedSeq: 0, learnerVersion: 0 }, persist: async () => undefined, onEvent: (e) => events.push(e), log: (l) => log.push(l),
    ...extra,
  });
  return { c, events, log, metrics };
}
