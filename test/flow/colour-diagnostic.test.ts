// Round 33's per-step colour diagnostic of the single-process loop (docs/flow.md, "Round 33: flow33"): the
// per-channel error of the scored actions, the per-channel SSIM of the dense maps and the gradient norm, by hand and
// against the step's own SSIM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { tinyFlowConfig } from '../helpers/flow-group.ts';
import { channelMeanSums, runSingleProcess, type SingleProcessStep } from '../../lib/local/single-process.ts';

test('channelMeanSums: per channel, the sum over images of the mean over pixels of (values - reference), by hand', () => {
  // two images [2,3,1,2]: channel c of image i holds two pixels
  const values = Float32Array.of(0.5, 1, 0, 0, 0.25, 0.75, /* image 1 */ 1, 1, 0.5, 0, 0, 0);
  const reference = Float32Array.of(0.5, 0.5, 0, 0, 0.5, 0.5, /* image 1 */ 0, 0, 0, 0, 0, 1);
  // image 0: (0 + 0.5) / 2 = 0.25, 0, (-0.25 + 0.25) / 2 = 0; image 1: 1, 0.25, -0.5
  assert.deepEqual(channelMeanSums(values, 2, reference), [1.25, 0.25, -0.5]);
  // without a reference: the channel means themselves, summed (0.75 + 1, 0 + 0.25, 0.5 + 0)
  assert.deepEqual(channelMeanSums(values, 2), [1.75, 0.25, 0.5]);
});

for (const mode of ['scalar', 'dense'] as const) {
  test(`the single-process loop reports each GRPO step's per-channel error and gradient norm (flow family, ${mode})`, async () => {
    const c = tinyFlowConfig({}, mode);
    const steps: SingleProcessStep[] = [];
    const lines: string[] = [];
    await runSingleProcess(c, { onStep: (s) => steps.push(s), log: (l) => lines.push(l) });
    assert.equal(steps.length, 2);
    for (const s of steps) {
      assert.equal(s.channelError.length, 3);
      for (const e of s.channelError) assert.ok(Number.isFinite(e) && Math.abs(e) <= 1, `channel error ${e} is a mean difference of values in [0, 1]`);
      assert.ok(Number.isFinite(s.gradNorm) && s.gradNorm > 0, `gradient norm ${s.gradNorm}`);
      if (mode === 'scalar') assert.equal(s.channelSsim, undefined, 'no maps without dense advantages');
      else {
        // every channel has as many windows, so the mean of the channels' map means is the step's mean SSIM
        const mean = s.channelSsim!.reduce((a, x) => a + x, 0) / 3;
        assert.ok(Math.abs(mean - s.components.ssim!) < 1e-5, `channels' mean ${mean} vs the step's SSIM ${s.components.ssim}`);
      }
    }
    // the loop logs every 10 steps: none here, and a 10-step run's line carries the diagnostic
    assert.equal(lines.filter((l) => l.startsWith('[grpo]')).length, 0);
    const ten: string[] = [];
    await runSingleProcess(parseConfig({ ...c, grpo: { ...c.grpo, steps: 10 }, sft: { ...c.sft, steps: 0 } }), { log: (l) => ten.push(l) });
    assert.match(ten.find((l) => l.startsWith('[grpo] 10/10'))!, / grad \d\.\d\de[-+]\d+ rgb error [-+]\d\.\d{4}\/[-+]\d\.\d{4}\/[-+]\d\.\d{4}/);
  });
}
