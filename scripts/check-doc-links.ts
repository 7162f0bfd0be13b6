// Relative links in the repository's Markdown files that lead nowhere: `node --import tsx scripts/check-doc-links.ts`
// prints each broken link (file:line, target, why) and exits 1 when there is one. A link is `[text](target)` outside
// code; http(s), mailto and other schemes are not followed. The target's file or folder must exist, and its
// `#anchor` must be an explicit `<a id="...">` of that file or the GitHub id of one of its headings (lowercased,
// punctuation dropped, spaces to hyphens, a repeated heading's id suffixed -1, -2, ...). Written for round 26's move
// of docs/performance.md's sections into docs/performance-history/; no Markdown dependency.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BrokenLink {
  file: string;
  line: number;
  target: string;
  why: string;
}

/** GitHub's id for a heading's text: inline code marks and link targets dropped, lowercased, punctuation removed. */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`/g, '')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

/** Lines outside code blocks, with their 1-based numbers, as they are (raw) and with inline code blanked out (text). */
function proseLines(markdown: string): Array<{ line: number; text: string; raw: string }> {
  const out: Array<{ line: number; text: string; raw: string }> = [];
  let fence: string | undefined;
  markdown.split('\n').forEach((text, i) => {
    const m = /^\s*(```+|~~~+)/.exec(text);
    if (m) {
      if (fence === undefined) fence = m[1][0];
      else if (m[1][0] === fence) fence = undefined;
      return;
    }
    if (fence !== undefined || /^( {4}|\t)/.test(text)) return;
    out.push({ line: i + 1, raw: text, text: text.replace(/`[^`]*`/g, (s) => ' '.repeat(s.length)) });
  });
  return out;
}

/** Every anchor a Markdown file offers: explicit ids and its headings' GitHub ids. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text, raw } of proseLines(markdown)) {
    for (const m of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1]);
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(raw);
    if (!h) continue;
    const base = githubSlug(h[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** The broken relative links of one Markdown file (`file` is its path; `read` returns another file's text). */
export function brokenLinksOf(file: string, markdown: string, read: (path: string) => string): BrokenLink[] {
  const broken: BrokenLink[] = [];
  for (const { line, text } of proseLines(markdown)) {
    for (const m of text.matchAll(/\]\(<?([^)\s>]+)>?(?:\s+"[^"]*")?\)/g)) {
      const target = m[1];
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const hash = target.indexOf('#');
      const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
      const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
      const path = pathPart === '' ? file : resolve(dirname(file), pathPart);
      if (!existsSync(path)) {
        broken.push({ file, line, target, why: 'no such file or folder' });
        continue;
      }
      if (anchor === undefined || anchor === '') continue;
      if (statSync(path).isDirectory() || !path.endsWith('.md')) {
        broken.push({ file, line, target, why: 'an anchor into something that is not a Markdown file' });
        continue;
      }
      if (!anchorsOf(path === file ? markdown : read(path)).has(anchor)) {
        broken.push({ file, line, target, why: `no heading or id "${anchor}" in ${pathPart || 'this file'}` });
      }
    }
  }
  return broken;
}

/** Markdown files under `root`, without node_modules, .git and other dot folders. */
export function markdownFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.md')) out.push(path);
    }
  };
  walk(root);
  return out.sort();
}

export function brokenLinks(root: string): BrokenLink[] {
  const cache = new Map<string, string>();
  const read = (path: string): string => {
    let text = cache.get(path);
    if (text === undefined) {
      text = readFileSync(path, 'utf8');
      cache.set(path, text);
    }
    return text;
  };
  return markdownFiles(root).flatMap((file) => brokenLinksOf(file, read(file), read));
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)));
  const broken = brokenLinks(root);
  for (const b of broken) console.log(`${relative(root, b.file)}:${b.line}: (${b.target}) ${b.why}`);
  console.log(broken.length === 0 ? 'no broken relative links' : `${broken.length} broken relative links`);
  process.exitCode = broken.length === 0 ? 0 : 1;
}
