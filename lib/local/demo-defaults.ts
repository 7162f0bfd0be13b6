// The embedded demo's defaults (`recovery-grpo demo`, scripts/demo-probe.ts), on the built-in photographs
// (32 px training crops, whole 128 px evaluation images): a short, gentle L1 warm start (sft.* defaults: longer
// over-fits the training photographs and harms the evaluation ones), then dense GRPO; well within 10 minutes
// on 2 cores (docs/data.md, "Learning on photographs", has the measurements).
export const DEMO_SFT_STEPS = 400;
// 500 GRPO steps: on the validation split (scripts/demo-probe.ts, seed 0) GRPO repairs most of what the warm
// start harms by step 500 (worst type -0.009 against identity; -0.014 to -0.021 at 100-400 steps).
export const DEMO_GRPO_STEPS = 500;
// Evaluating 64 whole photographs costs about as much as 15 SFT steps: the periodic evaluation runs every
// 100 versions in the demo instead of every 20 (a --set eval.everyVersions=... overrides it).
export const DEMO_OVERRIDES: readonly string[] = ['eval.everyVersions=100'];
