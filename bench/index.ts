// `npm run bench`: runs every bench/*.bench.ts in turn (or those named on the command line) and prints
// their figures. Each bench module exports `run(): Promise<void>` and prints its own table.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here).filter((f) => f.endsWith('.bench.ts')).sort()
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)));
for (const f of files) {
  console.log(`\n## ${f}`);
  const mod = (await import(join(here, f))) as { run: () => Promise<void> };
  await mod.run();
}
