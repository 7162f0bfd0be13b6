// Original file: proto/recovery.proto


/**
 * The actions of a GRPO batch (indices into train_batch.sample_ids, ascending, each once) with a row that neither the
 * same-version check nor the stale-row check examined: a stale row of a group the stale check's sample left out
 * (grpo.staleCheckFraction < 1) or of a version the learner does not hold (before its restart), any stale row when the
 * stale check is off, every action when the batch carries no behaviour versions. A message so that "none unchecked"
 * (present, empty) differs from an older learner's "not reported" (absent).
 */
export interface CheckCoverage {
  'unchecked_actions'?: (number)[];
}

/**
 * The actions of a GRPO batch (indices into train_batch.sample_ids, ascending, each once) with a row that neither the
 * same-version check nor the stale-row check examined: a stale row of a group the stale check's sample left out
 * (grpo.staleCheckFraction < 1) or of a version the learner does not hold (before its restart), any stale row when the
 * stale check is off, every action when the batch carries no behaviour versions. A message so that "none unchecked"
 * (present, empty) differs from an older learner's "not reported" (absent).
 */
export interface CheckCoverage__Output {
  'unchecked_actions': (number)[];
}
