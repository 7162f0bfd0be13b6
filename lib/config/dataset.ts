// The dataset a run configuration describes, opened for one split. One place, so the orchestrator,
// evaluation and the demo read exactly the same samples. Every process that trains or evaluates on the run's data
// opens it here at its start (the single-process loop and demo, evaluation; the orchestrator checked it before): the run's imported
// network gets its start-up forward check here too (checkNetworkOf), before the process uses the network.
import type { RunConfig } from './schema.ts';
import { dataConfigFrom, openDataset, type Dataset, type Split } from '../data/dataset.ts';

export async function openRunDataset(config: RunConfig, split: Split, onSkip?: (path: string, reason: string) => void): Promise<Dataset> {
  // loaded only for an imported network: the models' modules stay out of a process that reads data alone
  if (config.model.network) await (await import('../models/bundle.ts')).checkNetworkOf(config);
  const d = dataConfigFrom(config.data, config.run.seed);
  return openDataset(d.dataset, { split, evalFraction: d.evalFraction, mix: d.corruptions, seed: d.seed, onSkip });
}
