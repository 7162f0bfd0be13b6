// docs/architecture.md's "Map" is the import rule: its "may import" column, parsed here (test/helpers/import-map.ts),
// is checked against every value import of lib/, the roles and cli/, so the doc and the code cannot drift apart
// (review35 F17 found the column stale in ten folders, with no test). The roles' isolation is checked beside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkImportMap, folderOf, mapRows, projectImports, resolveEntry, type MapRow, type ProjectImport } from '../helpers/import-map.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOC = 'docs/architecture.md';
const ROLES = ['orchestrator/', 'rollout-worker/', 'reward-worker/', 'learner/'];
const CHECKED = ['lib', ...ROLES.map((r) => r.slice(0, -1)), 'cli'];

const scan = projectImports(ROOT, CHECKED);
/** Parsed in each test, so that a table the parser cannot read fails as a named test. */
const docRows = (): MapRow[] => mapRows(readFileSync(join(ROOT, DOC), 'utf8'));

test("every value import between the project's folders is one that the Map of docs/architecture.md allows", () => {
  assert.ok(scan.imports.filter((i) => !i.typeOnly).length > 300, 'the scan found the imports'); // not an empty pass
  const { breaches, tableErrors } = checkImportMap(ROOT, DOC, docRows(), scan);
  assert.deepEqual(tableErrors, [], `fix the Map's rows in ${DOC}`);
  assert.deepEqual(breaches, [], `import only what the row allows, or add the entry to the row in ${DOC} (with its reason)`);
});

test('every entry of the Map is used by a value import (the column says what the code does)', () => {
  assert.deepEqual(checkImportMap(ROOT, DOC, docRows(), scan).unused, []);
});

/** Imports that break the roles' isolation, type-only ones included: a role of another role, lib/ of a role or cli/. */
function isolationBreaches(all: readonly ProjectImport[], roles: readonly string[] = ROLES): string[] {
  return all.flatMap((imp) => {
    if (imp.target === null) return [];
    const from = folderOf(imp.file);
    const to = folderOf(imp.target);
    if (roles.includes(from) && roles.includes(to) && from !== to) return [`${imp.file}:${imp.line} imports ${imp.target}: roles never import each other`];
    if (from.startsWith('lib/') && (roles.includes(to) || to === 'cli/')) return [`${imp.file}:${imp.line} imports ${imp.target}: lib/ never imports a role or cli/`];
    return [];
  });
}

test('roles never import each other and lib/ never imports a role or cli/, in the code (type imports included) and in the Map', () => {
  assert.deepEqual(isolationBreaches(scan.imports), []);
  const granted = docRows().flatMap((row) =>
    row.entries.flatMap((entry) => {
      const to = resolveEntry(ROOT, entry)?.path;
      if (to === undefined) return [];
      const toRole = ROLES.find((r) => to.startsWith(r));
      return row.folders
        .filter((f) => (f.startsWith('lib/') && (toRole !== undefined || to.startsWith('cli/'))) || (ROLES.includes(f) && toRole !== undefined && toRole !== f))
        .map((f) => `${DOC}:${row.line}: ${f} may import \`${entry}\`, against the roles' isolation`);
    }),
  );
  assert.deepEqual(granted, []);
});

test('on a fixture: a value import outside the Map is named with its file, import and row; type-only imports pass', () => {
  const root = mkdtempSync(join(tmpdir(), 'import-map-'));
  const write = (path: string, text: string): void => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  try {
    const map = [
      '# A',
      '',
      '## Map',
      '',
      '| folder | owns | may import |',
      '| --- | --- | --- |',
      '| `lib/low/` | leaves | nothing |',
      '| `lib/mid/` | the middle | `low/leaf` (a reason with `backticks` is no entry) |',
      '| `lib/top/` | the top | `low` |',
      '| `role-a/`, `role-b/` | roles | `lib/*` (never each other) |',
    ].join('\n');
    write('docs/a.md', map);
    write('lib/low/leaf.ts', 'export const x = 1;\n');
    write('lib/low/other.ts', "import { x } from './leaf.ts';\nexport const y = x;\n");
    write(
      'lib/mid/m.ts',
      [
        "import { x } from '../low/leaf.ts';",
        "import type { y } from '../low/other.ts';",
        "import { type y as z } from '../low/other.ts';",
        "export type { y as w } from '../low/other.ts';",
        "export const v: typeof import('../top/t.ts') | number = x;",
        "export const later = () => import('../low/other.ts');",
        "export * from '../top/t.ts';",
      ].join('\n'),
    );
    write('lib/low/load.ts', 'export const load = (path: string): Promise<unknown> => import(path);\n');
    write('lib/top/t.ts', "import { x } from '../low/leaf.ts';\nexport const t = x;\n");
    write('role-a/index.ts', "import { t } from '../lib/top/t.ts';\nimport type { t as u } from '../role-b/index.ts';\nexport const a = t;\n");
    write('role-b/index.ts', "import { x } from '../lib/low/leaf.ts';\nexport const t = x;\n");

    const found = projectImports(root, ['lib', 'role-a', 'role-b']);
    const mid = found.imports.filter((i) => i.file === 'lib/mid/m.ts').map((i) => `${i.line} ${i.target} ${i.typeOnly ? 'type' : 'value'}`);
    assert.deepEqual(mid, [
      '1 lib/low/leaf.ts value',
      '2 lib/low/other.ts type',
      '3 lib/low/other.ts type',
      '4 lib/low/other.ts type',
      '5 lib/top/t.ts type',
      '6 lib/low/other.ts value',
      '7 lib/top/t.ts value',
    ]);

    const check = checkImportMap(root, 'docs/a.md', mapRows(map), found);
    assert.deepEqual(check.tableErrors, []);
    assert.deepEqual(check.breaches, [
      'lib/low/load.ts:1: a dynamic import of a computed path, which cannot be checked against the Map: import a literal path',
      `lib/mid/m.ts:6 imports '../low/other.ts' (lib/low/other.ts): lib/mid/ may import low/leaf (docs/a.md:8, "may import")`,
      `lib/mid/m.ts:7 imports '../top/t.ts' (lib/top/t.ts): lib/mid/ may import low/leaf (docs/a.md:8, "may import")`,
    ]);
    assert.deepEqual(check.unused, []);

    // an entry nothing uses, one that names nothing, a folder without a row
    write('lib/new/n.ts', 'export const n = 1;\n');
    const stale = mapRows(map.replace('`low` |', '`low`, `gone`, `role-a/` |'));
    const again = checkImportMap(root, 'docs/a.md', stale, projectImports(root, ['lib', 'role-a', 'role-b']));
    assert.deepEqual(again.tableErrors, ['docs/a.md:9: `gone` names no file or folder (lib/gone or gone)', 'lib/new/ has source files and no row in docs/a.md\'s Map']);
    assert.deepEqual(again.unused, ['docs/a.md:9: lib/top/ may import `role-a/`, which no value import uses: drop it']);

    // a type import between roles is not a value import, yet it breaks the roles' isolation
    assert.deepEqual(isolationBreaches(found.imports, ['role-a/', 'role-b/']), ['role-a/index.ts:2 imports role-b/index.ts: roles never import each other']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('mapRows refuses a "may import" cell with words outside backticks and parentheses, and a missing header', () => {
  const table = (cell: string): string => ['## Map', '', '| folder | owns | may import |', '| --- | --- | --- |', `| \`lib/a/\` | a | ${cell} |`].join('\n');
  assert.deepEqual(mapRows(table('`b`, `c/d` (why)')), [{ line: 5, folders: ['lib/a/'], entries: ['b', 'c/d'] }]);
  assert.deepEqual(mapRows(table('nothing'))[0].entries, []);
  assert.throws(() => mapRows(table('`b` except c.ts')), /line 5: "may import" holds backticked entries/);
  assert.throws(() => mapRows(table('everything')), /line 5/);
  assert.throws(() => mapRows('## Map\n\n| folder | may import |\n| --- | --- |\n'), /header/);
});
