// The import rule of docs/architecture.md's "Map" table, and the project's imports to check against it
// (test/docs/import-map.test.ts). The table is the rule's one copy: the test parses it, so the doc cannot drift from
// the code. Its "may import" column lists, per folder, backticked entries: a folder or file under lib/ (`graph`,
// `data/random`), `lib/*` (every lib/ folder), or a path from the repository root (`orchestrator/`,
// `scripts/k8s-ablation.ts`); text in parentheses is the reason for an entry, never an entry; "nothing" or "—"
// when there is none. A file may always import its own folder.
import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type TS from 'typescript';

// Through require: an ESM import of typescript's 9 MB CommonJS file takes seconds longer under tsx.
const ts = createRequire(import.meta.url)('typescript') as typeof TS;

/** One import of a project file: paths relative to the root, with '/'. */
export interface ProjectImport {
  file: string;
  line: number;
  /** As written; '' for a dynamic import of a computed path (target null). */
  specifier: string;
  target: string | null;
  /** `import type`, `import { type A }`, `export type ... from`, `typeof import(...)`: gone at run time. */
  typeOnly: boolean;
}

export interface MapRow {
  /** The row's line in the Markdown file (1-based). */
  line: number;
  /** Its folders (first column), with a trailing '/': 'lib/grpo/', 'orchestrator/'. */
  folders: string[];
  /** Its "may import" entries, as written. */
  entries: string[];
}

/** What an entry allows: a file, a folder (trailing '/') or, for `lib/*`, everything under lib/. */
export interface Allowance {
  entry: string;
  path: string;
}

const SOURCE = /\.(ts|mts|cts|js|mjs|cjs)$/;

const posix = (p: string): string => p.split(sep).join('/');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' ? [] : sources(p);
    return SOURCE.test(name) ? [p] : [];
  });
}

/** The source files under `dirs` (relative to `root`), and every import of a project file (a relative specifier) they hold. */
export interface ImportScan {
  files: string[];
  imports: ProjectImport[];
}

export function projectImports(root: string, dirs: readonly string[]): ImportScan {
  const files = dirs.flatMap((d) => sources(join(root, d)));
  const out: ProjectImport[] = [];
  for (const file of files) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const add = (node: TS.Node, specifier: string, typeOnly: boolean): void => {
      if (specifier !== '' && !specifier.startsWith('.')) return; // a package or node: builtin
      out.push({
        file: posix(relative(root, file)),
        line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1,
        specifier,
        target: specifier === '' ? null : posix(relative(root, resolve(dirname(file), specifier))),
        typeOnly,
      });
    };
    const visit = (node: TS.Node): void => {
      if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
        const c = node.importClause;
        const named = c?.namedBindings !== undefined && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined;
        const typeOnly = c !== undefined && (c.isTypeOnly || (c.name === undefined && named !== undefined && named.length > 0 && named.every((e) => e.isTypeOnly)));
        add(node, node.moduleSpecifier.text, typeOnly);
      } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
        const named = node.exportClause !== undefined && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
        add(node, node.moduleSpecifier.text, node.isTypeOnly || (named !== undefined && named.length > 0 && named.every((e) => e.isTypeOnly)));
      } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        const arg = node.arguments[0];
        add(node, arg !== undefined && ts.isStringLiteralLike(arg) ? arg.text : '', false);
      } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
        add(node, node.argument.literal.text, true);
      } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
        add(node, node.moduleReference.expression.text, node.isTypeOnly);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return { files: files.map((f) => posix(relative(root, f))), imports: out };
}

/** A table row's cells (a `|` inside backticks does not split). */
function cells(row: string): string[] {
  const out: string[] = [];
  let cell = '';
  let code = false;
  for (const ch of row.trim().replace(/^\|/, '').replace(/\|$/, '')) {
    if (ch === '`') code = !code;
    if (ch === '|' && !code) {
      out.push(cell.trim());
      cell = '';
    } else cell += ch;
  }
  out.push(cell.trim());
  return out;
}

const ticked = (text: string): string[] => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]);

/**
 * The rows of the table under the heading `## Map`, whose header must be `folder | owns | may import`. Throws, naming
 * the line, on a cell it cannot read: a first column without a backticked folder, a "may import" cell with words
 * outside backticks and parentheses (they would read as a rule and be none).
 */
export function mapRows(markdown: string): MapRow[] {
  const lines = markdown.split('\n');
  const heading = lines.findIndex((l) => l.trim() === '## Map');
  if (heading < 0) throw new Error('no "## Map" heading');
  let i = heading + 1;
  while (i < lines.length && !lines[i].trim().startsWith('|')) i++;
  const header = cells(lines[i] ?? '');
  if (header.join(' | ') !== 'folder | owns | may import') throw new Error(`line ${i + 1}: the Map's header is not "folder | owns | may import": ${lines[i]}`);
  const rows: MapRow[] = [];
  for (i += 2; i < lines.length && lines[i].trim().startsWith('|'); i++) {
    const [first, , allows, ...rest] = cells(lines[i]);
    if (allows === undefined || rest.length > 0) throw new Error(`line ${i + 1}: a Map row needs 3 cells: ${lines[i]}`);
    const folders = ticked(first);
    if (folders.length === 0 || folders.some((f) => !f.endsWith('/'))) throw new Error(`line ${i + 1}: the first cell names folders as \`path/\`: ${first}`);
    if (/\([^)]*\(/.test(allows)) throw new Error(`line ${i + 1}: nested parentheses in "may import": ${allows}`);
    const rule = allows.replace(/\([^)]*\)/g, ''); // reasons out
    const entries = ticked(rule);
    const words = rule.replace(/`[^`]*`/g, '').replace(/[\s,;]/g, '');
    if (!(words === '' && entries.length > 0) && !(entries.length === 0 && /^(nothing|—)$/.test(words))) {
      throw new Error(`line ${i + 1}: "may import" holds backticked entries (reasons in parentheses) or "nothing": ${allows}`);
    }
    rows.push({ line: i + 1, folders, entries });
  }
  return rows;
}

/** What an entry names under `root`: lib/<entry> first, else <entry> from the root; a file may leave out `.ts`. */
export function resolveEntry(root: string, entry: string): Allowance | undefined {
  if (entry === 'lib/*') return { entry, path: 'lib/' };
  const bare = entry.replace(/\/$/, '');
  for (const base of ['lib/', '']) {
    for (const p of [base + bare, `${base}${bare}.ts`]) {
      const abs = join(root, p);
      if (!existsSync(abs)) continue;
      if (statSync(abs).isDirectory()) return { entry, path: `${p}/` };
      if (!entry.endsWith('/')) return { entry, path: p };
    }
  }
  return undefined;
}

/** The folder a file's rule comes from: lib/<domain>/ under lib/, else its top-level folder. */
export function folderOf(file: string): string {
  const parts = file.split('/');
  return parts[0] === 'lib' && parts.length > 2 ? `lib/${parts[1]}/` : `${parts[0]}/`;
}

export const allows = (a: Allowance, target: string): boolean => (a.path.endsWith('/') ? target.startsWith(a.path) : target === a.path);

export interface MapCheck {
  /** One line per value import the table does not allow: the file and line, the import, the rule. */
  breaches: string[];
  /** Entries that name nothing, rows for folders that are not there, folders with a source file and no row. */
  tableErrors: string[];
  /** Entries (other than `lib/*`) that no value import uses. */
  unused: string[];
}

/** Check every value import of `scan` against the Map rows of `doc` (a path relative to `root`, for messages). */
export function checkImportMap(root: string, doc: string, rows: readonly MapRow[], scan: ImportScan): MapCheck {
  const tableErrors: string[] = [];
  const ruleOf = new Map<string, { row: MapRow; allowances: Allowance[] }>();
  for (const row of rows) {
    const allowances: Allowance[] = [];
    for (const entry of row.entries) {
      const a = resolveEntry(root, entry);
      if (a === undefined) tableErrors.push(`${doc}:${row.line}: \`${entry}\` names no file or folder (lib/${entry} or ${entry})`);
      else allowances.push(a);
    }
    for (const folder of row.folders) {
      if (!existsSync(join(root, folder))) tableErrors.push(`${doc}:${row.line}: ${folder} is not there`);
      ruleOf.set(folder, { row, allowances });
    }
  }
  const used = new Set<Allowance>();
  const breaches: string[] = [];
  for (const f of new Set(scan.files.map(folderOf))) if (!ruleOf.has(f)) tableErrors.push(`${f} has source files and no row in ${doc}'s Map`);
  for (const imp of scan.imports) {
    const from = folderOf(imp.file);
    const rule = ruleOf.get(from);
    if (imp.typeOnly || rule === undefined) continue;
    const where = `${imp.file}:${imp.line}`;
    const may = rule.row.entries.length > 0 ? rule.row.entries.join(', ') : 'nothing';
    if (imp.target === null) {
      breaches.push(`${where}: a dynamic import of a computed path, which cannot be checked against the Map: import a literal path`);
      continue;
    }
    if (folderOf(imp.target) === from) continue;
    const matching = rule.allowances.filter((a) => allows(a, imp.target!));
    for (const a of matching) used.add(a); // every entry that covers it, so a folder beside one of its files is no "unused"
    if (matching.length === 0) breaches.push(`${where} imports '${imp.specifier}' (${imp.target}): ${from} may import ${may} (${doc}:${rule.row.line}, "may import")`);
  }
  const unused: string[] = [];
  for (const { row, allowances } of new Set(ruleOf.values())) {
    for (const a of allowances) {
      if (a.entry !== 'lib/*' && !used.has(a)) unused.push(`${doc}:${row.line}: ${row.folders.join(', ')} may import \`${a.entry}\`, which no value import uses: drop it`);
    }
  }
  return { breaches, tableErrors, unused };
}
