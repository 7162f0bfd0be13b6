// The container images, checked without a Docker engine (none runs on the project's machines): the Dockerfiles'
// structure (multi-stage, non-root, tini, the CUDA provider in the CUDA variant), that every file the app loads at
// run time is copied into the runtime stage and not excluded by .dockerignore, and that the Kubernetes overlays use
// the tags the docs build. Building and running the images is not verified here (docs/kubernetes.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { containersOf, renderKustomization } from './kustomize.ts';
import { ALLOCATOR_ENV } from '../../lib/deploy/allocator-env.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const at = (p: string) => join(ROOT, p);

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

/** Dockerfile instructions (continuations joined, comments dropped), grouped by stage. */
function parseDockerfile(path: string): { args: Record<string, string>; stages: Stage[] } {
  const text = readFileSync(path, 'utf8').replace(/\\\n/g, ' ');
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [instr, ...rest] = line.split(/\s+/);
    const body = rest.join(' ');
    if (instr === 'ARG' && stages.length === 0) {
      const [k, v] = body.split('=');
      args[k!] = v ?? '';
      continue;
    }
    if (instr === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(body)!;
      stages.push({ from: m[1]!.replace(/\$\{(\w+)\}/g, (_, k) => args[k] ?? ''), name: m[2], lines: [] });
      continue;
    }
    assert.ok(stages.length > 0, `${path}: ${instr} before FROM`);
    stages[stages.length - 1]!.lines.push(`${instr} ${body}`);
  }
  return { args, stages };
}

/** .dockerignore patterns as predicates on context-relative paths (the forms this repository uses). */
function dockerignore(): (p: string) => boolean {
  const pats = readFileSync(at('.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const res = pats.map((p) => {
    assert.ok(!p.startsWith('!'), 'negations are not used (this checker does not implement them)');
    const glob = p.replace(/^\*\*\//, '');
    const re = glob.replace(/[.+^$()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*');
    return new RegExp(p.startsWith('**/') ? `(^|/)${re}(/|$)` : `^${re}(/|$)`);
  });
  return (p) => res.some((r) => r.test(p));
}

/** Local files reachable from `entry` through static imports, re-exports, literal dynamic imports and new URL(). */
function runtimeFiles(entry: string): Set<string> {
  const seen = new Set<string>();
  const queue = [resolve(entry)];
  while (queue.length) {
    const f = queue.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    if (!/\.(ts|mjs|js)$/.test(f)) continue;
    const src = readFileSync(f, 'utf8');
    const specs = [
      ...src.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/g),
      ...src.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g),
      ...src.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g),
      ...src.matchAll(/new URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g),
    ].map((m) => m[1]!);
    for (const s of specs) {
      if (!s.startsWith('.')) continue;
      const target = resolve(dirname(f), s);
      // A specifier that resolves to nothing is text that looks like an import (inside a string, say): tsc and the
      // project's own tests catch real missing imports.
      if (existsSync(target) && statSync(target).isFile()) queue.push(target);
    }
  }
  return seen;
}

/** Debian packages for WebGPU (docker/Dockerfile says why each): in every image, and in the X-webgpu variant. */
const WEBGPU_PACKAGES = ['libvulkan1', 'libxext6'];
const WEBGPU_VARIANT_PACKAGES = [...WEBGPU_PACKAGES, 'libegl1'];

const cpu = parseDockerfile(at('docker/Dockerfile'));
const cuda = parseDockerfile(at('docker/Dockerfile.cuda'));

for (const [name, df] of [['docker/Dockerfile', cpu], ['docker/Dockerfile.cuda', cuda]] as const) {
  test(`${name}: multi-stage, non-root, tini, production dependencies only`, () => {
    assert.ok(df.stages.length >= 2, 'multi-stage');
    const runtime = df.stages[df.stages.length - 1]!;
    assert.equal(runtime.name, 'runtime', 'the last stage is the runtime');
    const user = runtime.lines.filter((l) => l.startsWith('USER ')).pop();
    assert.match(user ?? '', /^USER 10001:10001$/, 'numeric non-root user (runAsNonRoot can verify it), the uid the manifests run as');
    const entry = runtime.lines.find((l) => l.startsWith('ENTRYPOINT '))!;
    assert.deepEqual(JSON.parse(entry.slice('ENTRYPOINT '.length)), ['/usr/bin/tini', '--', 'node', '/app/bin/recovery-grpo.mjs']);
    assert.ok(runtime.lines.some((l) => /apt-get install .*\btini\b/.test(l)), 'tini installed');
    assert.ok(runtime.lines.some((l) => /useradd --uid 10001/.test(l)), 'a passwd entry for uid 10001');
    const deps = df.stages.find((s) => s.name === 'deps')!;
    assert.ok(deps.lines.some((l) => /npm ci --omit=dev/.test(l)), 'npm ci --omit=dev (tsx, the runtime loader, is a production dependency)');
    const pkg = JSON.parse(readFileSync(at('package.json'), 'utf8'));
    assert.ok(pkg.dependencies.tsx, 'tsx is a dependency, not a devDependency');
    assert.match(runtime.lines.find((l) => l.startsWith('ENV '))!, /HOME=\/tmp/, 'HOME on the writable /tmp');
    const env = runtime.lines.filter((l) => l.startsWith('ENV ')).join(' ');
    for (const [k, v] of Object.entries(ALLOCATOR_ENV)) assert.match(env, new RegExp(`\\b${k}=${v}\\b`), `ENV ${k}=${v} (lib/deploy/allocator-env.ts)`);
  });

  test(`${name}: a failing npm ci fails the build; a proxy's CA comes in as a build secret, never as a layer`, () => {
    const deps = df.stages.find((s) => s.name === 'deps')!;
    const npmCi = deps.lines.find((l) => /npm ci/.test(l))!;
    assert.doesNotMatch(npmCi, /\|\|\s*true/, 'nothing after npm ci swallows its exit status');
    assert.match(npmCi, /--mount=type=secret,id=ca\b/, 'the CA as a secret mount (scripts/build-image.sh passes --secret id=ca,src=...)');
    assert.match(npmCi, /NODE_EXTRA_CA_CERTS=\/run\/secrets\/ca/);
    for (const st of df.stages) assert.ok(!st.lines.some((l) => /^(COPY|ADD) .*\.crt\b/.test(l)), 'no certificate copied into an image');
  });

  test(`${name}: every file the app loads is copied, and none is excluded by .dockerignore`, () => {
    const runtime = df.stages[df.stages.length - 1]!;
    const ignored = dockerignore();
    const copied: string[] = [];
    for (const stage of df.stages) {
      for (const l of stage.lines.filter((x) => x.startsWith('COPY ') && !x.includes('--from='))) {
        const parts = l.split(/\s+/).slice(1).filter((p) => !p.startsWith('--'));
        for (const src of parts.slice(0, -1)) {
          assert.ok(existsSync(at(src)), `${name}: COPY ${src} does not exist`);
          assert.ok(!ignored(src), `${name}: COPY ${src} is excluded by .dockerignore`);
          if (stage === runtime) copied.push(src.replace(/\/$/, ''));
        }
      }
    }
    const files = runtimeFiles(at('bin/recovery-grpo.mjs'));
    assert.ok(files.size > 50, `found ${files.size} files`);
    const missing = [...files].map((f) => relative(ROOT, f)).filter((f) => !copied.some((c) => f === c || f.startsWith(`${c}/`)));
    assert.deepEqual(missing, [], 'files the CLI loads that the runtime stage does not copy');
    for (const f of files) assert.ok(!ignored(relative(ROOT, f)), `${relative(ROOT, f)} is excluded by .dockerignore`);
    for (const p of ['node_modules', '.git', 'runs', 'test']) assert.ok(ignored(p), `.dockerignore excludes ${p}`);
  });
}

test('docker/Dockerfile.cuda installs onnxruntime-node with its CUDA 12 provider on a CUDA + cuDNN base', () => {
  assert.ok(cuda.stages.some((s) => /^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/.test(s.from)), 'an nvidia/cuda 12 cudnn runtime base');
  assert.equal(cuda.stages[cuda.stages.length - 1]!.from, cuda.stages.find((s) => s.name === 'deps')!.from, 'dependencies built on the runtime base (same libc)');
  const deps = cuda.stages.find((s) => s.name === 'deps')!.lines.join('\n');
  // onnxruntime-node's install script reads ONNXRUNTIME_NODE_INSTALL; npm 11 warns about an --onnxruntime-node-install option
  assert.match(deps, /ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --omit=dev /);
  assert.match(deps, /test -f node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/x64\/libonnxruntime_providers_cuda\.so/, 'the build fails if the provider is missing');
  assert.ok(!/cuda/.test(cpu.stages.flatMap((s) => s.lines).join('\n')), 'the CPU image does not download the CUDA provider');
  const cpuNpmCi = cpu.stages.find((s) => s.name === 'deps')!.lines.find((l) => /npm ci/.test(l))!;
  assert.match(cpuNpmCi, /ONNXRUNTIME_NODE_INSTALL=skip npm ci /, "the CPU image's npm ci skips the CUDA download");
});

test('docker/Dockerfile carries the Vulkan loader, and its X-webgpu variant what the NVIDIA Vulkan driver loads', () => {
  // onnxruntime-node's WebGPU provider (Dawn) dlopens libvulkan.so.1; the NVIDIA container toolkit mounts the driver
  // (libGLX_nvidia.so.0, its ICD) but not the distribution's libraries it links (docs/kubernetes.md, "WebGPU").
  // The image itself is checked by npm run deploy-check (the loader found, onnxruntime's "no adapter" error).
  const runtime = cpu.stages[cpu.stages.length - 1]!;
  const arg = runtime.lines.find((l) => l.startsWith('ARG WEBGPU_PACKAGES='));
  const packages = JSON.parse(arg?.slice('ARG WEBGPU_PACKAGES='.length) ?? '""') as string;
  assert.deepEqual(packages.split(/\s+/).sort(), [...WEBGPU_PACKAGES].sort(), 'ARG WEBGPU_PACKAGES in the runtime stage, by default the packages WebGPU needs');
  assert.ok(runtime.lines.some((l) => /apt-get install [^&]*\$\{WEBGPU_PACKAGES\}/.test(l)), 'apt-get install ${WEBGPU_PACKAGES}');
  // the variant's build command, as the Dockerfile and docs/kubernetes.md give it
  for (const file of ['docker/Dockerfile', 'docs/kubernetes.md']) {
    const m = /--build-arg WEBGPU_PACKAGES="([^"]*)" -t \S+-webgpu /.exec(readFileSync(at(file), 'utf8'));
    assert.ok(m, `${file} gives the X-webgpu build command`);
    assert.deepEqual(m[1]!.split(/\s+/).sort(), [...WEBGPU_VARIANT_PACKAGES].sort(), `${file}: the X-webgpu variant's packages`);
  }
});

test('the overlays use the tags the docs build: X for CPU roles, X-cuda12 for GPU roles', () => {
  for (const overlay of ['gpu', 'gpu-all']) {
    const images = renderKustomization(at(`k8s/overlays/${overlay}`)).flatMap((o) => containersOf(o).map((c) => String(c.image))).filter((i) => /recovery-grpo/.test(i));
    const plain = images.filter((i) => !i.endsWith('-cuda12'));
    const gpu = images.filter((i) => i.endsWith('-cuda12'));
    assert.ok(gpu.length > 0);
    const tags = new Set(plain.map((i) => i.split(':').pop()));
    assert.equal(tags.size, 1, `${overlay}: one CPU tag`);
    for (const g of gpu) assert.equal(g, `${plain[0]}-cuda12`, `${overlay}: the CUDA image is the CPU image's tag + -cuda12`);
  }
  // webgpu: the WebGPU provider is in the npm package as shipped; the reward workers run the CPU image's X-webgpu variant
  const webgpu = renderKustomization(at('k8s/overlays/webgpu')).flatMap((o) => containersOf(o).map((c) => String(c.image))).filter((i) => /recovery-grpo/.test(i));
  const variant = webgpu.filter((i) => i.endsWith('-webgpu'));
  const plain = [...new Set(webgpu.filter((i) => !i.endsWith('-webgpu')))];
  assert.equal(variant.length, 1, 'webgpu: one container (the reward worker) on the -webgpu image');
  assert.equal(plain.length, 1, 'webgpu: one CPU image for the rest');
  assert.doesNotMatch(plain[0]!, /cuda/, 'webgpu: no CUDA image');
  assert.equal(variant[0], `${plain[0]}-webgpu`, 'webgpu: the variant is the CPU image\'s tag + -webgpu');
});
