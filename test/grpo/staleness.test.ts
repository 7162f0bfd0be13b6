import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canAdmit, staleness, withinStaleness, type AdmissionState } from '../../lib/grpo/staleness.ts';

test('staleness = learner version - behaviour version', () => {
  assert.equal(staleness(5, 5), 0);
  assert.equal(staleness(7, 4), 3);
  assert.throws(() => staleness(3, 4), /behaviour version 4 is newer than the learner's 3/);
  assert.throws(() => staleness(1.5, 1), /learnerVersion must be an integer/);
  assert.equal(withinStaleness(7, 5, 2), true);
  assert.equal(withinStaleness(7, 4, 2), false);
});

const base = (over: Partial<AdmissionState>): AdmissionState => ({
  learnerVersion: 0, behaviourVersion: 0, oldestBehaviourVersionInFlight: null, samplesInFlight: 0, samplesPerBatch: 4, maxStaleness: 0, ...over,
});

test('maxStaleness 0 is synchronous: one batch per version', () => {
  for (let q = 0; q < 4; q++) {
    assert.deepEqual(canAdmit(base({ samplesInFlight: q, oldestBehaviourVersionInFlight: q ? 0 : null })), { admit: true, trainingVersion: 0, staleness: 0 });
  }
  const full = canAdmit(base({ samplesInFlight: 4, oldestBehaviourVersionInFlight: 0 }));
  assert.equal(full.admit, false);
  assert.ok(!full.admit && /trained at learner version 1 .* staleness 1 > maxStaleness 0/.test(full.reason), JSON.stringify(full));
  // Learner consumed the batch (version 1) but the worker has not swapped weights yet: wait.
  const lagging = canAdmit(base({ learnerVersion: 1, behaviourVersion: 0 }));
  assert.ok(!lagging.admit && /the worker still holds version 0/.test(lagging.reason));
  assert.equal(canAdmit(base({ learnerVersion: 1, behaviourVersion: 1 })).admit, true);
});

test('maxStaleness 2 allows three batches ahead', () => {
  const s = (q: number) => canAdmit(base({ maxStaleness: 2, samplesInFlight: q, oldestBehaviourVersionInFlight: q ? 0 : null }));
  assert.equal(s(11).admit, true); // lands in batch trained at version 2
  assert.equal(s(12).admit, false); // would be trained at version 3
  // An old straggler in flight blocks admission that would let it be trained too late.
  const straggler = canAdmit(base({ maxStaleness: 2, learnerVersion: 5, behaviourVersion: 5, samplesInFlight: 4, oldestBehaviourVersionInFlight: 3 }));
  assert.ok(!straggler.admit && /oldest sample in flight is from version 3/.test(straggler.reason));
});

test('property: simulated pipeline never trains data staler than maxStaleness', () => {
  // Workers dispatch whenever admitted (each picks up the current weights, possibly lagging one swap),
  // groups complete in random order, the learner trains any B completed samples.
  fc.assert(fc.property(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.array(fc.nat(), { minLength: 50, maxLength: 200 }), (maxStaleness, B, choices) => {
    let learner = 0; let workerVersion = 0;
    const inFlight: number[] = []; // behaviour versions, generating
    const done: number[] = []; // behaviour versions, waiting for a batch
    for (const c of choices) {
      const action = c % 4;
      if (action === 0) {
        const all = [...inFlight, ...done];
        const a = canAdmit({ learnerVersion: learner, behaviourVersion: workerVersion, oldestBehaviourVersionInFlight: all.length ? Math.min(...all) : null, samplesInFlight: all.length, samplesPerBatch: B, maxStaleness });
        if (a.admit) inFlight.push(workerVersion);
      } else if (action === 1 && inFlight.length) {
        done.push(...inFlight.splice(c % inFlight.length, 1)); // completes out of order
      } else if (action === 2 && done.length >= B) {
        const batch = done.splice((c >> 2) % (done.length - B + 1), B); // any B completed samples
        for (const b of batch) assert.ok(learner - b <= maxStaleness, `trained v${b} at learner ${learner}`);
        learner++;
      } else if (action === 3) {
        workerVersion = learner; // weight swap
      }
    }
  }), { numRuns: 300 });
});
