// Learning-rate schedules.

/** The cosine schedule at progress t in [0, 1]: from lr down to lr/10. */
export function cosineLearningRate(lr: number, t: number): number {
  const p = Math.min(1, Math.max(0, t));
  return lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * p)));
}

/** The SFT learning rate at step `step` (1-based) of `steps`: cosine from lr down to lr/10, or constant. */
export function sftLearningRate(sft: { lr: number; steps: number; schedule: 'cosine' | 'constant' }, step: number): number {
  if (sft.schedule === 'constant' || sft.steps <= 1) return sft.lr;
  return cosineLearningRate(sft.lr, (step - 1) / (sft.steps - 1));
}
