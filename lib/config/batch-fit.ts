// A training batch travels to the learner as one gRPC message, so it must fit orchestrator.maxMessageBytes. Checked
// where a run starts (the orchestrator), not when a configuration is loaded: tools that send no batch (evaluation,
// gpu-check, bisect) take any size.
import type { RunConfig } from './schema.ts';
import { ConfigError } from './load.ts';

/**
 * The run's batches that cannot fit orchestrator.maxMessageBytes even by their images alone (a lower bound: float32
 * tensors of size x size x 3, leaving out the smaller per-sample fields): SFT sends images and targets; GRPO each
 * group's image once, each action, and in dense mode the behaviour log-density per element too. A batch that passes
 * and is still over the limit fails the run naming it (orchestrator/learner-link.ts).
 */
export function assertBatchesFit(c: RunConfig): void {
  const image = 3 * c.data.size * c.data.size * 4;
  const limit = c.orchestrator.maxMessageBytes;
  const issues: ConfigError['issues'] = [];
  const refuse = (path: string, what: string, bytes: number) => issues.push({
    path, source: 'the run configuration',
    message: `${what} at data.size ${c.data.size} need at least ${bytes} bytes in one message, over orchestrator.maxMessageBytes (${limit}): raise orchestrator.maxMessageBytes (and the workers' --max-message-bytes) or make the batch smaller`,
  });
  const sft = 2 * c.sft.batchSize * image;
  if (c.sft.steps > 0 && sft > limit) refuse('sft.batchSize', `SFT batches of ${c.sft.batchSize} images and targets`, sft);
  const { samplesPerBatch: p, groupSize: g } = c.grpo;
  const dense = c.grpo.advantageMode === 'dense';
  const grpo = (p + p * g * (dense ? 2 : 1)) * image;
  if (c.grpo.steps > 0 && grpo > limit) refuse('grpo.samplesPerBatch', `GRPO batches of ${p} images x ${g} actions${dense ? ' (with their dense log-densities)' : ''}`, grpo);
  if (issues.length) throw new ConfigError(issues);
}

/** The most samples a training batch of the run holds (SFT images, or GRPO actions): what its learner must take. */
export function largestBatch(c: RunConfig): number {
  return Math.max(c.sft.steps > 0 ? c.sft.batchSize : 0, c.grpo.steps > 0 ? c.grpo.samplesPerBatch * c.grpo.groupSize : 0);
}
