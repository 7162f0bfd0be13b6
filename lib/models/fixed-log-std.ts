// A policy whose std is fixed (model.learnLogStd false) samples with the std the config names. A checkpoint holds the
// log_std of the run that wrote it; starting from one whose value differs would sample with the checkpoint's while the
// config says otherwise: the distributed run's orchestrator bounds each result's logp by model.logStd
// (lib/grpo/logp-bounds.ts), so every honest rollout would be refused (review25d M1), and `sweep --methods --from`
// would silently ignore `--set model.logStd` (round 29, learn29). Both refuse at start instead (exit 78).
import type { RunConfig } from '../config/index.ts';
import { SetupError } from '../config/setup-error.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';
import { LOG_STD } from './policy.ts';

/**
 * Throws a SetupError naming both values when `params` (read from `source`) hold a log_std other than the config's
 * fixed model.logStd; `remedy` says the ways on (the default: a resumed run's).
 */
export function refuseFixedLogStdChange(config: RunConfig, params: TensorMap, source: string, remedy?: (have: number) => string): void {
  const stored = params.get(LOG_STD);
  if (config.model.learnLogStd || !stored || stored.data.length !== 1) return;
  const want = Math.fround(config.model.logStd);
  const have = stored.data[0]!;
  if (have === want) return;
  throw new SetupError(
    `${source} holds log_std ${have}, but model.logStd is ${config.model.logStd} with model.learnLogStd false: the rollout ` +
      `workers would sample with ${have} while results are checked against ${want}. ` +
      (remedy ? remedy(have) : `Resume with --set model.logStd=${have} (or model.learnLogStd=true), or start a new run id`),
  );
}
