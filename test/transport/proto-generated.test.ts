// Fails when proto/generated/ is stale: regenerates the types into a temp dir with the exact command of
// `npm run proto` and compares every file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? listFiles(p) : [p];
  });
}

test('proto/generated matches proto/recovery.proto (run `npm run proto` if this fails)', () => {
  const script = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts.proto as string;
  const match = /proto-loader-gen-types (.*) -O proto\/generated (.*)$/.exec(script);
  assert.ok(match, `package.json scripts.proto has an unexpected form: ${script}`);
  const out = mkdtempSync(join(tmpdir(), 'proto-gen-'));
  try {
    const bin = join(root, 'node_modules/@grpc/proto-loader/build/bin/proto-loader-gen-types.js');
    execFileSync(process.execPath, [bin, ...match[1]!.split(' '), '-O', out, ...match[2]!.split(' ')], { cwd: root, stdio: 'pipe' });
    const fresh = listFiles(out).map((p) => relative(out, p)).sort();
    const committed = listFiles(join(root, 'proto/generated')).map((p) => relative(join(root, 'proto/generated'), p)).sort();
    assert.deepEqual(committed, fresh, 'set of generated files differs');
    for (const f of fresh) {
      assert.equal(readFileSync(join(root, 'proto/generated', f), 'utf8'), readFileSync(join(out, f), 'utf8'), `proto/generated/${f} is stale`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
