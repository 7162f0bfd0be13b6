// A GRPO training batch from scored groups: the one assembly the coordinator (which then encodes it as a
// TrainBatch) and the single-process loop (which trains on it directly) share. Kept groups are laid out in
// the order given, each group's G actions in group-index order.
import { ssimMapSize } from '../models/ssim.ts';
import type { Components } from './reward-expression.ts';
import { flowRowsOf, type FlowRows, type FlowStepRecord } from '../flow/family.ts';
import type { GrpoInputs } from '../models/trainer.ts';

/** A group whose actions were rolled out and scored, and kept by `advantagesOf`. */
export interface TrainableGroup {
  sampleId: string;
  /** The corrupted image [3,H,W] every action of the group restores. */
  image: Float32Array;
  /** Per action: the action [3,H,W], its behaviour log-prob, the policy version that produced it. */
  actions: readonly Float32Array[];
  logps: readonly number[];
  versions: readonly number[];
  /** Dense: per action, the per-element behaviour log-density [3,H,W]. */
  logpMaps?: readonly Float32Array[];
  rewards: readonly number[];
  components: readonly Components[];
  advantages: Float32Array;
  /** Dense: per action, the centred SSIM advantage map [3,h,w]. */
  advantageMaps?: readonly Float32Array[];
  /** grpo.identityAnchor > 0: the identity member's advantage (dense: its scalar part and its map [3,h,w]). */
  identity?: { advantage: number; map?: Float32Array };
  /** Flow family: per action, its trained steps (logps/logpMaps then hold nothing the batch uses). */
  flowSteps?: readonly (readonly FlowStepRecord[])[];
}

/**
 * The trainer's inputs (lib/models/trainer.ts GrpoInputs: images, actions, logpOld, advantages, the dense and
 * identity maps) without the reference mean, which the learner computes, and where each row came from.
 */
export interface GrpoBatch extends Omit<GrpoInputs, 'refMean'> {
  behaviourVersions: number[];
  sampleIds: string[];
  groupIndices: number[];
  /** Flow family: the training rows, one per (action, trained step); logpOld is then theirs. */
  flow?: FlowRows;
}

export function assembleGrpoBatch(groups: readonly TrainableGroup[], size: number, dense: boolean): GrpoBatch {
  const G = groups[0]?.actions.length ?? 0;
  const n = groups.length * G;
  const pix = 3 * size * size;
  const mapLen = 3 * ssimMapSize(size) ** 2;
  const images = new Float32Array(n * pix);
  const actions = new Float32Array(n * pix);
  const logpOld = new Float32Array(dense ? n * pix : n);
  const advantages = new Float32Array(n);
  const advantageMap = dense ? new Float32Array(n * mapLen) : undefined;
  const withIdentity = groups.length > 0 && groups[0]!.identity !== undefined;
  const identityAdvantages = withIdentity ? new Float32Array(n) : undefined;
  const identityAdvantageMap = withIdentity && dense ? new Float32Array(n * mapLen) : undefined;
  const behaviourVersions: number[] = [];
  const sampleIds: string[] = [];
  const groupIndices: number[] = [];
  let i = 0;
  for (const g of groups) {
    if (g.actions.length !== G) throw new Error(`assembleGrpoBatch: group ${g.sampleId} has ${g.actions.length} actions, the first group ${G}`);
    if (dense && !g.advantageMaps) throw new Error(`assembleGrpoBatch: dense batch, but group ${g.sampleId} has no advantage maps`);
    if (!!g.flowSteps !== !!groups[0]!.flowSteps) throw new Error(`assembleGrpoBatch: group ${g.sampleId} mixes policy families with the first group`);
    if (dense && !g.flowSteps && !g.logpMaps) throw new Error(`assembleGrpoBatch: dense batch, but group ${g.sampleId} has no log-density or advantage maps`);
    if ((g.identity !== undefined) !== withIdentity) throw new Error(`assembleGrpoBatch: group ${g.sampleId} ${g.identity ? 'has' : 'has no'} identity member, the first group ${withIdentity ? 'has' : 'has none'}`);
    if (g.identity) {
      if (dense && !g.identity.map) throw new Error(`assembleGrpoBatch: dense batch, but group ${g.sampleId}'s identity member has no advantage map`);
      identityAdvantages![i] = g.identity.advantage;
      if (dense) identityAdvantageMap!.set(g.identity.map!, i * mapLen);
    }
    for (let a = 0; a < G; a++, i++) {
      images.set(g.image, i * pix);
      actions.set(g.actions[a]!, i * pix);
      if (dense) advantageMap!.set(g.advantageMaps![a]!, i * mapLen);
      if (!g.flowSteps) {
        if (dense) logpOld.set(g.logpMaps![a]!, i * pix);
        else logpOld[i] = g.logps[a]!;
      }
      advantages[i] = g.advantages[a]!;
      behaviourVersions.push(g.versions[a]!);
      sampleIds.push(g.sampleId);
      groupIndices.push(a);
    }
  }
  const flow = groups[0]?.flowSteps ? flowRowsOf(groups.flatMap((g) => g.flowSteps!), pix, dense) : undefined;
  if (flow) return { n, images, actions, logpOld: flow.logpOld, advantages, ...(advantageMap ? { advantageMap } : {}), behaviourVersions, sampleIds, groupIndices, flow };
  const identity = identityAdvantages ? { identityAdvantages, ...(identityAdvantageMap ? { identityAdvantageMap } : {}) } : {};
  return { n, images, actions, logpOld, advantages, ...(advantageMap ? { advantageMap } : {}), ...identity, behaviourVersions, sampleIds, groupIndices };
}
