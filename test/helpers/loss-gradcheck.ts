// grpoLossReference's gradients (d loss / d mean per element, d loss / d log sigma) against central finite
// differences: test/grpo/algorithm.test.ts and test/grpo/dual-clip.test.ts.
import assert from 'node:assert/strict';
import { grpoLossReference, type LossReferenceInputs } from '../../lib/grpo/algorithm.ts';

export function assertReferenceGradients(inputs: LossReferenceInputs, h = 1e-6, tol = 1e-6): void {
  const r = grpoLossReference(inputs);
  for (let k = 0; k < inputs.mean.length; k++) {
    const at = (d: number) => grpoLossReference({ ...inputs, mean: Array.from(inputs.mean, (v, i) => (i === k ? v + d : v)) }).loss;
    const fd = (at(h) - at(-h)) / (2 * h);
    assert.ok(Math.abs(fd - r.dMean[k]!) < tol, `dMean[${k}]: ${r.dMean[k]} vs finite difference ${fd}`);
  }
  const fdS = (grpoLossReference({ ...inputs, logStd: inputs.logStd + h }).loss - grpoLossReference({ ...inputs, logStd: inputs.logStd - h }).loss) / (2 * h);
  assert.ok(Math.abs(fdS - r.dLogStd) < tol, `dLogStd ${r.dLogStd} vs ${fdS}`);
}
