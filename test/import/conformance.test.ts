// Every ONNX conformance case the importer supports matches PyTorch's outputs within 1e-4 (relative to the
// output's largest magnitude); each skipped case says why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conformanceCases, runCase, SKIPPED } from './conformance.ts';

const cases = conformanceCases();
test('the conformance cases are present', () => assert.ok(cases.length >= 80, `found ${cases.length} cases under ../shared/onnx-conformance`));

for (const { name, dir } of cases) {
  const skip = SKIPPED[name];
  test(`conformance ${name}`, { skip }, async (t) => {
    const r = await runCase(name, dir);
    if (r.unrepresentable) return t.skip(r.unrepresentable);
    assert.ok(r.relError <= 1e-4, `${name}: relative error ${r.relError}`);
  });
}
