// A resumed run whose std is fixed must sample with the config's model.logStd: the orchestrator bounds each result's
// logp by it (lib/grpo/logp-bounds.ts), the rollout workers sample with the checkpoint's log_std (review25d M1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { SetupError } from '../../lib/config/setup-error.ts';
import { refuseFixedLogStdChange } from '../../lib/models/fixed-log-std.ts';
import { logpRange, policyLogStdRange } from '../../lib/grpo/logp-bounds.ts';

const params = (logStd: number) => new Map([['log_std', { shape: [], data: Float32Array.of(logStd) }]]);

test('a checkpoint whose fixed log_std differs from model.logStd is refused at resume, naming both values', () => {
  const config = parseConfig({ model: { logStd: Math.log(0.01) } });
  assert.doesNotThrow(() => refuseFixedLogStdChange(config, params(Math.log(0.01)), 'checkpoint v3'));
  const err = (() => {
    try {
      refuseFixedLogStdChange(config, params(Math.log(0.005)), 'checkpoint v3');
    } catch (e) {
      return e;
    }
  })();
  assert.ok(err instanceof SetupError, 'a SetupError (exit 78)');
  assert.match((err as Error).message, /checkpoint v3 holds log_std -5\.29\d*, but model\.logStd is -4\.60\d* with model\.learnLogStd false.*--set model\.logStd=-5\.29/);
  // a learned std may be anything the checkpoint holds; a family without log_std has nothing to check
  assert.doesNotThrow(() => refuseFixedLogStdChange(parseConfig({ model: { logStd: Math.log(0.01), learnLogStd: true } }), params(-7), 'checkpoint v3'));
  assert.doesNotThrow(() => refuseFixedLogStdChange(config, new Map(), 'checkpoint v3'));
});

test('why: an honest logp at the checkpoint\'s smaller std lies outside the bounds of the config\'s', () => {
  const config = parseConfig({ model: { logStd: Math.log(0.01) } });
  // the highest log-density a sigma of 0.005 gives (z = 0) is above the highest sigma 0.01 can give
  const honest = -Math.fround(Math.log(0.005)) - 0.5 * Math.log(2 * Math.PI) - 0.01;
  const range = logpRange(policyLogStdRange(config.model), 1);
  assert.ok(honest > range.max, `${honest} > ${range.max}`);
});
