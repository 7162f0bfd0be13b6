// The embedded demo's defaults (`recovery-grpo demo`, scripts/demo-probe.ts), on the built-in photographs
// (32 px training crops, whole 128 px evaluation images): a warm start whose loss is the evaluation's PSNR
// averaged per image, then dense GRPO held near it by a larger KL weight; well within 10 minutes on 2 cores.
// Chosen on the validation split of the training photographs (data.valImages=8), never on the evaluation
// photographs: docs/data.md, "Round 3", "Round 5", "Round 6: demo settings" and "Round 8: grpo8".
//
// sft.loss psnr (the schema's default is l1): minus the mean per-image PSNR. L1 over the batch lets a change that
// helps a badly corrupted crop cost a mildly corrupted one; per-image log MSE prices that change by how little
// the image was corrupted. On the validation photographs, at 200 steps, it ends at the same reward as L1
// with a higher PSNR (seed 0: 21.14 dB against identity 21.12, L1 20.96) and no row below identity by more than
// 0.003; at 400 steps +0.030 reward over identity pooled with every row within 0.008 (L1 at 400: six rows past 0.01).
// 400 SFT steps (sft.lr 3e-4): the longest psnr warm start tried; all its validation rows within the bound, and
// after GRPO from it too, per seed (round 5: worst -0.0097; from round 3's L1 warm start two rows were past it).
export const DEMO_SFT_STEPS = 400;
// 400 GRPO steps with grpo.beta 0.05 (round 8, docs/data.md "Round 8: grpo8"; was 100, round 6): re-chosen on the
// every-type validation draws (8 photographs x 16 types) of five seeds (0-4) from one 500-step probe per seed at
// beta 0.05 and 0.02 (snapshots every 100 steps), by round 6's rule fixed beforehand: the largest min over seeds of
// min(GRPO - SFT, 0.01 + worst type/level row), ties within 0.0005 to fewer steps. 400 steps at 0.05 scored +0.0010
// (0.02 at 400: +0.0009; 100 steps at 0.05, the old default: -0.0012, GRPO - SFT -0.0012 on seed 3; every other
// candidate below 0). GRPO's validation gain over the warm start is small and wanders from step to step on some
// seeds (seed 4: +0.0005, -0.0022, -0.0005, +0.0013, -0.0018 at 100-500), so the choice is the best of a noisy
// curve. Do no harm was not binding (worst rows -0.0020 to -0.0046 at 400, 0.05). About 3.5 min idle on 2 cores
// (estimated from the idle demos of rounds 5-7: about 26 s per 100 GRPO steps).
export const DEMO_GRPO_STEPS = 400;
// grpo.beta 0.05 (the schema's default is 0.004): with 0.004 GRPO harms graffiti, atmospheric_turbulence and
// block_exchange on the validation photographs as it did on the evaluation ones (round 3); 0.05 keeps every
// per-seed validation row within 0.007 at 100 steps (within 0.0046 at 400 on every-type draws, seeds 0-4; 0.02
// at 400: 0.0061). Evaluating 64 whole photographs costs about as much as 15 SFT steps: the periodic evaluation
// runs every 100 versions instead of every 20. A --set overrides any of them.
// grpo.identityAnchor stays 0 (round 7, docs/data.md "Round 7: harm7"): the identity member shrank the validation
// rows' harm but also GRPO's gain over the warm start, the criterion closest to failing (seed 1).
export const DEMO_OVERRIDES: readonly string[] = ['eval.everyVersions=100', 'grpo.beta=0.05', 'sft.loss=psnr'];
