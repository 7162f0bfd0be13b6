// scripts/check-doc-links.ts: relative Markdown links and their anchors, on fixtures and on the repository's own docs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { anchorsOf, brokenLinks, githubSlug } from '../../scripts/check-doc-links.ts';

test('githubSlug gives the ids GitHub gives these headings', () => {
  assert.equal(githubSlug('5. Staleness (`lib/grpo/staleness.ts`)'), '5-staleness-libgrpostalenessts');
  assert.equal(githubSlug('Corruption + decode at 256x256'), 'corruption--decode-at-256x256');
  assert.equal(githubSlug("Round 7 (pipe7): the roles' full collections"), 'round-7-pipe7-the-roles-full-collections');
  assert.equal(githubSlug('See [the guide](guide.md) now'), 'see-the-guide-now');
});

test('anchorsOf: explicit ids, headings, a repeated heading suffixed, nothing from code blocks', () => {
  const md = ['<a id="round-7-pipe7"></a>', '', '## Figures', '', '## Figures', '', '```sh', '# not a heading', '```'].join('\n');
  const anchors = anchorsOf(md);
  assert.deepEqual([...anchors].sort(), ['figures', 'figures-1', 'round-7-pipe7']);
});

test('brokenLinks reports a missing file and a missing anchor, and nothing for good links, URLs or code', () => {
  const root = mkdtempSync(join(tmpdir(), 'doc-links-'));
  try {
    mkdirSync(join(root, 'docs', 'history'), { recursive: true });
    writeFileSync(join(root, 'docs', 'history', 'topic.md'), '# Topic\n\n<a id="round-3-x"></a>\n\n### Round 3: x\n');
    writeFileSync(
      join(root, 'docs', 'main.md'),
      [
        '# Main',
        '',
        '## Where it stands',
        '',
        'Good: [t](history/topic.md#round-3-x), [u](#where-it-stands), [d](history/), [w](https://example.com/x.md#y).',
        'Code: `[c](nowhere.md)`.',
        'Bad file: [b](history/gone.md#round-3-x).',
        'Bad anchor: [a](history/topic.md#round-4-y).',
        '',
        '```md',
        '[in a fence](nowhere.md)',
        '```',
      ].join('\n'),
    );
    const broken = brokenLinks(root).map((b) => `${b.line} ${b.target}`);
    assert.deepEqual(broken, ['7 history/gone.md#round-3-x', '8 history/topic.md#round-4-y']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("the repository's Markdown files have no broken relative links", () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const broken = brokenLinks(root).map((b) => `${b.file}:${b.line}: (${b.target}) ${b.why}`);
  assert.deepEqual(broken, [], 'run `node --import tsx scripts/check-doc-links.ts` and fix the links it prints');
});
