// The run configuration: one YAML or JSON file, validated with zod at load (lib/config/load.ts). Every field
// carries a `.describe()` and a default; docs/config.md is generated from this schema
// (`node --import tsx scripts/gen-config-doc.ts`), and a test fails when it is stale.
//
// Conventions: every section is a strict object (unknown keys are an error); a section left out gets all
// its defaults; descriptions say where a default comes from (the paper / Flow-GRPO / the feasibility study).

import { existsSync, statSync } from 'node:fs';
import { z } from 'zod';
import { DEVICES } from '../graph/device.ts';
import { CORRUPTION_TYPES } from '../data/corruptions.ts';
import { EVAL_DRAWS } from '../data/eval-draws.ts';
import { flowConfigSchema } from '../flow/config.ts';
import { RUN_ID_PATTERN, RUN_ID_RULE } from '../transport/run-id.ts';
import { DUAL_CLIP_DEFAULT } from '../grpo/algorithm.ts';
import { LOGP_TOLERANCE_DEFAULT, STALE_CHECK_FRACTION_DEFAULT } from '../grpo/logp-check.ts';
import { compileRewardExpression, constantReward, decomposeForDense, rewardConstants, rewardTerms, type RewardFunction } from '../grpo/reward-expression.ts';

const int = () => z.number().int();
// Upper bounds: a value past them is a typo or an attack (data.size=100000 would allocate 30 GB per image
// batch), refused at load with the bound named, rather than discovered as an out-of-memory crash later.
const MAX_IMAGE_SIZE = 1024;
const MAX_STEPS = 10_000_000;
const positive = () => z.number().gt(0);
const fraction = () => z.number().gte(0).lt(1);

/** The reward components the reward workers compute, as the expression names them. */
export const REWARD_COMPONENTS = ['ssim', 'clip_cos'] as const;

/** The largest magnitude of a reward weight: components are in [-1, 1], so rewards stay far from overflowing the group statistics. */
export const MAX_REWARD_WEIGHT = 1e6;
export const DEFAULT_REWARD_EXPRESSION = 'weights.ssim * ssim + weights.clip * exp(-alpha * (1 - clamp(clip_cos, 0, 1)))';

// ---------------------------------------------------------------------------------------------------------

export const runSchema = z.strictObject({
  id: z.string().regex(RUN_ID_PATTERN, RUN_ID_RULE)
    .default('local')
    .describe('Run id: names the run in checkpoints, object-store keys, NATS subjects, metrics labels and logs. 1 to 64 letters, digits, "_" or "-", starting with a letter or digit.'),
  seed: int().gte(0).default(0)
    .describe('Root seed. Corruptions, initialisation and policy noise derive from it (noise from (seed, sample id, group index)), so a re-run task reproduces its result.'),
  outDir: z.string().min(1).default('runs/local')
    .describe('Where the run\'s outputs were put, for the record: the demo and sweep set it to their output folder. No role reads it: a role writes files only where its flags say (the orchestrator\'s --events); on Kubernetes nothing is written there.'),
}).describe('Identity and reproducibility of the run.');

// The user-facing data section. lib/data has its own internal spec (datasetSpecSchema, corruptionMixSchema);
// lib/data/dataset.ts's dataConfigFrom() is the one adapter between the two. Type names are checked here,
// at load, against lib/data's list, so a typo fails before any process starts.
const corruptionType = z.string().refine((t) => (CORRUPTION_TYPES as readonly string[]).includes(t), {
  message: `must be one of ${CORRUPTION_TYPES.join(', ')}`,
});

export const dataSchema = z.strictObject({
  source: z.strictObject({
    kind: z.enum(['photos', 'procedural', 'folder', 'manifest']).default('photos')
      .describe('Where clean images come from: the built-in photographs from Debian packages (lib/data/photos.jsonl; scripts/ensure-photos.sh installs them), generated scenes (procedural, seeded; for fast tests), every image in a folder, or a manifest file listing images.'),
    path: z.string().min(1).optional()
      .describe('Folder (kind folder) or manifest file (kind manifest; for kind photos, a photo manifest replacing the built-in one). Required for folder and manifest.'),
    count: int().gt(0).lte(10_000_000).default(256)
      .describe('Number of clean images: generated (procedural) or used at most (folder, manifest).'),
  }).superRefine((s, ctx) => {
    if ((s.kind === 'folder' || s.kind === 'manifest') && s.path === undefined) {
      ctx.addIssue({ code: 'custom', path: ['path'], message: `is required when kind is '${s.kind}'` });
    }
  }).prefault({}).describe('The clean-image dataset.'),
  size: int().gte(11).lte(MAX_IMAGE_SIZE).default(32)
    .describe('Training resolution in pixels: square images (procedural) or seeded random crops (photos, folder, manifest), size x size. At least 11, the SSIM window.'),
  evalSize: int().gte(11).lte(MAX_IMAGE_SIZE).optional()
    .describe('Photos, folder and manifest sources: evaluation on whole images with the shorter side resized to this, and training crops taken from the same scale. Default for photos: 128; absent for folder/manifest: evaluation on centre crops of size.'),
  evalImages: int().gt(0).lte(100_000).default(64)
    .describe('Photos source: the evaluation split takes whole scenes in seeded order until it holds at least this many photographs (the rest is for training).'),
  valImages: int().gte(0).lte(100_000).default(0)
    .describe('Photos source: after the evaluation split, whole training scenes in the same seeded order go to a validation split until it holds at least this many photographs (not trained on; scripts/demo-probe.ts chooses settings on it). 0: none.'),
  augment: z.boolean().default(false)
    .describe('Photos source: flip and turn each training crop by one of the 8 symmetries of the square, drawn from (seed, photograph, epoch); exact (no resampling).'),
  evalFraction: fraction().default(0.125)
    .describe('Fraction of the clean images held out for evaluation (never trained on).'),
  corruptions: z.strictObject({
    types: z.union([z.literal('all'), z.array(corruptionType).min(1)]).default('all')
      .describe("Corruption types to sample: 'all' (the 16 of the Robust-R1 pipeline) or a list of type names, e.g. [gaussian_noise, motion_blur]."),
    weights: z.record(corruptionType, z.number().gte(0)).optional()
      .describe('Relative sampling weight per corruption type (types not listed weigh 1). Absent: uniform.'),
    levels: z.array(z.number().gt(0).lte(1)).min(1).default([0.23, 0.45, 0.9])
      .describe('Corruption intensities to sample from (the paper: 0.23 / 0.45 / 0.9).'),
  }).superRefine((c, ctx) => {
    if (c.weights && Array.isArray(c.types)) {
      for (const k of Object.keys(c.weights)) {
        if (!c.types.includes(k)) ctx.addIssue({ code: 'custom', path: ['weights', k], message: `'${k}' is not one of data.corruptions.types` });
      }
    }
  }).prefault({}).describe('The corruption mix applied (seeded) to clean images.'),
}).describe('Training data: clean images and how they are corrupted.');

// An imported network and its adapters (lib/models/imported-policy.ts). The files must exist at load, so a
// typo fails before any process starts; their contents are checked when a role first builds the policy.
const existingFile = (what: string) => z.string().min(1).refine((p) => existsSync(p) && statSync(p).isFile(), {
  error: (iss) => `${what} ${JSON.stringify(iss.input)} is not a readable file`,
});
const namePattern = () => z.string().min(1).regex(/^[^\s]+$/, 'must be a name pattern without spaces (* matches any run of characters)');

export const networkSchema = z.strictObject({
  onnx: existingFile('ONNX file')
    .describe('ONNX file of the mean network (as torch.onnx.export writes it): image [N,3,H,W] in, a residual [N,3,H,W] out (mean = image + output). Every role reads it; its sha256 (with the weights file\'s) is the base digest checkpoints carry.'),
  weights: existingFile('safetensors file').optional()
    .describe('A PyTorch state dict (safetensors) replacing the ONNX initializers (names mapped, shapes checked).'),
  image: z.string().min(1).optional()
    .describe('Name of the image input. Absent: the graph\'s first input.'),
  frozen: z.array(namePattern()).default([])
    .describe('Initializer name patterns kept frozen (not trained, not in checkpoints). Running statistics are always frozen.'),
  time: z.string().min(1).optional()
    .describe('Flow family: the input that receives the time t, declared [N] or [N,1] (t) or [N,2F] (sinusoidal features of t at F frequencies). The image input then receives x_t and the output is the velocity.'),
  condition: z.string().min(1).optional()
    .describe('Flow family: the input [N,3,H,W] that receives the corrupted image y (flow space).'),
}).describe('An imported mean network (gaussian family) or velocity network (flow family).');

export const adapterSchema = z.strictObject({
  kind: z.literal('lora').describe('Adapter kind: lora (W + alpha/rank * B A, B zero at the start).'),
  rank: int().gte(1).default(8).describe('Rank of the factors A [rank, in] and B [out, rank].'),
  alpha: z.number().gt(0).default(8).describe('Scale numerator: the update is alpha / rank * B A.'),
  targets: z.array(namePattern()).min(1).default(['*'])
    .describe('Name patterns of the Conv/Gemm/MatMul weights to adapt (default: all); a pattern that matches none is refused.'),
  trainBiases: z.boolean().default(false)
    .describe('Also train the biases of the base (they then travel in checkpoints beside the adapters).'),
}).describe('Low-rank adapters on an imported network.');

export const modelSchema = z.strictObject({
  family: z.enum(['gaussian', 'flow']).default('gaussian')
    .describe('Policy family: gaussian, the one-step Gaussian pixel policy; flow, a conditional flow-matching generator trained with Flow-GRPO (its sampler under `flow`, docs/flow.md). arch/width/depth shape the network of either.'),
  arch: z.enum(['resnet', 'unet']).default('resnet')
    .describe('Policy network: a residual CNN predicting a correction, or a small U-Net.'),
  width: int().gt(0).lte(1024).default(16)
    .describe('Channels of the hidden layers.'),
  depth: int().gt(0).lte(64).default(4)
    .describe('Residual blocks (resnet) or resolution levels (unet).'),
  logStd: z.number().finite().default(Math.log(0.01))
    .describe('log sigma of the Gaussian pixel policy (default log(0.01)). The feasibility study: sigma 0.01 works, 0.02 is already worse (sigma^2 must stay well below SSIM\'s C2 = 9e-4).'),
  learnLogStd: z.boolean().default(false)
    .describe('Train log sigma as a parameter instead of keeping it fixed.'),
  network: networkSchema.optional()
    .describe('An imported network (ONNX) as the policy\'s mean network instead of model.arch (docs/import.md). Absent: the built-in network model.arch.'),
  adapter: adapterSchema.optional()
    .describe('Low-rank adapters on the imported network (needs model.network): only the adapters (and biases with trainBiases) train; checkpoints carry only them.'),
}).superRefine((m, ctx) => {
  if (m.adapter && !m.network) ctx.addIssue({ code: 'custom', path: ['adapter'], message: 'needs model.network (adapters go on an imported network)' });
  if (m.network && m.family === 'flow') {
    for (const k of ['time', 'condition'] as const) if (!m.network[k]) ctx.addIssue({ code: 'custom', path: ['network', k], message: `the flow family needs model.network.${k} (the input of the velocity network that receives ${k === 'time' ? 't' : 'the corrupted image'})` });
    if (m.adapter) ctx.addIssue({ code: 'custom', path: ['adapter'], message: 'adapters on a flow velocity network are not supported (not built for the flow graphs); fine-tune it fully' });
  }
  if (m.network && m.family !== 'flow') {
    for (const k of ['time', 'condition'] as const) if (m.network[k]) ctx.addIssue({ code: 'custom', path: ['network', k], message: 'only the flow family feeds a time or condition input (model.family=flow)' });
  }
}).describe('The restoration policy.');

/** Why reward.device is refused: where a worker runs its graphs is its own --device (docs/gpu.md). */
export const REWARD_DEVICE_RETIRED =
  "no longer a run setting: a worker's device is a property of its machine, so each worker takes its own --device (recovery-grpo reward-worker --device cuda; npm run demo -- --device reward=cuda; recovery-grpo score/eval --device cuda; docs/gpu.md)";

export const rewardSchema = z.strictObject({
  expression: z.string().min(1).default(DEFAULT_REWARD_EXPRESSION)
    .describe('Scalar reward (a mathjs expression) over the components `ssim` and `clip_cos`, the constants of `weights` (written `weights.<name>`) and `alpha`. Default: Robust-U1\'s `1.0 * ssim + 0.2 * exp(-5 * (1 - clamp(clip_cos, 0, 1)))`. Applied by the orchestrator, so changing it never needs a re-score; its syntax is checked when the orchestrator compiles it.'),
  weights: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an identifier'), z.number().finite().gte(-MAX_REWARD_WEIGHT).lte(MAX_REWARD_WEIGHT))
    .default({ ssim: 1.0, clip: 0.2 })
    .describe(`Named weights the expression uses (Robust-U1: restoration 1.0, tinyclip 0.2). Every weight must appear in the expression as \`weights.<name>\` and every \`weights.<name>\` there must exist, so an ablation override such as \`reward.weights.clip=0.5\` cannot silently miss. With \`multiRewardMode: normalize-then-sum\` they weigh the normalised terms. Each is finite, at most ${MAX_REWARD_WEIGHT} in magnitude (larger ones can overflow the group statistics), and not negative unless reward.allowNegativeWeights is true; weights that make the reward the same for every ssim and clip_cos (all 0) are refused, since no group could train.`),
  allowNegativeWeights: z.boolean().optional()
    .describe('Accept negative reward.weights (default: refused). A negative weight pays for lowering what it weighs: a negative ssim weight trains toward worse restorations. For an ablation that means it.'),
  alpha: z.number().gt(0).default(5)
    .describe('Sharpness of the CLIP term exp(-alpha * (1 - cos)) (Robust-U1: 5).'),
  encoder: z.enum(['random-features', 'mobilenet-v2', 'onnx']).optional()
    .describe('The image encoder of the semantic term clip_cos (docs/encoders.md): `random-features`, the built-in fixed random convolutional features (not CLIP); `mobilenet-v2`, the pretrained MobileNetV2 (width 1.4) that the npm package nsfwjs (MIT) ships, converted from TensorFlow.js, its pooled penultimate features with its own preprocessing; `onnx`, a user\'s CLIP vision tower at reward.clipModel. Absent: onnx when reward.clipModel is set, else the default in docs/encoders.md. Reports name the encoder, its source package and version, and its licence.'),
  clipModel: z.string().min(1).optional()
    .describe('Path to an ONNX CLIP vision tower (input [N,3,224,224] CLIP-normalised, output an embedding [N,D]), used with reward.encoder=onnx (implied when reward.encoder is absent). With several outputs the embedding is the one named image_embeds, else pooler_output, else the only one of rank 2; any other model is refused at load, naming its outputs (docs/encoders.md).'),
  // Retired in round 18: the device is a property of each worker's machine, not of the run (one run config serves a
  // cluster of mixed machines). `cpu`, what every config.json written before says, still loads and means nothing.
  device: z.enum(DEVICES).optional()
    .describe(`Retired (round 18): ${REWARD_DEVICE_RETIRED}. Only \`cpu\`, which configuration files written before say, is still accepted, and changes nothing.`),
}).superRefine((r, ctx) => {
  if (r.device !== undefined && r.device !== 'cpu') ctx.addIssue({ code: 'custom', path: ['device'], message: `${REWARD_DEVICE_RETIRED} (got ${JSON.stringify(r.device)})` });
  const used = new Set([...r.expression.matchAll(/\bweights\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!));
  for (const name of used) {
    if (!(name in r.weights)) ctx.addIssue({ code: 'custom', path: ['expression'], message: `uses weights.${name}, which reward.weights does not define` });
  }
  for (const name of Object.keys(r.weights)) {
    if (!used.has(name)) ctx.addIssue({ code: 'custom', path: ['weights', name], message: `is not used by reward.expression (write weights.${name} there, or remove it)` });
    const w = r.weights[name]!;
    if (w < 0 && !r.allowNegativeWeights) {
      ctx.addIssue({ code: 'custom', path: ['weights', name], message: `is negative (${w}): the reward would pay for lowering what weights.${name} weighs (a negative ssim weight trains toward worse restorations); set reward.allowNegativeWeights=true if the ablation means it` });
    }
  }
}).superRefine((r, ctx) => {
  // The pair lib/models/reward.ts's encoderKindOf refuses, refused at load: a worker would otherwise exit on it
  // after the orchestrator had started, once per restart.
  if (r.encoder === 'onnx' && r.clipModel === undefined) ctx.addIssue({ code: 'custom', path: ['clipModel'], message: 'is required when reward.encoder is onnx (the path of the ONNX vision tower)' });
  if (r.encoder !== undefined && r.encoder !== 'onnx' && r.clipModel !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['clipModel'], message: `conflicts with reward.encoder ${r.encoder}; set reward.encoder=onnx to use the file, or remove reward.clipModel` });
  }
}).describe('How reward components combine into one scalar reward.');

export const grpoSchema = z.strictObject({
  groupSize: int().gte(2).lte(1024).default(8)
    .describe('G: proposals per corrupted image; advantages are relative within this group (feasibility study: 8; 16 costs more than it gains).'),
  samplesPerBatch: int().gte(1).lte(4096).default(4)
    .describe('Corrupted images (groups) per training batch; the batch holds samplesPerBatch x groupSize actions.'),
  clipLow: z.number().gt(0).lt(1).default(1e-4)
    .describe('PPO ratio clip below 1: ratios are clamped to 1 - clipLow (Flow-GRPO: 1e-4 for mean-reduced log-probs).'),
  clipHigh: z.number().gt(0).default(1e-4)
    .describe('PPO ratio clip above 1: ratios are clamped to 1 + clipHigh. Larger than clipLow gives DAPO\'s asymmetric clip.'),
  dualClip: z.number().gt(1).lte(1e6).default(DUAL_CLIP_DEFAULT)
    .describe('Dual-clip PPO (Ye et al. 2020): for a negative advantage the loss term is at most dualClip * |A|, so a ratio pi/pi_old above dualClip passes no gradient (per element in dense mode). Bounds what a stale, broken or forged behaviour log-probability can do to a step: an honest on-policy ratio is 1. Must be > 1 (3, the paper\'s); it binds only where the ratio exceeds it, above the PPO clip range when dualClip > 1 + clipHigh. docs/grpo.md, "Dual clip".'),
  logpTolerance: z.number().gt(0).lte(10).default(LOGP_TOLERANCE_DEFAULT)
    .describe('The learner\'s same-version check, in nats: a GRPO row whose behaviour version is the learner\'s current one (every row at maxStaleness 0) must have |logp - logp_old| (its mean over elements in dense mode) and |ratio - 1| within this, since the learner recomputes the same log-density from the same weights; a row beyond it (forged or broken) is excluded from the step and counted in logp_rows_excluded_total. 1e-3 (default) is about 50x what float32 summation and a WebGPU rollout worker give (docs/grpo.md, "Same-version check"); not measured on CUDA (its convolutions may run in TF32): there, watch logp_mismatch and logp_rows_excluded_total before trusting it, and raise it if honest rows are excluded.'),
  staleCheckFraction: z.number().gte(0).lte(1).default(STALE_CHECK_FRACTION_DEFAULT)
    .describe('At maxStaleness > 0, the fraction of stale groups (behaviour version below the learner\'s) per batch whose rows the learner checks: it keeps the parameters of its last maxStaleness versions in memory (maxStaleness x the checkpoint\'s size) and recomputes each checked row\'s log-density under its version\'s parameters (one forward of the policy network per distinct stale version, over the checked groups\' images); a row beyond grpo.logpTolerance is excluded and reported as the same-version check\'s are (excluded_actions, so the orchestrator\'s quarantine counts it). Each group is checked with this probability, drawn from a key only the learner holds (RECOVERY_STALE_CHECK_KEY, else random at its start). 1 (default; the check cost 5-12% of the learner\'s step in the bench with every row stale) checks every stale group; 0 checks none and keeps no copies (the dual clip alone bounds stale rows). Both families (the flow family: per trained step). docs/grpo.md, "The stale-row check".'),
  quarantineAfter: int().gte(0).lte(1_000_000).default(3)
    .describe('The orchestrator quarantines a rollout worker id for the rest of the run once this many of its last grpo.quarantineWindow checked rollout results (groups) had rows excluded by the learner\'s same-version or stale-row check (grpo.logpTolerance, grpo.staleCheckFraction): its session is closed, its held tasks go to other workers, and a reconnect with that worker id is refused (PERMISSION_DENIED), also by a restarted orchestrator (the run state records it; --lift-quarantine lifts it). Each exclusion is logged naming the worker and counted in rollout_rows_excluded_total{worker_id}. 3 (default) tolerates a rare honest rounding outlier; 0 = never quarantine (still logged and counted). Not in the config hash. docs/security.md, "Forged log-densities".'),
  quarantineWindow: int().gte(0).lte(1_000_000).default(100)
    .describe('The window grpo.quarantineAfter counts over: a worker id\'s last this many rollout results (groups) the learner\'s check examined (in applied batches, each group none of whose actions the learner reports unchecked, TrainResult.check_coverage: a stale group its stale-row check passed counts as a current one; and any group with an excluded row. A learner that does not report it, older: a group with a row at the learner\'s version, or excluded), so an honest worker\'s rare rounding outliers do not add up over a long run: quarantined at quarantineAfter of them within any quarantineWindow consecutive results. 100 (default) with quarantineAfter 3: an honest worker with 1 outlier in 1,000 results is falsely quarantined after about 250,000 results on average (without the window, after about 3,000); a forger whose every result is excluded, after 3. 0 = over the whole run (as before round 26). At least quarantineAfter (else nothing could be quarantined). The counts are stored with each acknowledgement and go on after an orchestrator restart (round 29; before, they started afresh). Not in the batch layout: may change on a restart. docs/security.md, "Forged log-densities".'),
  beta: z.number().gte(0).default(0.004)
    .describe("KL weight against the frozen SFT policy: beta * mean((mean - ref_mean)^2) / (2 sigma^2), the exact KL of two Gaussians with the policy's std sigma (the flow family: per trained step, sigma the step's std; flow.klForm). For the flow family's sde sampler that is 1/(-dt) times flow_grpo's KL term (train_sd3.py divides by 2 s_t^2, not 2 (s_t sqrt(-dt))^2; 15-28x at the flow defaults), so a beta here weighs an sde step as flow_grpo's beta / (-dt) would (the default 0.004 as flow_grpo's 0.06-0.11); flow.klForm=flow_grpo uses flow_grpo's form, where one beta means the same. The default 0.004's source is unverified: flow_grpo's config/grpo.py (commit ac4c86e) uses 0.04 and 0.01 (base 0); 0.004 appears in flow_grpo-derived configs at lr 1e-4. 0 skips the reference forward."),
  advantageClip: z.number().gt(0).default(5)
    .describe('Advantages are clipped to +-advantageClip (Flow-GRPO: 5).'),
  stdNormalize: z.boolean().default(true)
    .describe('Divide advantages by the group\'s reward std (GRPO). false: only subtract the group mean (Dr. GRPO).'),
  stdEps: z.number().gt(0).default(1e-4)
    .describe('Added to the group std before dividing (Flow-GRPO: 1e-4).'),
  dropZeroVarianceGroups: z.boolean().default(false)
    .describe('Drop groups whose rewards are all equal (they carry no signal) instead of training on zero advantages (DAPO).'),
  multiRewardMode: z.enum(['sum', 'normalize-then-sum']).default('sum')
    .describe('sum: evaluate reward.expression, then normalise per group. normalize-then-sum: normalise each weighted term per group first, then sum (GDPO).'),
  maxStaleness: int().gte(0).lte(1000).default(0)
    .describe('Largest allowed (learner version - behaviour version) of a batch; new samples are dispatched only within it. 0 = synchronous on-policy.'),
  steps: int().gte(0).lte(MAX_STEPS).default(500)
    .describe('GRPO updates (one policy version per training batch).'),
  advantageMode: z.enum(['scalar', 'dense']).default('dense')
    .describe('dense (default; with model.family flow the default is scalar, FAMILY_DEFAULTS): per-pixel advantages from the group-centred SSIM maps plus the scalar embedding-reward part (docs/grpo.md); scalar: one advantage per action, as the paper. At equal compute from a converged warm start, dense GRPO gained about three times the reward of scalar GRPO or of continued SFT over 8 seeds on the procedural scenes (docs/dense-advantages.md); on the built-in photographs it has not been shown to beat continued SFT at equal compute (README, "What it achieves"). The flow family defaults to scalar: dense Flow-GRPO collapsed into a colour cast on 3 of 5 seeds at 240 CPU s (round 32) and never measured above scalar (docs/flow.md, "Round 33: flow33"); grpo.advantageMode=dense still selects it.'),
  identityAnchor: z.number().gte(0).lte(100).default(0)
    .describe('Do no harm: the weight of the identity member of each group (0 = off). The corrupted image with the group\'s first noise is scored with the group; where it beats the group (positive advantage, per pixel in dense mode) a bounded term pulls the policy mean toward the corrupted image, weighted like this many sampled actions (docs/grpo.md, "Identity member"). Not with model.family flow, model.learnLogStd or grpo.multiRewardMode normalize-then-sum.'),
  ema: z.number().gte(0).lt(1).default(0)
    .describe('Decay of a moving average of the weights over the GRPO steps (lib/optim/ema.ts), started at the warm start, one update per trained batch; the rollouts keep sampling from the trained weights, and the last GRPO version (batch seq sft.steps + grpo.steps, or the single-process loop\'s last step) publishes the average in their place: the "after GRPO" policy. The learner keeps it beside its AdamW moments, so a restarted learner continues it. 0 (default) turns it off. docs/grpo.md, "Weight average"; chosen in docs/data-history.md "Round 9: grpo9".'),
  emaWarmup: z.boolean().default(false)
    .describe('grpo.ema with the warm-up of sft.ema, decay min(ema, k / (k + 9)) at update k (about the last 10% of the steps until update 891); false (default): the decay from the first update.'),
}).describe('Group Relative Policy Optimisation (Flow-GRPO) settings.');

export const sftSchema = z.strictObject({
  steps: int().gte(0).lte(MAX_STEPS).default(400)
    .describe('Supervised warm-start steps (the paper\'s stage I). On the built-in photographs a longer warm start over-fits the few training photographs (with 10 of them and L1 at 1e-4 the evaluation reward fell below identity after 600 steps; docs/data-history.md, "Why the first photo defaults harmed the photographs"). On procedural scenes the feasibility study needed about 3000 L2 steps at lr 1e-3.'),
  batchSize: int().gt(0).lte(4096).default(32)
    .describe('Images per SFT step.'),
  lr: positive().default(3e-4)
    .describe('SFT peak learning rate (AdamW with the optim betas/eps/weightDecay). Chosen on the built-in photographs\' validation split (22 training photographs, docs/data-history.md, "Round 2"): 3e-4 lifts the warm start above identity (reward 0.903 against 0.873 at seed 0) where 1e-4 leaves it at identity; with only 10 training photographs 1e-3 harmed the evaluation photographs.'),
  schedule: z.enum(['cosine', 'constant']).default('cosine')
    .describe('SFT learning-rate schedule: cosine decays from lr to lr/10 over the steps; constant keeps lr. Measured on the built-in dataset: with a constant 1e-3 the evaluation reward of consecutive checkpoints still swings by about +-0.02 after 1000 steps, so the warm start GRPO begins from would be a matter of luck; the decay settles it.'),
  ema: z.number().gte(0).lt(1).default(0)
    .describe('Decay of an exponential moving average of the weights over the SFT steps (lib/optim/ema.ts, with diffusers\' warm-up min(ema, k/(k+9)) at update k); the weights published when SFT ends (the warm start GRPO starts from, its checkpoint) are the average. 0 (default) turns it off. model.family=flow only. The learner keeps it beside its AdamW moments (a restart continues it) and publishes it at the last SFT batch (seq sft.steps), as the single-process loop does when SFT ends. Measured in docs/flow.md ("Round 5").'),
  loss: z.enum(['l2', 'l1', 'psnr']).default('l1')
    .describe('Pixel loss between the policy mean and the clean image. l1 (default): measured on the built-in photographs at 300 steps, it harms the training photographs less than l2 (reward 0.941 against 0.924, identity 0.933) and its corrections are sparser (docs/data-history.md). l2: the mean squared error over the batch. psnr: minus the mean per-image PSNR, mean_i 10 log10(mse_i + 1e-5), as the evaluation averages PSNR per image, so a change to a mildly corrupted image costs more than the same change to a badly corrupted one.'),
}).describe('Supervised warm start (stage I) before GRPO.');

export const optimSchema = z.strictObject({
  lr: positive().default(1e-4)
    .describe('GRPO learning rate (feasibility study: 1e-4; 3e-4 peaks then decays).'),
  betas: z.tuple([fraction(), fraction()]).default([0.9, 0.999])
    .describe('Adam (beta1, beta2) (Flow-GRPO: 0.9, 0.999).'),
  eps: positive().default(1e-8)
    .describe('Adam epsilon (Flow-GRPO: 1e-8).'),
  weightDecay: z.number().gte(0).default(1e-4)
    .describe('Decoupled (AdamW) weight decay (Flow-GRPO: 1e-4).'),
  maxGradNorm: z.number().gte(0).default(1.0)
    .describe('Global gradient-norm clip, as torch.nn.utils.clip_grad_norm_ (Flow-GRPO: 1.0). 0 disables clipping.'),
  excludeFromWeightDecay: z.array(z.string().refine((s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  }, 'must be a valid regular expression')).default([])
    .describe('Regular expressions; parameters whose name matches one get no weight decay (e.g. ["\\\\.bias$", "log_std"]). Default: none, as PyTorch.'),
}).describe('AdamW for the learner (GRPO).');

export const orchestratorSchema = z.strictObject({
  listen: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port').default('127.0.0.1:50051')
    .describe('gRPC listen address host:port (use 0.0.0.0:50051 inside a Kubernetes pod).'),
  leaseSeconds: positive().lte(86_400).default(60)
    .describe('A task not finished within its lease (or whose worker stops heart-beating) is handed to another worker.'),
  heartbeatSeconds: positive().lte(3600).default(10)
    .describe('How often workers heart-beat on their stream; must be shorter than leaseSeconds.'),
  maxMessageBytes: int().gte(1024).lte(1024 * 1024 * 1024).default(64 * 1024 * 1024)
    .describe('Largest gRPC message sent or received (train batches carry images and actions).'),
  maxTaskSeconds: positive().lte(7 * 86_400).default(600)
    .describe('A task\'s total time with one worker, whatever its heartbeats: past it the task is taken back and handed to another worker (a worker that heart-beats forever cannot hold it). Must be >= leaseSeconds.'),
  maxInFlightPerWorker: int().gte(1).lte(1024).default(16)
    .describe('Upper bound on the tasks one worker holds at once, whatever its Hello asks for (Capabilities.max_in_flight).'),
  dispatch: z.enum(['pack', 'spread']).default('spread')
    .describe('For workers that ask for several tasks per message: spread gives each worker with room its even share first (every idle worker busy at once; below capacity one task per message, unless the tasks are cheap: see bundleMs); pack fills the least-loaded worker\'s ask in one message before the next worker gets any (fewest messages, least orchestrator CPU, for many cheap tasks; a batch smaller than one worker\'s ask then lands on one worker). Workers that ask for one get one either way (docs/performance.md, "Orchestrator dispatch").'),
  bundleMs: z.number().gte(0).lte(1000).default(5)
    .describe('With dispatch spread: a worker\'s share is at least as many tasks as a worker of its role is seen to finish within bundleMs (the least time per task over the last 1-2 s; up to its ask and room): cheap tasks go several per message, tasks slower than bundleMs are spread as before; a role once seen cheap whose floor falls below half its best gets a bundle every 8th message, and the per-task cost those measure (what one more task adds to a round trip) keeps a slow consumer\'s waiting from holding cheap tasks at one per message. 0: the even share only. Default 5 (was 2): the idle load bench bundled 10,000 cheap tasks/s from 200 workers 2.2 per message under 2 and 8.9 under 5 (docs/performance-history/dispatch.md, round 7).'),
  coalesceMs: z.number().gte(0).lte(1000).default(0)
    .describe('How long queued tasks may wait for more to fill a worker\'s message (from the oldest queued task): its ask and room with pack; with spread also its share, so only cheap tasks (a bundle floor above the even share, see bundleMs) are held. 0 sends what each turn of the event loop has.'),
}).superRefine((o, ctx) => {
  if (o.heartbeatSeconds >= o.leaseSeconds) {
    ctx.addIssue({ code: 'custom', path: ['heartbeatSeconds'], message: `must be < leaseSeconds (${o.leaseSeconds}) (got ${o.heartbeatSeconds})` });
  }
  if (o.maxTaskSeconds < o.leaseSeconds) {
    ctx.addIssue({ code: 'custom', path: ['maxTaskSeconds'], message: `must be >= leaseSeconds (${o.leaseSeconds}) (got ${o.maxTaskSeconds})` });
  }
}).describe('The orchestrator\'s gRPC server and task leases.');

export const natsSchema = z.strictObject({
  url: z.string().regex(/^(nats|tls|ws|wss):\/\/\S+$/, 'must be a nats://, tls://, ws:// or wss:// URL').default('nats://127.0.0.1:4222')
    .describe('NATS server with JetStream: checkpoints go to its object store, run state to its KV.'),
  keepCheckpoints: int().gte(1).lte(1000).default(5)
    .describe('Policy versions kept in the object store; older ones are deleted.'),
}).describe('NATS JetStream (checkpoint distribution and run state).');

export const metricsSchema = z.strictObject({
  port: int().gte(0).lte(65535).default(9464)
    .describe('HTTP port of the orchestrator\'s /metrics (Prometheus), /health and status page. 0: any free port.'),
}).describe('Prometheus metrics and health endpoints.');

export const evalSchema = z.strictObject({
  everyVersions: int().gte(0).lte(MAX_STEPS).default(20)
    .describe('Evaluate the policy every this many versions on the held-out images. 0: never.'),
  samples: int().gt(0).lte(100_000).default(64)
    .describe('Held-out images per evaluation (the first of the evaluation split); each is corrupted as eval.draws says.'),
  draws: z.enum(EVAL_DRAWS).default('every-type')
    .describe("Corruption draws per evaluation image in the final evaluation (demo summary), recovery-grpo eval, sweep, sweep --methods, scripts/experiment.ts and scripts/demo-probe.ts's validation split. every-type: once per corruption type of the mix, each at a level drawn from (seed, image, type), so every per-type row holds every image (64 photographs per seed with the defaults) and levels are balanced; costs types x the images. one: one (type, level) per image as training draws it (rounds 1-6; a per-type row then holds 1-7 of 64 photographs). docs/evaluation.md."),
  periodicDraws: z.enum(EVAL_DRAWS).default('one')
    .describe('Corruption draws per image in the evaluation during training (eval.everyVersions): one keeps it cheap beside training (it draws the progress curve); every-type as eval.draws.'),
}).describe('Evaluation: the periodic one during training, and the draws of every evaluation.');

export const configSchema = z.strictObject({
  run: runSchema.prefault({}),
  data: dataSchema.prefault({}),
  model: modelSchema.prefault({}),
  reward: rewardSchema.prefault({}),
  grpo: grpoSchema.prefault({}),
  sft: sftSchema.prefault({}),
  optim: optimSchema.prefault({}),
  orchestrator: orchestratorSchema.prefault({}),
  nats: natsSchema.prefault({}),
  metrics: metricsSchema.prefault({}),
  eval: evalSchema.prefault({}),
  flow: flowConfigSchema.prefault({}),
}).superRefine((c, ctx) => checkAlgorithm(c, ctx));


/**
 * Settings that are valid one by one but not together: the reward expression must compile, serve dense
 * advantages (linear in ssim) when grpo.advantageMode is dense, and be a weighted sum of terms when
 * grpo.multiRewardMode is normalize-then-sum; dense and normalize-then-sum exclude each other. Refused here,
 * at load, so every entry point fails early and the same way (lib/grpo/algorithm.ts compileAlgorithm
 * then cannot fail on a loaded config).
 */
function checkAlgorithm(
  c: { reward: { expression: string; weights: Record<string, number>; alpha: number }; grpo: { advantageMode: string; multiRewardMode: string; identityAnchor: number; quarantineAfter: number; quarantineWindow: number }; model: { family: string; learnLogStd: boolean } },
  ctx: z.RefinementCtx,
): void {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  if (c.grpo.quarantineWindow > 0 && c.grpo.quarantineAfter > c.grpo.quarantineWindow) {
    issue(['grpo', 'quarantineWindow'], `grpo.quarantineWindow ${c.grpo.quarantineWindow} is below grpo.quarantineAfter ${c.grpo.quarantineAfter}: no worker could ever be quarantined; make the window at least quarantineAfter (or 0, the whole run)`);
  }
  if (c.grpo.identityAnchor > 0) {
    // The identity member's action is the corrupted image plus the group's first noise at the configured sigma
    // (lib/grpo/identity.ts): a Gaussian policy whose sigma is fixed, and one summed reward to compare.
    if (c.model.family === 'flow') issue(['grpo', 'identityAnchor'], 'the identity member is implemented for the Gaussian policy only; set grpo.identityAnchor=0 with model.family flow');
    if (c.model.learnLogStd) issue(['grpo', 'identityAnchor'], 'the identity member needs a fixed sigma (its action is the image plus sigma times the group\'s first noise); set model.learnLogStd=false or grpo.identityAnchor=0');
    if (c.grpo.multiRewardMode === 'normalize-then-sum') issue(['grpo', 'identityAnchor'], 'the identity member compares one summed reward, which grpo.multiRewardMode normalize-then-sum does not have; set grpo.multiRewardMode=sum or grpo.identityAnchor=0');
  }
  if (c.grpo.advantageMode === 'dense' && c.grpo.multiRewardMode === 'normalize-then-sum') {
    issue(['grpo', 'multiRewardMode'], 'normalize-then-sum cannot be combined with grpo.advantageMode dense (dense advantages split the summed reward; set grpo.advantageMode=scalar or grpo.multiRewardMode=sum)');
    return;
  }
  const constants = rewardConstants(c.reward);
  const attempt = (path: (string | number)[], what: string, f: () => unknown): boolean => {
    try {
      f();
      return true;
    } catch (e) {
      issue(path, `${what}: ${(e as Error).message}`);
      return false;
    }
  };
  let reward: RewardFunction | undefined;
  if (!attempt(['reward', 'expression'], 'does not compile', () => (reward = compileRewardExpression(c.reward.expression, constants)))) return;
  const constant = constantReward(reward!);
  if (constant !== undefined) {
    const weights = reward!.constantsUsed.filter((n) => n.startsWith('weights.')).map((n) => `reward.${n}=${c.reward.weights[n.slice('weights.'.length)]}`);
    const why = `is the constant ${constant} at every sampled point of ${reward!.variables.join(' and ') || 'its components'} in [-1, 1] (the range's grid, the expression's numbers and their midpoints): every group's rewards would be equal (zero variance), so nothing trains`;
    issue(['reward', weights.length ? 'weights' : 'expression'], weights.length ? `with ${weights.join(', ')}, reward.expression ${why}` : why);
    return;
  }
  if (c.grpo.advantageMode === 'dense') attempt(['reward', 'expression'], 'cannot serve grpo.advantageMode dense', () => decomposeForDense(c.reward.expression, constants));
  if (c.grpo.multiRewardMode === 'normalize-then-sum') attempt(['reward', 'expression'], 'cannot serve grpo.multiRewardMode normalize-then-sum', () => rewardTerms(c.reward.expression, constants));
}

/**
 * Defaults that depend on model.family, as dotted-key settings: laid under the configuration before validation
 * (lib/config/load.ts parseConfig), so they apply only where the file and the overrides leave the field unset, and
 * the validated configuration (and its hash) holds the value explicitly. The schema's own default is the
 * Gaussian family's.
 *   flow: grpo.advantageMode=scalar. Dense Flow-GRPO collapsed into a colour cast (round 32, 3 of 5 seeds at 240
 *         CPU s); round 33 traced it (docs/flow.md, "Round 33: flow33").
 */
export const FAMILY_DEFAULTS: Readonly<Record<'gaussian' | 'flow', readonly string[]>> = {
  gaussian: [],
  flow: ['grpo.advantageMode=scalar'],
};

/** A validated run configuration (every default filled in). */
export type RunConfig = z.output<typeof configSchema>;
/** What a config file may contain (every field optional). */
export type RunConfigInput = z.input<typeof configSchema>;
