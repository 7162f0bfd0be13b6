// The GRPO graphs' first runs, done on zero inputs of a full batch's shapes before the first GRPO batch arrives.
// Why: a session's first run of a shape faults in its arena's memory (docs/performance-history/pipeline.md, "Round 10: pipe10"): the
// learner's first GRPO step cost ~650 ms of wall time and ~415 ms of CPU against ~90 and ~80 for later ones, on the
// critical path while the workers waited for its checkpoint. The learner runs this after acknowledging the last SFT
// batch (learner/index.ts prepareGrpo), while the first GRPO batch is rolled out and scored. Outputs are discarded,
// nothing is trained: the graphs are pure functions of their feeds, so every later step computes the same bytes
// (test/e2e/parity.test.ts, test/reliability/determinism.test.ts).
import type { RunConfig } from '../lib/config/index.ts';
import type { TensorMap } from '../lib/checkpoint/index.ts';
import { resolutionOf } from '../lib/models/bundle.ts';
import { ssimMapSize } from '../lib/models/ssim.ts';
import type { PolicyRunner } from '../lib/models/runner.ts';
import type { GrpoInputs, PolicyTrainer } from '../lib/models/trainer.ts';
import type { GrpoHyper } from '../lib/grpo/algorithm.ts';

/**
 * Inputs shaped as a GRPO batch with every group kept (n = samplesPerBatch x groupSize rows), zeros but for the
 * images: each group's rows hold their own constant, so the graphs share rows as a real batch's do (one run per
 * group's image, lib/graph/shared-rows.ts) and the first runs see the real shapes.
 */
export function warmUpInputs(config: RunConfig): GrpoInputs {
  const { height, width } = resolutionOf(config);
  const G = config.grpo.groupSize;
  const n = config.grpo.samplesPerBatch * G;
  const px = 3 * height * width;
  const dense = config.grpo.advantageMode === 'dense';
  const map = 3 * ssimMapSize(height) * ssimMapSize(width);
  const images = new Float32Array(n * px);
  for (let i = 0; i < n; i++) images.fill(Math.floor(i / G) / config.grpo.samplesPerBatch, i * px, (i + 1) * px);
  return {
    n,
    images,
    actions: images,
    logpOld: new Float32Array(dense ? n * px : n),
    advantages: new Float32Array(n),
    ...(dense ? { advantageMap: new Float32Array(n * map) } : {}),
    ...(config.grpo.identityAnchor > 0 ? { identityAdvantages: new Float32Array(n), ...(dense ? { identityAdvantageMap: new Float32Array(n * map) } : {}) } : {}),
    refMean: images,
  };
}

/**
 * One run of the GRPO training graph (the forward and gradients, no optimizer step) and, when the step needs it, one
 * of the reference policy (on the batch's rows, as grpoUpdate runs it), on the inputs above; results discarded.
 */
export async function warmUpGrpo(config: RunConfig, trainer: PolicyTrainer, hyper: GrpoHyper, reference: { runner: PolicyRunner; params: TensorMap } | undefined): Promise<void> {
  const b = warmUpInputs(config);
  if (reference) await reference.runner.run(reference.params, b.images, new Float32Array(b.images.length), b.n);
  await trainer.grpoForward(b, hyper);
}
