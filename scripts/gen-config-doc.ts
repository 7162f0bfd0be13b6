// Rewrites docs/config.md from the config schema: `node --import tsx scripts/gen-config-doc.ts`.
// test/config/doc.test.ts fails while the committed file differs from what this writes.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigDoc } from '../lib/config/reference.ts';

const target = fileURLToPath(new URL('../docs/config.md', import.meta.url));
writeFileSync(target, renderConfigDoc());
console.log(`wrote ${target}`);
