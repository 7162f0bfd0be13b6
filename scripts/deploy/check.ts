// The local deployment check (npm run deploy-check; docs/kubernetes.md, "Local deployment check"): the cpu-dev
// overlay, rendered with the image scripts/build-image.sh built and the small run of scripts/deploy/run.yaml,
// converted for podman (lib/deploy/podman-kube.ts) and run as containers with `podman kube play`: NATS, the
// orchestrator, the learner, a rollout worker and a reward worker. It checks, while the run goes on and after:
//   - /health and /metrics answer on every pod (NATS: its /healthz), asked from this host at each pod's address;
//   - every container runs as uid 10001 with a read-only root file system (asked inside it);
//   - the learner and the workers see RECOVERY_GRPO_THREADS = their CPU limit rounded up (the Downward API as podman
//     plays it; asked inside the container);
//   - NATS's config reloader sidecar (natsio/nats-server-config-reloader, not pullable here) stands in as the base image
//     running `sleep infinity` (a recorded conversion); from inside it the check sends what the reloader sends, SIGHUP
//     to the pid in nats.conf's pid_file, and nats-server (the image's 2.10) must log a successful reload and stay
//     healthy: the shared process namespace, the pid file on the shared emptyDir and the signal between containers
//     of one uid with no capability, as podman plays them;
//   - SIGTERM to the rollout worker's container during GRPO drains it: it logs the stop, finishes or hands back
//     its tasks within the grace period (no "abandoned" warning), exits 0, and podman restarts it as the
//     Deployment's ReplicaSet would replace the pod; the run loses no sample (samples_dropped_total 0);
//   - the orchestrator exits 0 at the final policy version (SFT + GRPO steps), and its last evaluation with the
//     warm start beside it has a higher reward than the warm start;
//   - the orchestrator's and the rollout worker's logs are JSON lines with role, run id, level (and, on the
//     worker, worker id and policy version);
//   - before the stack, the WebGPU reward scorer in the image (`recovery-grpo score --device webgpu`, as
//     a reward worker of k8s/overlays/webgpu runs it): on a machine without a GPU it must end with onnxruntime's
//     "no adapter" error, i.e. Dawn found the Vulkan loader libvulkan.so.1 in the image, not that it is missing;
//     and the libraries NVIDIA's Vulkan driver loads are in the image's linker cache (libEGL.so.1 in an X-webgpu tag).
// Everything it started (pods, containers, the network, the secret, the NATS volume) is removed at the end, also
// when a check fails or it is interrupted. Logs and the converted manifests stay in .tmp/deploy-check/.
//
//   node --import tsx scripts/deploy/check.ts [--tag 0.1.0] [--keep] [--webgpu-only] [--timeout-s 1800]
// --webgpu-only: only the WebGPU checks (seconds), no stack; with --tag 0.1.0-webgpu, the reward workers' variant.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import sharp from 'sharp';
import { renderKustomization } from '../../test/k8s/kustomize.ts';
import { podmanPodName, toPodmanKube, type K8sObject } from '../../lib/deploy/podman-kube.ts';
import { parseLogLine } from '../../lib/log/index.ts';
import { THREADS_ENV } from '../../lib/graph/runtime.ts';
import { quantity } from '../../lib/deploy/quantity.ts';
import { metricsTokenDigest } from '../../lib/metrics/index.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORK = join(ROOT, '.tmp/deploy-check');
const NETWORK = 'recovery-grpo-deploy-check';
const BASE_IMAGE = 'localhost/recovery-grpo-base:trixie';
const UID = 10001;

// strict: a misspelt flag (--keeep, --timeout 60) is refused, in one line, before anything starts
function readFlags() {
  const { values } = parseArgs({
    options: {
      tag: { type: 'string', default: '0.1.0' },
      keep: { type: 'boolean', default: false },
      'webgpu-only': { type: 'boolean', default: false },
      'timeout-s': { type: 'string', default: '1800' },
    },
    strict: true,
    allowPositionals: false,
  });
  const timeoutS = Number(values['timeout-s']);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new Error(`--timeout-s must be a number of seconds > 0, got ${values['timeout-s']}`);
  return { ...values, timeoutS };
}
let opts: ReturnType<typeof readFlags>;
try {
  opts = readFlags();
} catch (e) {
  console.error(`deploy-check: ${(e as Error).message}`);
  process.exit(2);
}
const timeoutS = opts.timeoutS;
const tag = opts.tag;
const image = `recovery-grpo:${tag}`;

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`;
const say = (s: string) => console.log(`[deploy-check ${elapsed()}] ${s}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sh(cmd: string, argv: string[], o: { allowFail?: boolean; timeoutMs?: number } = {}): string {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: o.timeoutMs ?? 300_000, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd} ${argv.join(' ')}: ${r.error.message}`);
  if (r.status !== 0 && !o.allowFail) throw new Error(`${cmd} ${argv.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim().slice(-2000)}`);
  return `${r.stdout ?? ''}`;
}
const podman = (...a: string[]) => sh('podman', a);
const podmanMaybe = (...a: string[]) => sh('podman', a, { allowFail: true });

interface Failure {
  check: string;
  detail: string;
}
const failures: Failure[] = [];
const passed: string[] = [];
function check(name: string, ok: boolean, detail: string): void {
  if (ok) passed.push(`${name}: ${detail}`);
  else failures.push({ check: name, detail });
  say(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
}

// ---- render and convert -------------------------------------------------------------------------------------
function render(): { objects: K8sObject[]; run: { sft: number; grpo: number } } {
  const overlay = join(WORK, 'overlay');
  mkdirSync(overlay, { recursive: true });
  const runYaml = readFileSync(join(ROOT, 'scripts/deploy/run.yaml'), 'utf8');
  writeFileSync(join(overlay, 'run.yaml'), runYaml);
  writeFileSync(
    join(overlay, 'kustomization.yaml'),
    YAML.stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: [relative(overlay, join(ROOT, 'k8s/overlays/cpu-dev'))],
      configMapGenerator: [{ name: 'recovery-grpo-config', behavior: 'replace', files: ['run.yaml'] }],
      images: [{ name: 'recovery-grpo', newName: 'recovery-grpo', newTag: tag }],
    }),
  );
  const run = YAML.parse(runYaml) as { sft: { steps: number }; grpo: { steps: number } };
  return { objects: renderKustomization(overlay) as K8sObject[], run: { sft: run.sft.steps, grpo: run.grpo.steps } };
}

// ---- podman helpers -----------------------------------------------------------------------------------------
interface Ctr {
  pod: string;
  name: string;
  role: string;
  /** From a Job: restartPolicy Never. */
  neverRestarted: boolean;
  /** The onnxruntime threads its manifest asks for from its CPU limit (Downward API), when it does: ceil(limits.cpu). */
  threadsFromLimit?: number;
  /** Not its pod's first container (NATS's reloader): serves nothing, so no health check. */
  sidecar: boolean;
}

/**
 * NATS's config reloader (k8s/base/nats.yaml) cannot be pulled here: the base image stands in, running `sleep infinity`,
 * with the container's security settings and mounts unchanged; the check sends the reloader's signal from it. Returns
 * the pid file the reloader was to read (its -pid), or undefined where the manifests have no reloader.
 */
function standInReloader(stages: { objects: K8sObject[] }[], changes: { kind: string; name: string; what: string }[]): string | undefined {
  for (const o of stages.flatMap((s) => s.objects)) {
    if (o.kind !== 'Pod') continue;
    const spec = o.spec as { shareProcessNamespace?: boolean; containers: { name: string; image?: string; command?: string[]; args?: string[] }[] };
    const c = spec.containers.find((x) => x.name === 'reloader');
    if (!c) continue;
    const pid = (c.args ?? []).map((a) => /^--?pid=(.+)$/.exec(a)?.[1]).find((x) => x !== undefined);
    if (!pid) throw new Error(`Pod ${o.metadata.name}: container reloader has no -pid=<file> argument`);
    if (spec.shareProcessNamespace !== true) throw new Error(`Pod ${o.metadata.name}: a reloader without shareProcessNamespace cannot see nats-server`);
    changes.push({ kind: 'Pod', name: o.metadata.name, what: `container reloader: image ${c.image} -> ${BASE_IMAGE} running \`sleep infinity\` (cannot be pulled here); the check sends its SIGHUP to the pid in ${pid} from inside it` });
    c.image = BASE_IMAGE;
    c.command = ['sleep', 'infinity'];
    delete c.args;
    return pid;
  }
  return undefined;
}


function inspect(ctr: string): { State: { Status: string; ExitCode: number; Running: boolean }; RestartCount: number; NetworkSettings: { Networks: Record<string, { IPAddress: string }> }; HostConfig: { ReadonlyRootfs: boolean }; Config: { User: string } } | undefined {
  const out = podmanMaybe('inspect', '--type', 'container', ctr);
  if (!out.trim()) return undefined;
  return (JSON.parse(out) as ReturnType<typeof inspect>[])[0];
}

function ipOf(ctr: string): string {
  const i = inspect(ctr);
  const ip = i?.NetworkSettings.Networks[NETWORK]?.IPAddress;
  if (!ip) throw new Error(`container ${ctr}: no address on network ${NETWORK}`);
  return ip;
}

/** The metrics token (Secret recovery-grpo-metrics-scrape, what Prometheus presents; set in main): every role's /metrics needs it, and /health says more with it. */
let metricsToken: string | undefined;

/** GET `url`; a role's metrics port (9464) with the metrics token as its bearer. */
async function get(url: string, timeoutMs = 5000): Promise<{ status: number; body: string } | undefined> {
  try {
    const headers: Record<string, string> = metricsToken !== undefined && /:9464\//.test(url) ? { authorization: `Bearer ${metricsToken}` } : {};
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers });
    return { status: r.status, body: await r.text() };
  } catch {
    return undefined;
  }
}

/** A container's output, stdout and stderr (podman logs replays them on its own stdout and stderr). */
function logsOf(ctr: string): string {
  const r = spawnSync('podman', ['logs', ctr], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

function jsonLines(ctr: string): { lines: ReturnType<typeof parseLogLine>[]; bad: string[] } {
  const lines: ReturnType<typeof parseLogLine>[] = [];
  const bad: string[] = [];
  for (const l of logsOf(ctr).split('\n').filter((x) => x.trim())) {
    try {
      lines.push(parseLogLine(l));
    } catch {
      bad.push(l);
    }
  }
  return { lines, bad };
}

// ---- the WebGPU reward scorer in the image ---------------------------------------------------------------------
/** Dawn's warning when it cannot dlopen the Vulkan loader (onnxruntime-node 1.30); any other wording still fails below. */
const NO_LOADER = /libvulkan\.so\.1: cannot open shared object file/;
/** onnxruntime's error when Dawn has a Vulkan loader but no GPU behind it. */
const NO_ADAPTER = /device webgpu: onnxruntime could not create the session on its webgpu execution provider[^]*Failed to get a WebGPU adapter/;

/**
 * The distribution's libraries NVIDIA's Vulkan driver (libGLX_nvidia.so.0, mounted from the node) needs in the image
 * (docker/Dockerfile): every image, and an X-webgpu tag (WEBGPU_PACKAGES with libegl1) also glvnd's EGL.
 */
const VULKAN_LIBS = ['libvulkan.so.1', 'libX11.so.6', 'libXext.so.6'];
const VULKAN_LIBS_WEBGPU_TAG = [...VULKAN_LIBS, 'libEGL.so.1', 'libGLdispatch.so.0'];

function checkVulkanLibs(): void {
  const cache = sh('podman', ['run', '--rm', '--network', 'none', '--entrypoint', 'ldconfig', image, '-p'], { allowFail: true });
  const want = tag.endsWith('-webgpu') ? VULKAN_LIBS_WEBGPU_TAG : VULKAN_LIBS;
  const missing = want.filter((l) => !cache.includes(`${l} `));
  const egl = cache.includes('libEGL.so.1 ') ? 'libEGL.so.1 there' : 'no libEGL.so.1 (the X-webgpu tag has it)';
  check('WebGPU in the image: the libraries the NVIDIA Vulkan driver loads', missing.length === 0, missing.length === 0 ? `${want.join(', ')} in the linker cache; ${egl}` : `MISSING from the linker cache: ${missing.join(', ')}`);
}

/**
 * Scores one image pair in the image with --device webgpu, as the reward workers of k8s/overlays/webgpu score
 * (same RewardScorer, same provider), in a container shaped like their pod (uid 10001, read-only root, /tmp a tmpfs).
 * Here, with no GPU, the expected end is onnxruntime's "no adapter" error; on a machine whose GPU podman exposes, a
 * score.
 */
async function checkWebgpuScorer(): Promise<void> {
  const dir = join(WORK, 'webgpu');
  mkdirSync(dir, { recursive: true });
  await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 90, g: 140, b: 200 } } }).png().toFile(join(dir, 'a.png'));
  const r = spawnSync('podman', [
    'run', '--rm', '--network', 'none', '--read-only', '--tmpfs', '/tmp', '--user', `${UID}:${UID}`, '-v', `${dir}:/in:ro`,
    image, 'score', '--reference', '/in/a.png', '--candidate', '/in/a.png', '--device', 'webgpu',
  ], { encoding: 'utf8', timeout: 120_000 });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  writeFileSync(join(WORK, 'logs', 'webgpu-score.log'), out);
  const scored = r.status === 0 && /"ssim":1\b/.test(out);
  const noAdapter = r.status !== 0 && NO_ADAPTER.test(out) && !NO_LOADER.test(out);
  const last = out.trim().split('\n').pop() ?? '';
  check(
    'WebGPU in the image: the Vulkan loader is there',
    scored || noAdapter,
    scored ? 'scored on a GPU (ssim 1 for an image against itself)'
      : noAdapter ? `no GPU here: onnxruntime's "no adapter" error, exit ${r.status} (Dawn loaded libvulkan.so.1)`
        : `exit ${r.status}: ${NO_LOADER.test(out) ? 'the Vulkan loader libvulkan.so.1 is MISSING from the image' : 'neither a score nor the "no adapter" error'}: ${last.slice(-600)} (.tmp/deploy-check/logs/webgpu-score.log)`,
  );
}

// ---- NATS's reload, as its reloader sidecar sends it ---------------------------------------------------------------
/**
 * From inside the reloader's container (its stand-in): the pid in `pidFile` must be nats-server's (seen through the
 * shared process namespace, not pid 1), and SIGHUP to it, what the reloader sends when a watched file changes, must
 * end in nats-server's "Reloaded server configuration" with /healthz still 200. The files are unchanged here (podman
 * mounts the Secret as a ConfigMap, not renewed in place); what a changed file does is test/transport/nats-tls-reload.test.ts.
 */
async function checkNatsReload(natsCtr: string, reloaderCtr: string, pidFile: string, natsIp: string): Promise<void> {
  const name = 'NATS reload from the reloader\'s container';
  const reloaded = () => (logsOf(natsCtr).match(/Reloaded server configuration/g) ?? []).length;
  const before = reloaded();
  const inReloader = (cmd: string) => spawnSync('podman', ['exec', reloaderCtr, 'sh', '-c', cmd], { encoding: 'utf8', timeout: 30_000 });
  const pid = inReloader(`cat ${pidFile}`).stdout.trim();
  const comm = inReloader(`cat /proc/${pid}/comm`).stdout.trim();
  if (!/^\d+$/.test(pid) || pid === '1' || comm !== 'nats-server') {
    check(name, false, `${pidFile} holds ${JSON.stringify(pid)}, which the reloader's container sees as ${JSON.stringify(comm)} (expected nats-server, not pid 1)`);
    return;
  }
  const kill = inReloader(`kill -HUP "$(cat ${pidFile})"`);
  let after = before;
  for (let i = 0; i < 60 && after <= before; i++) {
    await sleep(500);
    after = reloaded();
  }
  const failed = /Failed to reload[^\n]*/.exec(logsOf(natsCtr))?.[0];
  const health = await get(`http://${natsIp}:8222/healthz?js-enabled-only=true`);
  check(
    name,
    kill.status === 0 && after > before && !failed && health?.status === 200,
    `SIGHUP to pid ${pid} (${comm}, read from ${pidFile} in ${reloaderCtr}, uid 10001, no capability): kill exit ${kill.status}${kill.stderr.trim() ? ` (${kill.stderr.trim()})` : ''}, ${after > before ? '"Reloaded server configuration" logged' : 'NO reload logged within 30 s'}${failed ? `, ${failed}` : ''}; /healthz ${health?.status ?? 'no answer'} after`,
  );
}

// ---- teardown -----------------------------------------------------------------------------------------------
let stageFiles: string[] = [];
let secretNames: string[] = [];
let volumeNames: string[] = [];
let podNames: string[] = [];
let tornDown = false;
function teardown(): void {
  if (tornDown) return;
  tornDown = true;
  say('tearing down');
  for (const f of [...stageFiles].reverse()) podmanMaybe('kube', 'down', f);
  for (const p of podNames) podmanMaybe('pod', 'rm', '-f', '-t', '0', p);
  for (const s of secretNames) podmanMaybe('secret', 'rm', s);
  for (const v of volumeNames) podmanMaybe('volume', 'rm', '-f', v);
  podmanMaybe('network', 'rm', '-f', NETWORK);
}

/** The Secrets `scripts/k8s-secrets.sh --print` makes for a namespace: name -> key -> value (decoded). */
function scriptSecrets(): Record<string, Record<string, string>> {
  const text = sh('bash', [join(ROOT, 'scripts/k8s-secrets.sh'), '--print', 'recovery-grpo-deploy-check']);
  const out: Record<string, Record<string, string>> = {};
  for (const doc of YAML.parseAllDocuments(text)) {
    const o = doc.toJS() as { kind?: string; metadata?: { name: string }; data?: Record<string, string> } | null;
    if (o?.kind !== 'Secret' || !o.metadata || !o.data) continue;
    out[o.metadata.name] = Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  }
  return out;
}

// ---- main ---------------------------------------------------------------------------------------------------
async function main(): Promise<void> {
  if (spawnSync('podman', ['--version']).status !== 0) throw new Error('podman is not installed: scripts/build-image.sh installs it (Debian package)');
  if (spawnSync('podman', ['image', 'exists', image]).status !== 0) {
    throw new Error(`no local image ${image}: build it first with scripts/build-image.sh ${tag}`);
  }
  if (spawnSync('podman', ['image', 'exists', BASE_IMAGE]).status !== 0) {
    throw new Error(`no local image ${BASE_IMAGE} (it runs NATS here): scripts/build-image.sh makes it`);
  }
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(join(WORK, 'logs'), { recursive: true });
  await checkWebgpuScorer();
  checkVulkanLibs();
  if (opts['webgpu-only']) {
    tornDown = true; // nothing of the stack was started (and another check's network is not this one's to remove)
    return;
  }

  const { objects, run } = render();
  const natsImage = objects
    .filter((o) => o.kind === 'StatefulSet')
    .flatMap((o) => (o.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers.map((c) => c.image))[0];
  // The Secrets a cluster gets from scripts/k8s-secrets.sh (token, TLS certificates, checkpoint keys), made by it.
  const secrets = scriptSecrets();
  // The roles hold the token's digest (recovery-grpo-metrics, sha256:<hex>); the check presents the token, as the
  // PodMonitor does from recovery-grpo-metrics-scrape.
  metricsToken = secrets['recovery-grpo-metrics-scrape']?.token;
  if (metricsToken === undefined || secrets['recovery-grpo-metrics']?.token !== metricsTokenDigest(metricsToken)) {
    throw new Error('scripts/k8s-secrets.sh --print: recovery-grpo-metrics does not hold the digest (sha256:<hex>) of recovery-grpo-metrics-scrape\'s token');
  }
  const kube = toPodmanKube(objects, {
    images: natsImage ? { [natsImage]: BASE_IMAGE } : {},
    secrets,
  });
  const reloaderPidFile = standInReloader(kube.stages, kube.changes);
  writeFileSync(join(WORK, 'changes.json'), JSON.stringify(kube.changes, null, 2));
  say(`rendered k8s/overlays/cpu-dev (${objects.length} objects) with ${image}; ${kube.changes.length} conversions (.tmp/deploy-check/changes.json)`);
  stageFiles = kube.stages.map((s, i) => {
    const f = join(WORK, `stage-${i}-${s.name}.yaml`);
    writeFileSync(f, s.objects.map((o) => YAML.stringify(o)).join('---\n'));
    return f;
  });
  const all = kube.stages.flatMap((s) => s.objects);
  secretNames = all.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name);
  // kube play makes a podman volume of every claim, ConfigMap and Secret, and 4.3's `kube down` leaves them behind.
  volumeNames = all.filter((o) => ['PersistentVolumeClaim', 'ConfigMap', 'Secret'].includes(o.kind)).map((o) => o.metadata.name);
  const workloads = all.filter((o) => o.kind === 'Pod' || o.kind === 'Deployment');
  podNames = workloads.map(podmanPodName);
  const containers: Ctr[] = workloads.flatMap((w) => {
    type EnvVar = { name: string; valueFrom?: { resourceFieldRef?: { resource: string } } };
    const spec = (w.kind === 'Pod' ? w.spec : (w.spec as { template: { spec: unknown } }).template.spec) as { containers: { name: string; env?: EnvVar[]; resources?: { limits?: { cpu?: string } } }[] };
    const pod = podmanPodName(w);
    const role = (w.kind === 'Pod' ? w.metadata.labels : (w.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels)?.['app.kubernetes.io/component'] ?? w.metadata.name;
    const neverRestarted = w.kind === 'Pod' && (w.spec as { restartPolicy?: string }).restartPolicy === 'Never';
    return spec.containers.map((c, i) => {
      const fromLimit = c.env?.some((e) => e.name === THREADS_ENV && e.valueFrom?.resourceFieldRef?.resource === 'limits.cpu');
      const limit = c.resources?.limits?.cpu;
      return { pod, name: `${pod}-${c.name}`, role, neverRestarted, sidecar: i > 0, ...(fromLimit && limit !== undefined ? { threadsFromLimit: Math.ceil(quantity(limit)) /* the Downward API's limits.cpu, divisor 1 */ } : {}) };
    });
  });
  const byRole = (role: string) => {
    const c = containers.find((x) => x.role === role);
    if (!c) throw new Error(`no ${role} container in the converted manifests`);
    return c;
  };
  const orch = byRole('orchestrator');
  const rollout = byRole('rollout-worker');
  const nats = byRole('nats');
  const reloader = containers.find((c) => c.role === 'nats' && c.sidecar);

  teardown(); // leftovers of an earlier, interrupted check
  tornDown = false;
  podman('network', 'create', NETWORK);

  // Stage 0: NATS. Every role connects to it at start, and the orchestrator's pod (a Job's, never restarted here)
  // would fail for good if NATS were not up yet.
  const tPlay = Date.now();
  podman('kube', 'play', '--network', NETWORK, stageFiles[0]!);
  const natsIp = ipOf(nats.name);
  for (let i = 0; ; i++) {
    const r = await get(`http://${natsIp}:8222/healthz?js-enabled-only=true`);
    if (r?.status === 200) break;
    if (i > 120) throw new Error(`NATS did not become healthy in 60 s:\n${logsOf(nats.name).slice(-2000)}`);
    await sleep(500);
  }
  say(`NATS is up (${natsIp})`);
  if (reloader && reloaderPidFile) await checkNatsReload(nats.name, reloader.name, reloaderPidFile, natsIp);
  else check('NATS reload from the reloader\'s container', false, 'the rendered NATS pod has no reloader sidecar (k8s/base/nats.yaml)');
  for (const f of stageFiles.slice(1)) podman('kube', 'play', '--network', NETWORK, f);
  say(`played ${containers.map((c) => c.name).join(', ')}`);

  // While the run goes on: every pod's /health + /metrics once all answer, non-root + read-only root once each,
  // the SIGTERM drain once the GRPO stage runs, and the orchestrator's metrics until it exits.
  const healthy = new Set<string>();
  const hardened = new Set<string>();
  let drainAt: number | undefined;
  let drainDone = false;
  let heldAtSigterm = 0;
  let lastOrchMetrics = '';
  let orchVersion = 0;
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const state = inspect(orch.name)?.State;
    if (!state) throw new Error(`the orchestrator container ${orch.name} is gone`);
    if (!state.Running && state.Status !== 'created' && state.Status !== 'configured' && state.Status !== 'initialized') break;
    if (Date.now() > deadline) throw new Error(`the run did not finish within --timeout-s (policy version ${orchVersion})`);

    for (const c of containers) {
      const ins = inspect(c.name);
      // A Job's pod (never restarted) that failed ends the run: fail now instead of at the timeout.
      if (ins && c.neverRestarted && ins.State.Status === 'exited' && ins.State.ExitCode !== 0) {
        throw new Error(`${c.name} exited ${ins.State.ExitCode}:\n${logsOf(c.name).slice(-3000)}`);
      }
      if (!ins?.State.Running) continue;
      if (!hardened.has(c.name)) {
        // Asked inside the container: its uid, and whether the root file system refuses a write.
        const probe = sh('podman', ['exec', c.name, 'sh', '-c', `id -u; if touch /probe-rootfs 2>/dev/null; then echo writable; else echo read-only; fi; echo "\${${THREADS_ENV}:-unset}"`], { allowFail: true }).trim().split('\n');
        if (probe.length === 3) {
          hardened.add(c.name);
          check(`non-root, read-only root fs: ${c.name}`, probe[0] === String(UID) && probe[1] === 'read-only' && ins.HostConfig.ReadonlyRootfs, `uid ${probe[0]}, root fs ${probe[1]}`);
          // The Downward API as podman plays it: the container's CPU limit, rounded up
          if (c.threadsFromLimit !== undefined) check(`onnxruntime threads from the CPU limit: ${c.name}`, probe[2] === String(c.threadsFromLimit), `${THREADS_ENV}=${probe[2]}, limits.cpu rounded up ${c.threadsFromLimit}`);
        }
      }
      if (!healthy.has(c.name) && !c.sidecar) {
        const ip = ins.NetworkSettings.Networks[NETWORK]?.IPAddress;
        if (!ip) continue;
        if (c.role === 'nats') {
          const h = await get(`http://${ip}:8222/healthz`);
          if (h?.status === 200) {
            healthy.add(c.name);
            check(`health: ${c.name}`, true, `/healthz 200 (NATS has no /metrics; its monitor port answers)`);
          }
          continue;
        }
        const h = await get(`http://${ip}:9464/health`);
        const m = await get(`http://${ip}:9464/metrics`);
        // A role creates its series as it first uses them (lib/metrics): asked again until there are some.
        const series = m?.body.split('\n').filter((l) => l.startsWith('recovery_grpo_')).length ?? 0;
        if (h?.status === 200 && m?.status === 200 && series > 0) {
          healthy.add(c.name);
          check(`health and metrics: ${c.name}`, true, `/health 200 ${h.body.slice(0, 100)}; /metrics 200 with ${series} recovery_grpo_ series`);
          // ... with the metrics token; without it, 401 (docs/security.md, "Metrics and health endpoints")
          const bare = await fetch(`http://${ip}:9464/metrics`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => undefined);
          check(`metrics token: ${c.name}`, bare === 401, `/metrics without the token: ${bare ?? 'no answer'}`);
        }
      }
    }

    const oip = inspect(orch.name)?.NetworkSettings.Networks[NETWORK]?.IPAddress;
    if (oip) {
      const m = await get(`http://${oip}:9464/metrics`);
      if (m?.status === 200) lastOrchMetrics = m.body;
      // The orchestrator's policy version (the learner's it knows), from its metrics.
      const v = /^recovery_grpo_policy_version(?:\{[^}]*\})? (\d+)/m.exec(lastOrchMetrics);
      if (v) orchVersion = Number(v[1]);
    }

    // The drain: SIGTERM to the rollout worker during GRPO, as the kubelet sends it when a pod is deleted.
    // Sent when the worker's /health shows tasks in its queue (looked at for up to 20 s), so there is work to drain.
    if (drainAt === undefined && orchVersion >= run.sft + 3 && healthy.has(rollout.name)) {
      const rip = ipOf(rollout.name);
      for (const until = Date.now() + 20_000; Date.now() < until; await sleep(50)) {
        const h = await get(`http://${rip}:9464/health`, 2000);
        const q = h ? (JSON.parse(h.body) as { detail?: { queued_tasks?: number } }).detail?.queued_tasks ?? 0 : 0;
        if (q > 0) {
          heldAtSigterm = q;
          break;
        }
      }
      drainAt = Date.now();
      podman('kill', '--signal', 'TERM', rollout.name);
      say(`GRPO at version ${orchVersion}: SIGTERM to ${rollout.name} (its /health showed ${heldAtSigterm} queued task(s) just before)`);
    }
    if (drainAt !== undefined && !drainDone) {
      const ins = inspect(rollout.name);
      if (ins && ins.RestartCount >= 1) {
        drainDone = true;
        const { lines } = jsonLines(rollout.name);
        const stopping = lines.findIndex((l) => /^stopping \(SIGTERM\)/.test(l.msg));
        const stopped = lines.findIndex((l, i) => i > stopping && l.msg === 'stopped');
        const abandoned = lines.some((l) => /abandoned/.test(l.msg));
        check(
          'SIGTERM drains the rollout worker',
          stopping >= 0 && stopped > stopping && !abandoned && ins.State.ExitCode === 0,
          `${heldAtSigterm} task(s) queued just before the signal; "stopping (SIGTERM)" ${stopping >= 0 ? 'logged' : 'MISSING'}, "stopped" ${stopped > stopping ? 'logged' : 'MISSING'}, in-flight work ${abandoned ? 'ABANDONED' : 'finished within the grace period'}, exit ${ins.State.ExitCode}, restarted by podman ${ins.RestartCount}x (${((Date.now() - drainAt) / 1000).toFixed(0)} s)`,
        );
      } else if (Date.now() - drainAt > 120_000) {
        drainDone = true;
        check('SIGTERM drains the rollout worker', false, `no restart within 120 s of SIGTERM (state ${ins?.State.Status}, exit ${ins?.State.ExitCode})`);
      }
    }
    await sleep(2000);
  }
  const runSeconds = (Date.now() - tPlay) / 1000;
  const orchState = inspect(orch.name)!.State;
  say(`the orchestrator exited ${orchState.ExitCode} after ${runSeconds.toFixed(0)} s`);
  for (const c of containers) writeFileSync(join(WORK, 'logs', `${c.name}.log`), logsOf(c.name));

  // ---- after the run ------------------------------------------------------------------------------------------
  const total = run.sft + run.grpo;
  const orchLog = jsonLines(orch.name);
  const complete = orchLog.lines.map((l) => /complete at policy version (\d+)/.exec(l.msg)).find((m) => m);
  check('run complete', orchState.ExitCode === 0 && Number(complete?.[1]) === total, `orchestrator exit ${orchState.ExitCode}, final policy version ${complete?.[1] ?? 'not logged'} (expected ${total} = ${run.sft} SFT + ${run.grpo} GRPO)`);
  const evals = orchLog.lines
    .map((l) => /evaluation of version (\d+): reward ([\d.]+) \(identity ([\d.]+), reference ([\d.]+)\)/.exec(l.msg))
    .filter((m): m is RegExpExecArray => m !== null);
  const lastEval = evals[evals.length - 1];
  check(
    'evaluation reward above the warm start',
    !!lastEval && Number(lastEval[2]) > Number(lastEval[4]),
    lastEval ? `version ${lastEval[1]}: reward ${lastEval[2]} vs warm start (reference) ${lastEval[4]}, identity ${lastEval[3]}` : 'no evaluation with the reference was logged',
  );
  const dropped = lastOrchMetrics
    .split('\n')
    .filter((l) => l.startsWith('recovery_grpo_samples_dropped_total'))
    .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
  const redispatched = lastOrchMetrics
    .split('\n')
    .filter((l) => l.startsWith('recovery_grpo_redispatches_total'))
    .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
  check('no sample lost', lastOrchMetrics !== '' && dropped === 0, `samples_dropped_total ${dropped}, redispatches_total ${redispatched} (the orchestrator's last scrape before it exited)`);

  for (const c of [orch, rollout]) {
    const { lines, bad } = jsonLines(c.name);
    const withCtx = lines.filter((l) => typeof l.run_id === 'string' && typeof l.role === 'string');
    const worker = c === rollout;
    const withVersion = lines.filter((l) => typeof l.policy_version === 'number' && (!worker || typeof l.worker_id === 'string'));
    check(
      `JSON logs: ${c.name}`,
      lines.length > 0 && bad.length === 0 && withCtx.length > 0 && withVersion.length > 0,
      `${lines.length} JSON lines, ${bad.length} not JSON${bad.length ? ` (first: ${bad[0]!.slice(0, 160)})` : ''}; ${withCtx.length} with run_id and role, ${withVersion.length} with policy_version${worker ? ' and worker_id' : ''}`,
    );
  }
  for (const c of containers) {
    if (!healthy.has(c.name) && !c.sidecar) check(`health and metrics: ${c.name}`, false, 'never answered while the run went on');
    if (!hardened.has(c.name)) check(`non-root, read-only root fs: ${c.name}`, false, 'never running when asked');
    if (!hardened.has(c.name) && c.threadsFromLimit !== undefined) check(`onnxruntime threads from the CPU limit: ${c.name}`, false, 'never running when asked');
  }
  if (drainAt === undefined) check('SIGTERM drains the rollout worker', false, `the GRPO stage was never seen running (policy version ${orchVersion})`);

  const result = {
    image,
    runSeconds: Math.round(runSeconds),
    totalSeconds: Math.round((Date.now() - t0) / 1000),
    finalVersion: complete ? Number(complete[1]) : null,
    evaluation: lastEval ? { version: Number(lastEval[1]), reward: Number(lastEval[2]), warmStart: Number(lastEval[4]), identity: Number(lastEval[3]) } : null,
    passed,
    failures,
    conversions: kube.changes,
  };
  writeFileSync(join(WORK, 'result.json'), JSON.stringify(result, null, 2));
  say(`result: .tmp/deploy-check/result.json; logs: .tmp/deploy-check/logs/`);
}

let exitCode = 0;
const onSignal = () => {
  teardown();
  process.exit(130);
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);
try {
  await main();
} catch (e) {
  failures.push({ check: 'deployment', detail: (e as Error).message });
  say(`FAIL ${(e as Error).message}`);
} finally {
  if (!opts.keep) teardown();
  else say('--keep: leaving the pods running (podman pod ls); remove them with podman kube down .tmp/deploy-check/stage-*.yaml');
}
if (failures.length > 0) {
  say(`${failures.length} check(s) failed: ${failures.map((f) => f.check).join('; ')}`);
  exitCode = 1;
} else say(`all ${passed.length} checks passed in ${elapsed()}`);
process.exit(exitCode);
