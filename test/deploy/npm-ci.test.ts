// How the project installs its npm packages: every `npm ci` of the README's commands (scripts/test.sh,
// scripts/demo.sh) and of CI (.ci/run) goes through scripts/npm-ci.sh, which tells onnxruntime-node's install script to
// skip its CUDA provider download (from NuGet: hundreds of MB, and a failed install where NuGet cannot be reached)
// through the environment variable the script reads, not through an npm option npm 11 calls unknown. The container
// images' `npm ci` lines are checked in test/k8s/docker.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const at = (p: string) => join(ROOT, p);

/** Runs scripts/npm-ci.sh with a stand-in `npm` first on PATH that asks onnxruntime-node's own flag parser
 * (script/install-utils.js, what its postinstall script runs) what the install would do, and records npm's args. */
function npmCiAsSeenByOnnxruntime(env: Record<string, string | undefined>): { flag: unknown; env: string | null; args: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'npm-ci-'));
  try {
    const utils = at('node_modules/onnxruntime-node/script/install-utils.js');
    assert.ok(existsSync(utils), `${utils} (onnxruntime-node's install script) is missing`);
    writeFileSync(
      join(dir, 'npm'),
      `#!/usr/bin/env bash\nexec node -e 'const u = require(process.argv[1]); console.log(JSON.stringify({ flag: u.parseInstallFlag() ?? null, env: process.env.ONNXRUNTIME_NODE_INSTALL ?? null, args: process.argv.slice(2) }))' ${JSON.stringify(utils)} "$@"\n`,
    );
    chmodSync(join(dir, 'npm'), 0o755);
    const base: Record<string, string | undefined> = { ...process.env, PATH: `${dir}:${process.env.PATH}` };
    delete base.ONNXRUNTIME_NODE_INSTALL;
    delete base.npm_config_onnxruntime_node_install;
    const out = execFileSync('bash', [at('scripts/npm-ci.sh')], { env: { ...base, ...env }, encoding: 'utf8' });
    return JSON.parse(out.trim().split('\n').pop()!) as { flag: unknown; env: string | null; args: string[] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('scripts/npm-ci.sh runs npm ci with onnxruntime-node told to skip its CUDA download; a value already set wins', () => {
  const plain = npmCiAsSeenByOnnxruntime({});
  assert.deepEqual(plain.args, ['ci', '--no-audit', '--no-fund']);
  assert.equal(plain.flag, false, "onnxruntime-node's parseInstallFlag() says skip (false)");
  // (onnxruntime-node 1.30's parser returns nothing for a named provider; its install script then installs the
  // platform's default, CUDA 12 on linux/x64.)
  const cuda = npmCiAsSeenByOnnxruntime({ ONNXRUNTIME_NODE_INSTALL: 'cuda12' });
  assert.equal(cuda.env, 'cuda12');
  assert.notEqual(cuda.flag, false, 'not skipped');
});

test("the README's commands and CI install through scripts/npm-ci.sh, never with a bare npm ci", () => {
  for (const f of ['scripts/test.sh', 'scripts/demo.sh', '.ci/run']) {
    const code = readFileSync(at(f), 'utf8').split('\n').filter((l) => !l.trim().startsWith('#'));
    assert.ok(code.some((l) => /\bbash scripts\/npm-ci\.sh\b/.test(l)), `${f} installs with bash scripts/npm-ci.sh`);
    const bare = code.filter((l) => /\bnpm ci\b/.test(l.replace(/#.*/, '')));
    assert.deepEqual(bare, [], `${f}: npm ci without scripts/npm-ci.sh`);
  }
  assert.match(readFileSync(at('.ci/run'), 'utf8'), /^npm test$/m, "CI runs the README's test command");
});

test('npm reads no unknown config key from the project (npm 11 warns that its next major version drops them)', () => {
  const r = spawnSync('npm', ['config', 'get', 'registry'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /unknown (project|cli|env) config/i);
});

// npm 11.16+ reads `allowScripts` in package.json (advisory now, enforced from npm 12: an unlisted dependency's
// install script is skipped). Every locked package with an install script has a decision, so a new one fails here
// until someone reads its script and approves or denies it; the two the project needs are approved.
test("package.json's allowScripts decides every locked dependency's install script; esbuild's and onnxruntime-node's run", () => {
  const pkg = JSON.parse(readFileSync(at('package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
  const lock = JSON.parse(readFileSync(at('package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
  const allow = pkg.allowScripts ?? {};
  const scripted = Object.entries(lock.packages)
    .filter(([path, p]) => path !== '' && p.hasInstallScript)
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
  assert.ok(scripted.length > 0, 'package-lock.json lists packages with install scripts');
  const undecided = [...new Set(scripted)].filter((name) => typeof allow[name] !== 'boolean');
  assert.deepEqual(undecided, [], 'packages with install scripts and no allowScripts entry in package.json');
  assert.equal(allow['onnxruntime-node'], true, "onnxruntime-node's script installs the CUDA provider (docs/gpu.md)");
  assert.equal(allow.esbuild, true, "esbuild's script checks and links its platform binary (tsx runs on it)");
  const stale = Object.keys(allow).filter((name) => !scripted.includes(name));
  assert.deepEqual(stale, [], 'allowScripts entries for packages that have no install script in the lock');
});
