// The algorithm has one implementation: outside the tests, only lib/grpo/algorithm.ts computes a group's
// advantages or starts the GRPO phase, so the pipeline and the single-process loop cannot diverge.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SKIP = new Set(['node_modules', 'test', '.git', 'proto', 'runs']);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return SKIP.has(name) ? [] : sources(p);
    return name.endsWith('.ts') ? [p] : [];
  });
}

const ONLY_IN_ALGORITHM: Array<[string, RegExp]> = [
  ['a variant of the advantages', /\b(groupAdvantages|multiRewardGroupAdvantages|denseAdvantages)\s*\(/],
  ['an optimizer reset (the GRPO phase start)', /importState\(\s*\{\s*step:\s*0/],
  ['the GRPO step hyper-parameters', /\b(clipLow|clipHigh)\s*:\s*\w+\.grpo\./],
];

test('advantage variants, the GRPO phase start and the step hyper-parameters live only in lib/grpo/algorithm.ts', () => {
  const offenders: string[] = [];
  for (const file of sources(ROOT)) {
    const rel = relative(ROOT, file);
    if (rel === join('lib', 'grpo', 'algorithm.ts') || rel === join('lib', 'grpo', 'advantages.ts')) continue;
    const text = readFileSync(file, 'utf8');
    for (const [what, pattern] of ONLY_IN_ALGORITHM) if (pattern.test(text)) offenders.push(`${rel}: ${what}`);
  }
  assert.deepEqual(offenders, [], 'call lib/grpo/algorithm.ts instead');
});
