// Bounded staleness, the one rule the orchestrator runs (orchestrator/coordinator.ts `advance`).
//
// The learner applies batches in seq order, one policy version each. A GRPO batch is dispatched (its
// rollout tasks sent) while the learner is at version v, having acknowledged batch ackedSeq; its rollouts
// use a policy of version >= v (rollout tasks carry policy_version_min = v), and it is trained after the
// batches before it, at version v + (seq - ackedSeq - 1). So its staleness (training version - behaviour
// version) is at most
//
//     seq - (ackedSeq + 1)
//
// and batch seq is dispatched only when that is <= maxStaleness. With maxStaleness 0 this is synchronous
// on-policy: the next batch is dispatched only once the learner acknowledged the previous one and the
// workers roll out with the weights it produced. The PPO ratio against the behaviour log-prob corrects for
// the staleness that remains; the learner records each action's in the `staleness` histogram.

/** The most versions batch `seq` can lag if dispatched now, after the learner acknowledged `ackedSeq`. */
export function dispatchStaleness(seq: number, ackedSeq: number): number {
  if (!Number.isInteger(seq) || !Number.isInteger(ackedSeq) || seq <= ackedSeq) {
    throw new Error(`staleness: batch seq ${seq} must be an integer after the acknowledged ${ackedSeq}`);
  }
  return seq - (ackedSeq + 1);
}

/** May batch `seq` be dispatched now? */
export function mayDispatch(seq: number, ackedSeq: number, maxStaleness: number): boolean {
  return dispatchStaleness(seq, ackedSeq) <= maxStaleness;
}
