import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderConfigDoc } from '../../lib/config/reference.ts';

test('docs/config.md is up to date with lib/config/schema.ts', () => {
  const committed = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');
  assert.ok(committed === renderConfigDoc(),
    'docs/config.md is stale: run `node --import tsx scripts/gen-config-doc.ts` and commit the result');
});
