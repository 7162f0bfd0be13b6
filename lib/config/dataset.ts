// The dataset a run configuration describes, opened for one split. One place, so the orchestrator,
// evaluation and the demo read exactly the same samples. Data only: the run's imported network gets its start-up
// forward check at each process's entry point (checkNetworkOf, lib/models/bundle.ts), not here.
import type { RunConfig } from './schema.ts';
import { dataConfigFrom, openDataset, type Dataset, type Split } from '../data/dataset.ts';

export async function openRunDataset(config: RunConfig, split: Split, onSkip?: (path: string, reason: string) => void): Promise<Dataset> {
  const d = dataConfigFrom(config.data, config.run.seed);
  return openDataset(d.dataset, { split, evalFraction: d.evalFraction, mix: d.corruptions, seed: d.seed, onSkip });
}
