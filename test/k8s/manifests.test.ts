// The Kubernetes manifests: every kustomization renders (every file it names exists), every object it produces is
// valid against the API schemas (kubernetes-models, CRD schemas in schemas.ts), and the run stack holds together:
// pod security, probes, resources, arguments that agree with the run configuration and the Services, NetworkPolicies
// that admit exactly the project's pods, PDBs, GPUs where the gpu overlays say, KEDA on the right run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { containersOf, parseK8sYaml, renderKustomization, type K8sObject } from './kustomize.ts';
import { validateK8sObject } from './schemas.ts';
import { runConfigOf } from './overlays.ts';
import { ALLOCATOR_ENV } from '../../lib/deploy/allocator-env.ts';
import { THREADS_ENV } from '../../lib/graph/runtime.ts';
import { quantity } from '../../lib/deploy/quantity.ts';
import { refusedOn, type Device } from '../../lib/graph/device.ts';
import { requireTool, run, which } from './tools.ts';
import { makeTestCerts } from '../helpers/certs.ts';
import { RUN_STATE_LIMIT_BYTES } from '../../lib/transport/nats-permissions.ts';
import { ROLLOUT_DEFAULT_MAX_IN_FLIGHT } from '../../rollout-worker/index.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const at = (p: string) => join(ROOT, p);

const KUSTOMIZATIONS = ['k8s/base', 'k8s/overlays/cpu-dev', 'k8s/overlays/gpu', 'k8s/overlays/gpu-all', 'k8s/overlays/webgpu', 'k8s/monitoring'];
const RUN_OVERLAYS = ['k8s/overlays/cpu-dev', 'k8s/overlays/gpu', 'k8s/overlays/gpu-all', 'k8s/overlays/webgpu'];
/** Kustomize components: rendered over every run overlay by their own tests (test/k8s/per-pod-identity.test.ts, approver-policy.test.ts). */
const COMPONENTS = ['k8s/components/per-pod-identity', 'k8s/components/approver-policy'];
/**
 * Where each run overlay puts GPUs: the device of each role that has one (its --device: one form in every overlay; the
 * run config names no device, round 18), KEDA.
 */
const GPU_PLAN: Record<string, { devices: Record<string, Device>; keda: boolean }> = {
  'k8s/overlays/cpu-dev': { devices: {}, keda: false },
  'k8s/overlays/gpu': { devices: { 'reward-worker': 'cuda' }, keda: true },
  'k8s/overlays/gpu-all': { devices: { learner: 'cuda', 'reward-worker': 'cuda', 'rollout-worker': 'cuda' }, keda: true },
  'k8s/overlays/webgpu': { devices: { 'reward-worker': 'webgpu' }, keda: false },
};
/** The NVIDIA container toolkit mounts the driver's Vulkan ICD (what WebGPU runs on) only for this capability. */
const WEBGPU_CAPABILITIES = ['compute', 'utility', 'graphics'];
/** The project's roles: component label -> CLI verb. */
const ROLES: Record<string, string> = { orchestrator: 'orchestrator', 'rollout-worker': 'rollout-worker', 'reward-worker': 'reward-worker', learner: 'learner' };
/** Secrets created out of band by scripts/k8s-secrets.sh (never in a kustomization). */
const TLS_COMPONENTS = ['nats', 'orchestrator', 'learner', 'rollout', 'reward'];
const EXTERNAL_SECRETS = {
  'recovery-grpo-auth': ['token'],
  ...Object.fromEntries(TLS_COMPONENTS.map((c) => [`recovery-grpo-tls-${c}`, ['ca.crt', 'tls.crt', 'tls.key']])),
  'recovery-grpo-checkpoint-signing': ['learner.key', 'learner.pub'],
  'recovery-grpo-checkpoint-verify': ['learner.pub'],
  'recovery-grpo-metrics': ['token'],
} as Record<string, string[]>;
/** The PodMonitor's copy of the metrics token, in the monitoring namespace (scripts/k8s-secrets.sh). */
const SCRAPE_SECRET = 'recovery-grpo-metrics-scrape';

const rendered = new Map(KUSTOMIZATIONS.map((k) => [k, renderKustomization(at(k))]));

type Any = Record<string, any>;
const podSpec = (o: K8sObject): Any => (o.spec as Any).template.spec;
const component = (o: K8sObject): string | undefined => o.metadata.labels?.['app.kubernetes.io/component'];
const workloads = (objs: K8sObject[]) => objs.filter((o) => ['Deployment', 'StatefulSet', 'Job'].includes(o.kind));
function only(objs: K8sObject[], kind: string, comp: string): K8sObject {
  const hit = objs.filter((o) => o.kind === kind && component(o) === comp);
  assert.equal(hit.length, 1, `one ${kind} for ${comp}`);
  return hit[0]!;
}
function arg(container: Any, name: string): string | undefined {
  const prefix = `--${name}=`;
  const hit = (container.args as string[]).filter((a) => a.startsWith(prefix));
  assert.ok(hit.length <= 1, `--${name} given twice`);
  return hit[0]?.slice(prefix.length);
}
/**
 * The rollout workers KEDA settles at, from its minimum: the HPA's desired count for an AverageValue trigger is
 * ceil(query / threshold). The query's value for n workers each holding up to `maxInFlight` of `outstanding` tasks:
 * the tasks left waiting (queue_depth{queue="rollout"}), plus `perWorker` x workers_connected if the query adds them.
 */
function kedaSettles(so: Any, maxInFlight: number, outstanding: number): number {
  const q = so.triggers[0].metadata.query as string;
  const threshold = Number(so.triggers[0].metadata.threshold);
  assert.equal(so.triggers[0].metadata.metricType ?? 'AverageValue', 'AverageValue');
  const queue = /recovery_grpo_queue_depth\{[^}]*queue="rollout"[^}]*\}/.test(q);
  const workers = /(?:\+\s*(?:(\d+)\s*\*\s*)?)sum\(recovery_grpo_workers_connected\{[^}]*worker_role="rollout"[^}]*\}\)/.exec(q);
  assert.ok(queue, `KEDA query counts the rollout queue: ${q}`);
  const perWorker = workers ? Number(workers[1] ?? 1) : 0;
  let n = so.minReplicaCount as number;
  for (let i = 0; i < 100; i++) {
    const value = Math.max(0, outstanding - n * maxInFlight) + perWorker * n;
    const next = Math.min(so.maxReplicaCount, Math.max(so.minReplicaCount, Math.ceil(value / threshold)));
    // scale-down is stabilised over 5 minutes: a lower count wins only if it persists; the model keeps the highest
    if (next <= n) return n;
    n = next;
  }
  return n;
}
function labelsMatch(selector: Any | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    if (e.operator === 'In' && !(has && e.values.includes(labels[e.key]))) return false;
    if (e.operator === 'NotIn' && has && e.values.includes(labels[e.key])) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

test('every kustomization under k8s/ is tested, every file it names exists, and no file under k8s/ is unused', () => {
  const found = filesUnder(at('k8s')).filter((f) => f.endsWith('/kustomization.yaml')).map((f) => relative(ROOT, f).replace(/\/kustomization\.yaml$/, '')).sort();
  assert.deepEqual(found, [...KUSTOMIZATIONS, ...COMPONENTS].sort(), 'a new kustomization must be added to KUSTOMIZATIONS (or COMPONENTS) here');
  const visited = new Set<string>();
  for (const k of KUSTOMIZATIONS) renderKustomization(at(k), { visited });
  // a component renders only from a kustomization that lists it: here over the first run overlay
  for (const c of COMPONENTS) {
    const dir = mkdtempSync(join(tmpdir(), 'rg-kust-component-'));
    try {
      writeFileSync(join(dir, 'kustomization.yaml'), `resources:\n  - ${relative(dir, at(RUN_OVERLAYS[0]!))}\ncomponents:\n  - ${relative(dir, at(c))}\n`);
      renderKustomization(dir, { visited });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const unused = filesUnder(at('k8s')).filter((f) => !visited.has(f) && !f.endsWith('README.md'));
  assert.deepEqual(unused.map((f) => relative(ROOT, f)), [], 'files under k8s/ that no kustomization names');
  // The renderer reports a missing file by name.
  const dir = mkdtempSync(join(tmpdir(), 'rg-kust-'));
  try {
    writeFileSync(join(dir, 'kustomization.yaml'), 'resources:\n  - missing.yaml\n');
    assert.throws(() => renderKustomization(dir), /resource "missing.yaml" does not exist/);
    writeFileSync(join(dir, 'kustomization.yaml'), 'resources: []\ncommonLabels: {a: b}\n');
    assert.throws(() => renderKustomization(dir), /field "commonLabels" is not supported/);
    // a component renders only from the components of a kustomization, and only a Component may be listed there
    assert.throws(() => renderKustomization(at(COMPONENTS[0]!)), /a Component is rendered only from a kustomization's components/);
    writeFileSync(join(dir, 'kustomization.yaml'), `components:\n  - ${relative(dir, at('k8s/base'))}\n`);
    assert.throws(() => renderKustomization(dir), /listed in components but its kind is Kustomization, not Component/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every object every kustomization produces is valid against the Kubernetes API schemas', async (t) => {
  const used = new Map<string, number>();
  for (const [k, objs] of rendered) {
    assert.ok(objs.length > 0, `${k} renders objects`);
    for (const o of objs) {
      try {
        const via = await validateK8sObject(o);
        used.set(via, (used.get(via) ?? 0) + 1);
      } catch (e) {
        assert.fail(`${k}: ${(e as Error).message}`);
      }
    }
  }
  t.diagnostic(`validated: ${[...used].map(([v, n]) => `${n} with ${v}`).join(', ')}`);
  // The validator refuses what the API server would.
  const dep = structuredClone(only(rendered.get('k8s/overlays/gpu')!, 'Deployment', 'reward-worker')) as Any;
  const extra = dep.spec.template.spec.containers[0].env.push({ name: 'X', value: 'compute', utility: null }) - 1;
  await assert.rejects(validateK8sObject(dep as K8sObject), new RegExp(`fields the API does not know: spec\\.template\\.spec\\.containers\\[0\\]\\.env\\[${extra}\\]\\.utility`));
  dep.spec.template.spec.containers[0].env.pop();
  dep.spec.template.spec.containers[0].resources.limits.cpu = 'two';
  await assert.rejects(validateK8sObject(dep as K8sObject), /cpu must match format "quantity"/);
});

test('the offline renderer and kubectl kustomize produce the same objects', async (t) => {
  const kubectl = which('kubectl');
  if (!kubectl) {
    t.skip('kubectl is not installed: the renderer (test/k8s/kustomize.ts) is not cross-checked against kustomize here');
    return;
  }
  for (const k of KUSTOMIZATIONS) {
    const r = run(kubectl, ['kustomize', at(k)], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, `kubectl kustomize ${k}: ${r.out}`);
    const theirs = parseK8sYaml(r.out, `kubectl kustomize ${k}`) as K8sObject[];
    const key = (o: K8sObject) => `${o.apiVersion} ${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    const mine = new Map(rendered.get(k)!.map((o) => [key(o), o]));
    assert.deepEqual([...mine.keys()].sort(), theirs.map(key).sort(), `${k}: same objects`);
    for (const o of theirs) assert.ok(isDeepStrictEqual(mine.get(key(o)), o), `${k}: ${key(o)} differs:\n${JSON.stringify(mine.get(key(o)))}\n${JSON.stringify(o)}`);
  }
});

for (const overlay of RUN_OVERLAYS) {
  test(`${overlay}: workloads, pod security, resources, probes`, () => {
    const objs = rendered.get(overlay)!;
    assert.ok(objs.every((o) => o.metadata.namespace === 'recovery-grpo'), 'every object in the run namespace');
    only(objs, 'Job', 'orchestrator');
    only(objs, 'Job', 'learner');
    only(objs, 'Deployment', 'rollout-worker');
    only(objs, 'Deployment', 'reward-worker');
    const nats = only(objs, 'StatefulSet', 'nats');
    assert.equal((nats.spec as Any).volumeClaimTemplates[0].spec.accessModes[0], 'ReadWriteOnce', 'JetStream on a persistent volume');
    for (const w of workloads(objs)) {
      const ps = podSpec(w);
      const id = `${w.kind}/${w.metadata.name}`;
      assert.equal(ps.automountServiceAccountToken, false, `${id}: no API token`);
      assert.equal(ps.securityContext?.runAsNonRoot, true, `${id}: runAsNonRoot`);
      assert.ok(ps.securityContext?.runAsUser > 0, `${id}: a non-root uid`);
      assert.equal(ps.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${id}: seccomp`);
      if (w.kind === 'Job') assert.equal(ps.restartPolicy, 'OnFailure', `${id}: restarts in place after a crash`);
      for (const c of containersOf(w) as Any[]) {
        const cid = `${id} container ${c.name}`;
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${cid}: no privilege escalation`);
        assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${cid}: read-only root`);
        assert.deepEqual(c.securityContext?.capabilities, { drop: ['ALL'] }, `${cid}: drops every capability, adds none`);
        assert.ok(!c.securityContext?.privileged, `${cid}: not privileged`);
        for (const r of ['cpu', 'memory']) {
          assert.ok(c.resources?.requests?.[r] && c.resources?.limits?.[r], `${cid}: ${r} request and limit`);
          assert.ok(quantity(c.resources.requests[r]) <= quantity(c.resources.limits[r]), `${cid}: ${r} request <= limit`);
        }
        const port = w.kind === 'StatefulSet' ? 'monitor' : 'metrics';
        const path = w.kind === 'StatefulSet' ? /^\/healthz/ : /^\/health$/;
        if (c === containersOf(w)[0]) {
          for (const p of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
            assert.equal(c[p]?.httpGet?.port, port, `${cid}: ${p} on port ${port}`);
            assert.match(c[p].httpGet.path, path, `${cid}: ${p} path`);
          }
          assert.ok(c.ports.some((p: Any) => p.name === port), `${cid}: probes a port it declares`);
        } else {
          // a sidecar (NATS's config reloader, test/k8s/nats-reload.test.ts): serves nothing; the kubelet restarts it when it exits
          assert.equal(`${w.kind}/${c.name}`, 'StatefulSet/reloader', `${cid}: the one sidecar is NATS's reloader`);
          assert.equal(c.ports, undefined, `${cid}: a sidecar declares no port`);
        }
        if (c.image) assert.match(c.image, /:[\w.-]+$/, `${cid}: a tagged image (set by the overlay's images:)`);
      }
    }
  });

  test(`${overlay}: arguments agree with the run configuration, the Services and the mounts`, () => {
    const objs = rendered.get(overlay)!;
    const cfg = runConfigOf(objs);
    const svc = (comp: string) => {
      const hit = objs.filter((o) => o.kind === 'Service' && component(o) === comp);
      assert.equal(hit.length, 1, `one Service for ${comp}`);
      return hit[0]!;
    };
    const orchSvc = svc('orchestrator');
    const natsSvc = svc('nats');
    const grpcPort = (orchSvc.spec as Any).ports.find((p: Any) => p.name === 'grpc');
    const natsPort = (natsSvc.spec as Any).ports.find((p: Any) => p.name === 'client');
    assert.equal(cfg.nats.url, `nats://${natsSvc.metadata.name}:${natsPort.port}`, 'nats.url names the NATS Service');
    assert.equal(cfg.orchestrator.listen, `0.0.0.0:${grpcPort.port}`, 'orchestrator.listen: all interfaces, the Service port');

    for (const w of workloads(objs).filter((o) => component(o)! in ROLES)) {
      const comp = component(w)!;
      const c = podSpec(w).containers[0] as Any;
      const id = `${comp}`;
      assert.equal(c.args[0], ROLES[comp], `${id}: runs recovery-grpo ${ROLES[comp]}`);
      // The run configuration: mounted from the generated ConfigMap.
      const configPath = arg(c, 'config')!;
      const mount = (c.volumeMounts as Any[]).find((m) => configPath.startsWith(`${m.mountPath}/`));
      assert.ok(mount, `${id}: --config ${configPath} is on a mount`);
      const vol = podSpec(w).volumes.find((v: Any) => v.name === mount.name);
      assert.ok(objs.some((o) => o.kind === 'ConfigMap' && o.metadata.name === vol.configMap?.name && configPath.endsWith(`/${Object.keys(o.data as object)[0]}`)), `${id}: --config comes from a rendered ConfigMap`);
      // Metrics and health: on every interface, on the port Prometheus scrapes.
      assert.equal(arg(c, 'metrics-host'), '0.0.0.0', `${id}: --metrics-host 0.0.0.0`);
      // ... which the roles refuse without a token or the opt-in (cli/flag-checks.ts): the token, from its Secret on a
      // read-only mount, the one the PodMonitor presents
      const metricsTokenFile = arg(c, 'metrics-token-file')!;
      assert.ok(metricsTokenFile, `${id}: --metrics-token-file (Prometheus scrapes with the token)`);
      assert.ok(!(c.args as string[]).includes('--metrics-network-protected'), `${id}: the token, not the network's word, allows the non-loopback --metrics-host`);
      const mmount = (c.volumeMounts as Any[]).find((m) => metricsTokenFile.startsWith(`${m.mountPath}/`));
      assert.ok(mmount?.readOnly, `${id}: --metrics-token-file on a read-only mount`);
      const mvol = podSpec(w).volumes.find((v: Any) => v.name === mmount.name);
      assert.equal(mvol.secret?.secretName, 'recovery-grpo-metrics', `${id}: the metrics token comes from Secret recovery-grpo-metrics`);
      assert.equal(mvol.secret.items.find((i: Any) => i.path === metricsTokenFile.slice(mmount.mountPath.length + 1))?.key, 'token', `${id}: its key token`);
      // the NetworkPolicy still guards the port (a second wall: only Prometheus reaches it)
      assert.ok(objs.some((o) => o.kind === 'NetworkPolicy' && (o.spec as Any).ingress?.some((r: Any) => r.ports?.some((p: Any) => p.port === 'metrics'))), `${id}: a NetworkPolicy restricts the metrics port`);
      assert.equal(Number(arg(c, 'metrics-port')), cfg.metrics.port, `${id}: --metrics-port is metrics.port`);
      assert.equal(c.ports.find((p: Any) => p.name === 'metrics').containerPort, cfg.metrics.port, `${id}: container port metrics`);
      assert.equal(arg(c, 'nats'), cfg.nats.url, `${id}: --nats is nats.url`);
      // The token: a file from the Secret, never an environment variable or an argument.
      const tokenFile = arg(c, 'auth-token-file')!;
      const tmount = (c.volumeMounts as Any[]).find((m) => tokenFile.startsWith(`${m.mountPath}/`));
      assert.ok(tmount?.readOnly, `${id}: --auth-token-file on a read-only mount`);
      const tvol = podSpec(w).volumes.find((v: Any) => v.name === tmount.name);
      assert.ok(EXTERNAL_SECRETS[tvol.secret?.secretName]?.includes(tokenFile.slice(tmount.mountPath.length + 1)), `${id}: token file is a key of the auth Secret`);
      assert.ok(!(c.env ?? []).some((e: Any) => /TOKEN/i.test(e.name)), `${id}: no token in the environment`);
      // Writable places on a read-only root: /tmp (tsx cache, HOME) and run.outDir.
      const writable = (c.volumeMounts as Any[]).filter((m) => !m.readOnly && podSpec(w).volumes.find((v: Any) => v.name === m.name)?.emptyDir);
      assert.ok(writable.some((m) => m.mountPath === '/tmp'), `${id}: /tmp is an emptyDir`);
      assert.ok(writable.some((m) => cfg.run.outDir.startsWith(`${m.mountPath}/`)), `${id}: run.outDir ${cfg.run.outDir} is writable`);
      assert.equal(c.env.find((e: Any) => e.name === 'HOME')?.value, '/tmp', `${id}: HOME on the writable /tmp`);
      for (const [k, v] of Object.entries(ALLOCATOR_ENV)) assert.equal(c.env.find((e: Any) => e.name === k)?.value, v, `${id}: ${k} as lib/deploy/allocator-env.ts`);
      // onnxruntime's threads: the container's CPU limit, which every graph-running pod must set (the orchestrator
      // too: it runs the periodic evaluation's graphs, in one lane per thread)
      const threads = c.env.find((e: Any) => e.name === THREADS_ENV);
      assert.deepEqual(threads?.valueFrom, { resourceFieldRef: { resource: 'limits.cpu', divisor: '1' } }, `${id}: ${THREADS_ENV} from limits.cpu`);
      assert.ok(c.resources?.limits?.cpu, `${id}: a CPU limit for ${THREADS_ENV} to read`);
      if (comp === 'orchestrator') {
        assert.equal(arg(c, 'listen'), cfg.orchestrator.listen, 'orchestrator --listen is orchestrator.listen');
        assert.equal(c.ports.find((p: Any) => p.name === 'grpc').containerPort, Number(cfg.orchestrator.listen.split(':')[1]), 'container port grpc');
        assert.ok(tokenFile, 'a non-loopback orchestrator only with a token');
      } else {
        assert.equal(arg(c, 'orchestrator'), `${orchSvc.metadata.name}:${grpcPort.port}`, `${id}: dials the orchestrator Service`);
      }
    }
    // Services select exactly their workload and target ports it declares.
    for (const s of objs.filter((o) => o.kind === 'Service')) {
      const hit = workloads(objs).filter((w) => labelsMatch({ matchLabels: (s.spec as Any).selector }, (w.spec as Any).template.metadata.labels));
      assert.equal(hit.length, 1, `Service ${s.metadata.name} selects one workload`);
      for (const p of (s.spec as Any).ports) assert.ok(containersOf(hit[0]!).some((c: Any) => c.ports?.some((cp: Any) => cp.name === p.targetPort)), `Service ${s.metadata.name}: targetPort ${p.targetPort} exists`);
    }
    // Every Secret and ConfigMap a pod refers to exists (or is the script-made auth Secret).
    for (const w of workloads(objs)) {
      for (const v of podSpec(w).volumes ?? []) {
        if (v.configMap) assert.ok(objs.some((o) => o.kind === 'ConfigMap' && o.metadata.name === v.configMap.name), `${w.metadata.name}: ConfigMap ${v.configMap.name}`);
        if (v.secret) assert.ok(v.secret.secretName in EXTERNAL_SECRETS || objs.some((o) => o.kind === 'Secret' && o.metadata.name === v.secret.secretName), `${w.metadata.name}: Secret ${v.secret.secretName}`);
      }
    }
  });

  test(`${overlay}: NetworkPolicies admit only the project's pods to the orchestrator and NATS, and Prometheus to /metrics`, () => {
    const objs = rendered.get(overlay)!;
    const policies = objs.filter((o) => o.kind === 'NetworkPolicy');
    const pods = workloads(objs).map((w) => ({ comp: component(w)!, labels: (w.spec as Any).template.metadata.labels as Record<string, string>, ports: containersOf(w).flatMap((c: Any) => c.ports ?? []) }));
    // Is traffic from (namespace labels, pod labels) to pod `dst` on its named port allowed? (same-namespace podSelector rules)
    const allowed = (from: { ns: Record<string, string>; pod: Record<string, string>; sameNamespace: boolean }, dst: (typeof pods)[number], port: string): boolean => {
      const selecting = policies.filter((p) => labelsMatch((p.spec as Any).podSelector, dst.labels) && (p.spec as Any).policyTypes.includes('Ingress'));
      if (selecting.length === 0) return true;
      return selecting.some((p) =>
        ((p.spec as Any).ingress ?? []).some((rule: Any) =>
          (rule.ports ?? [{ port }]).some((rp: Any) => rp.port === port || rp.port === dst.ports.find((cp: Any) => cp.name === port)?.containerPort) &&
          (rule.from ?? []).some((peer: Any) =>
            peer.namespaceSelector && !peer.podSelector ? labelsMatch(peer.namespaceSelector, from.ns)
              : peer.podSelector && !peer.namespaceSelector ? from.sameNamespace && labelsMatch(peer.podSelector, from.pod)
                : false,
          ),
        ),
      );
    };
    const self = { 'kubernetes.io/metadata.name': 'recovery-grpo' };
    const projectPod = (comp: string) => ({ ns: self, pod: pods.find((p) => p.comp === comp)!.labels, sameNamespace: true });
    const stranger = { ns: self, pod: { app: 'something-else' }, sameNamespace: true };
    const otherNs = { ns: { 'kubernetes.io/metadata.name': 'default' }, pod: pods.find((p) => p.comp === 'rollout-worker')!.labels, sameNamespace: false };
    const prometheus = { ns: { 'kubernetes.io/metadata.name': 'monitoring' }, pod: { 'app.kubernetes.io/name': 'prometheus' }, sameNamespace: false };
    const pod = (comp: string) => pods.find((p) => p.comp === comp)!;

    for (const src of ['rollout-worker', 'reward-worker', 'learner']) assert.ok(allowed(projectPod(src), pod('orchestrator'), 'grpc'), `${src} -> orchestrator:grpc`);
    for (const src of ['orchestrator', 'rollout-worker', 'reward-worker', 'learner']) assert.ok(allowed(projectPod(src), pod('nats'), 'client'), `${src} -> nats:client`);
    for (const [name, src] of [['a foreign pod', stranger], ['another namespace', otherNs], ['prometheus', prometheus], ['nats', projectPod('nats')]] as const) {
      assert.ok(!allowed(src, pod('orchestrator'), 'grpc'), `${name} must not reach orchestrator:grpc`);
    }
    for (const [name, src] of [['a foreign pod', stranger], ['another namespace', otherNs], ['prometheus', prometheus]] as const) {
      assert.ok(!allowed(src, pod('nats'), 'client'), `${name} must not reach nats:client`);
    }
    for (const comp of Object.keys(ROLES)) {
      assert.ok(allowed(prometheus, pod(comp), 'metrics'), `prometheus -> ${comp}:metrics`);
      assert.ok(!allowed(stranger, pod(comp), 'metrics'), `a foreign pod must not reach ${comp}:metrics`);
    }
    // Every project pod is under the default deny.
    for (const p of pods) assert.ok(policies.some((np) => labelsMatch((np.spec as Any).podSelector, p.labels) && !(np.spec as Any).ingress), `${p.comp} is under a default-deny policy`);
  });

  test(`${overlay}: PodDisruptionBudgets, GPUs, KEDA, NATS storage`, () => {
    const objs = rendered.get(overlay)!;
    const cfg = runConfigOf(objs);
    // PDBs: each selects one workload; singletons keep their pod, workers may lose some.
    const pdbs = objs.filter((o) => o.kind === 'PodDisruptionBudget');
    for (const w of workloads(objs)) {
      const hit = pdbs.filter((p) => labelsMatch((p.spec as Any).selector, (w.spec as Any).template.metadata.labels));
      assert.equal(hit.length, 1, `${w.metadata.name}: one PDB`);
      const singleton = w.kind !== 'Deployment';
      if (singleton) assert.equal((hit[0]!.spec as Any).minAvailable, 1, `${w.metadata.name}: minAvailable 1`);
      else assert.ok((hit[0]!.spec as Any).maxUnavailable, `${w.metadata.name}: maxUnavailable`);
    }
    // GPUs: exactly where the overlay says, on the device it says, with the image that device needs, a GPU node
    // selector and the toleration.
    const plan = GPU_PLAN[overlay]!;
    const gpuComps = workloads(objs).filter((w) => containersOf(w).some((c: Any) => c.resources?.limits?.['nvidia.com/gpu'])).map((w) => component(w)).sort();
    assert.deepEqual(gpuComps, Object.keys(plan.devices).sort(), 'which roles get a GPU');
    for (const w of workloads(objs)) {
      const c = podSpec(w).containers[0] as Any;
      const comp = component(w)!;
      const gpu = !!c.resources.limits['nvidia.com/gpu'];
      const device = plan.devices[comp];
      assert.equal(/cuda/.test(c.image), device === 'cuda', `${w.metadata.name}: CUDA image exactly when it runs on CUDA (${c.image})`);
      assert.equal(/-webgpu$/.test(c.image), device === 'webgpu', `${w.metadata.name}: the -webgpu image (docker/Dockerfile) exactly when it runs on WebGPU (${c.image})`);
      const capabilities = (c.env ?? []).find((e: Any) => e.name === 'NVIDIA_DRIVER_CAPABILITIES')?.value as string | undefined;
      if (device === 'webgpu') {
        // The Vulkan ICD comes into the container only with the graphics capability; compute and utility are kept
        assert.deepEqual(capabilities?.split(',').sort(), [...WEBGPU_CAPABILITIES].sort(), `${w.metadata.name}: NVIDIA_DRIVER_CAPABILITIES for WebGPU`);
        assert.ok(!(c.env as Any[]).some((e) => e.name === 'NVIDIA_VISIBLE_DEVICES'), `${w.metadata.name}: NVIDIA_VISIBLE_DEVICES left to the device plugin`);
      } else assert.equal(capabilities, undefined, `${w.metadata.name}: NVIDIA_DRIVER_CAPABILITIES only where WebGPU runs`);
      if (comp in ROLES && comp !== 'orchestrator') {
        // its --device, else cpu
        const effective = (arg(c, 'device') ?? 'cpu') as Device;
        assert.equal(effective, device ?? 'cpu', `${w.metadata.name}: runs its graphs on ${device ?? 'cpu'}`);
        const role = ({ learner: 'learner', 'rollout-worker': 'rollout', 'reward-worker': 'reward' } as const)[comp as 'learner' | 'rollout-worker' | 'reward-worker'];
        assert.equal(refusedOn(effective, role), undefined, `${w.metadata.name}: not on a device its role is refused on`);
      }
      if (!gpu) continue;
      assert.equal(c.resources.requests['nvidia.com/gpu'], c.resources.limits['nvidia.com/gpu'], `${w.metadata.name}: GPU request = limit`);
      assert.equal(podSpec(w).nodeSelector?.['nvidia.com/gpu.present'], 'true', `${w.metadata.name}: GPU nodes`);
      assert.ok(podSpec(w).tolerations?.some((t: Any) => t.key === 'nvidia.com/gpu' && t.operator === 'Exists'), `${w.metadata.name}: tolerates the GPU taint`);
    }
    assert.equal(cfg.reward.device, undefined, 'reward.device: retired, the device is each worker\'s --device');
    // KEDA: in the gpu overlays, on the rollout workers, on this run's queue; the Deployment leaves replicas to it.
    const sos = objs.filter((o) => o.kind === 'ScaledObject');
    const rollout = only(objs, 'Deployment', 'rollout-worker');
    if (plan.keda) {
      assert.equal(sos.length, 1);
      const so = sos[0]!.spec as Any;
      assert.equal(so.scaleTargetRef.name, rollout.metadata.name);
      assert.equal(so.scaleTargetRef.kind, 'Deployment');
      assert.ok(!('replicas' in (rollout.spec as Any)), 'KEDA owns the rollout workers\' replicas');
      assert.ok(so.minReplicaCount >= 1, 'at least one rollout worker');
      const q = so.triggers[0].metadata.query as string;
      assert.match(q, new RegExp(`run_id="${cfg.run.id}"`), 'the KEDA query filters on this run');
      // ... and on this namespace's series: namespace and role are Prometheus's (the PodMonitor), not the pods'
      const namespaces = [...q.matchAll(/namespace="([^"]*)"/g)].map((m) => m[1]);
      const selectors = [...q.matchAll(/recovery_grpo_\w+\{[^}]*\}/g)].map((m) => m[0]);
      for (const sel of selectors) {
        assert.match(sel, new RegExp(`namespace="${rollout.metadata.namespace}"`), `KEDA selector ${sel}: this run's namespace`);
        assert.match(sel, /role="orchestrator"/, `KEDA selector ${sel}: the orchestrator's series`);
      }
      assert.ok(namespaces.length === selectors.length, 'one namespace matcher per selector');
      assert.match(q, /queue="rollout"/);
      // Where KEDA settles for this run.yaml: a worker per rollout task outstanding (the tasks one policy version's
      // batches hold: one per group), not stuck at its minimum (round 24: the queue alone, threshold 8, never
      // passed 4 tasks).
      const outstanding = cfg.grpo.samplesPerBatch * (cfg.grpo.maxStaleness + 1);
      const settled = kedaSettles(so, Number(arg(containersOf(rollout)[0] as Any, 'max-in-flight') ?? ROLLOUT_DEFAULT_MAX_IN_FLIGHT), outstanding);
      assert.equal(settled, Math.min(so.maxReplicaCount, outstanding), `${overlay}: KEDA settles at ${settled} rollout workers for ${outstanding} outstanding rollout tasks`);
    } else assert.equal(sos.length, 0, `${overlay} needs no KEDA`);
    // NATS: JetStream's file store limit below the volume.
    const nats = only(objs, 'StatefulSet', 'nats');
    const env = Object.fromEntries(podSpec(nats).containers[0].env.filter((e: Any) => 'value' in e).map((e: Any) => [e.name, e.value]));
    const storage = quantity((nats.spec as Any).volumeClaimTemplates[0].spec.resources.requests.storage);
    assert.ok(quantity(env.NATS_JS_MAX_FILE_STORE.replace(/B$/, '')) < storage, `max_file_store ${env.NATS_JS_MAX_FILE_STORE} below the volume`);
    // and above what the run-state account reserves (nats-server refuses to start JetStream otherwise)
    assert.ok(quantity(env.NATS_JS_MAX_FILE_STORE.replace(/B$/, '')) >= RUN_STATE_LIMIT_BYTES.file, `max_file_store ${env.NATS_JS_MAX_FILE_STORE} below the run-state account's ${RUN_STATE_LIMIT_BYTES.file} bytes`);
  });
}

test('nats.conf passes nats-server -t with the StatefulSet\'s environment', (t) => {
  const natsServer = requireTool(t, 'nats-server', 'bash scripts/ensure-nats-server.sh');
  if (!natsServer) return;
  for (const overlay of RUN_OVERLAYS) {
    const objs = rendered.get(overlay)!;
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('recovery-grpo-nats-config'))!;
    const nats = only(objs, 'StatefulSet', 'nats');
    const dir = mkdtempSync(join(tmpdir(), 'rg-nats-'));
    try {
      const file = join(dir, 'nats.conf');
      // the TLS files come from the Secret scripts/k8s-secrets.sh makes: test certificates stand in for them
      const certs = makeTestCerts(dir, {});
      const conf = (cm.data as Record<string, string>)['nats.conf']!;
      const tlsPaths = { '/etc/nats-tls/tls.crt': certs.server.cert, '/etc/nats-tls/tls.key': certs.server.key, '/etc/nats-tls/ca.crt': certs.ca };
      for (const p of Object.keys(tlsPaths)) assert.ok(conf.includes(p), `${overlay}: nats.conf names ${p}`);
      writeFileSync(file, Object.entries(tlsPaths).reduce((text, [from, to]) => text.replace(from, to), conf));
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, POD_NAME: 'recovery-grpo-nats-0' };
      for (const e of podSpec(nats).containers[0].env) if (e.value !== undefined) env[e.name] = e.value;
      const r = run(natsServer, ['-t', '-c', file], { env });
      assert.equal(r.code, 0, `${overlay}: ${r.out}`);
      assert.ok(podSpec(nats).containers[0].args.includes('--config=/etc/nats/nats.conf'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('scripts/k8s-secrets.sh --print: valid Secrets with the keys every pod mounts, new ones per namespace', async () => {
  const r = run('bash', [at('scripts/k8s-secrets.sh'), '--print', 'recovery-grpo', 'recovery-grpo-clip-0p1']);
  assert.equal(r.code, 0, r.out);
  const objs = parseK8sYaml(r.out, 'k8s-secrets.sh --print') as K8sObject[];
  const names = Object.keys(EXTERNAL_SECRETS);
  assert.deepEqual(objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`), [
    'Namespace//monitoring', `Secret/monitoring/${SCRAPE_SECRET}`,
    ...['recovery-grpo', 'recovery-grpo-clip-0p1'].flatMap((ns) => [`Namespace//${ns}`, ...names.map((n) => `Secret/${ns}/${n}`)]),
  ]);
  const tokens = new Set<string>();
  const metricsTokens = new Set<string>();
  const metricsDigests = new Set<string>();
  const digestOf = (t: string) => `sha256:${createHash('sha256').update(Buffer.from(t, 'utf8')).digest('hex')}`;
  const cas = new Set<string>();
  for (const o of objs) {
    await validateK8sObject(o);
    if (o.kind !== 'Secret') continue;
    const data = o.data as Record<string, string>;
    assert.deepEqual(Object.keys(data).sort(), [...(EXTERNAL_SECRETS[o.metadata.name] ?? { [SCRAPE_SECRET]: ['token'] }[o.metadata.name]!)].sort(), `${o.metadata.name}: its keys`);
    if (o.metadata.name === 'recovery-grpo-auth') {
      const token = Buffer.from(data.token!, 'base64').toString('utf8');
      assert.match(token, /^[0-9a-f]{64}$/, '256 random bits, hex');
      tokens.add(token);
    }
    if (o.metadata.name === 'recovery-grpo-tls-nats') cas.add(data['ca.crt']!);
    if (o.metadata.name === SCRAPE_SECRET) {
      assert.deepEqual(Object.keys(data), ['token'], `${o.metadata.name}: its key`);
      const token = Buffer.from(data.token!, 'base64').toString('utf8');
      assert.match(token, /^[0-9a-f]{64}$/, `${o.metadata.name}: 256 random bits, hex`);
      metricsTokens.add(token);
    }
    if (o.metadata.name === 'recovery-grpo-metrics') {
      // the key the roles' --metrics-token-file names (checked above), holding the digest: no role pod holds the token
      assert.deepEqual(Object.keys(data), ['token'], `${o.metadata.name}: its key`);
      const digest = Buffer.from(data.token!, 'base64').toString('utf8');
      assert.match(digest, /^sha256:[0-9a-f]{64}$/, `${o.metadata.namespace}/${o.metadata.name}: sha256:<hex>`);
      metricsDigests.add(digest);
    }
  }
  // the PodMonitor presents one token to every run: each namespace holds that token's digest
  assert.equal(metricsTokens.size, 1, 'one metrics token, in the monitoring namespace');
  assert.deepEqual([...metricsDigests], [...metricsTokens].map(digestOf), 'every run namespace: the digest of the monitoring namespace\'s token');
  assert.ok(![...tokens].some((t) => metricsTokens.has(t)), 'the metrics token is not a gRPC token');
  assert.equal(tokens.size, 2, 'one token per namespace');
  assert.equal(cas.size, 2, 'one CA per namespace');
  assert.notEqual(run('bash', [at('scripts/k8s-secrets.sh'), '--print', 'Not_A_Namespace']).code, 0);
  // The PodMonitor presents the Secret the script makes in the PodMonitor's own namespace.
  const monitor = rendered.get('k8s/monitoring')!.find((o) => o.kind === 'PodMonitor')!;
  for (const e of (monitor.spec as Any).podMetricsEndpoints) {
    assert.deepEqual(e.authorization, { type: 'Bearer', credentials: { name: SCRAPE_SECRET, key: 'token' } }, 'the PodMonitor scrapes with the metrics token');
  }
  assert.ok(objs.some((o) => o.kind === 'Secret' && o.metadata.name === SCRAPE_SECRET && o.metadata.namespace === monitor.metadata.namespace), `${SCRAPE_SECRET} in the PodMonitor's namespace ${monitor.metadata.namespace}`);
  // An existing metrics token (another Prometheus's, or a rotation's) is given by file: every copy is it.
  const tdir = mkdtempSync(join(tmpdir(), 'rg-metrics-token-'));
  try {
    const given = 'c0ffee'.repeat(8);
    writeFileSync(join(tdir, 'token'), `${given}\n`);
    writeFileSync(join(tdir, 'short'), 'abc\n');
    const r2 = run('bash', [at('scripts/k8s-secrets.sh'), '--print', 'recovery-grpo'], { env: { ...process.env, RECOVERY_GRPO_METRICS_TOKEN_FILE: join(tdir, 'token'), RECOVERY_GRPO_MONITORING_NAMESPACE: 'prom' } });
    assert.equal(r2.code, 0, r2.out);
    const copies = (parseK8sYaml(r2.out, 'k8s-secrets.sh --print') as K8sObject[]).filter((o) => o.kind === 'Secret' && [SCRAPE_SECRET, 'recovery-grpo-metrics'].includes(o.metadata.name));
    assert.deepEqual(copies.map((o) => `${o.metadata.namespace}/${o.metadata.name}`), [`prom/${SCRAPE_SECRET}`, 'recovery-grpo/recovery-grpo-metrics']);
    const valueOf = (o: K8sObject) => Buffer.from((o.data as Record<string, string>).token!, 'base64').toString('utf8');
    assert.equal(valueOf(copies[0]!), given, `${SCRAPE_SECRET}: the given token`);
    assert.equal(valueOf(copies[1]!), digestOf(given), 'recovery-grpo-metrics: its digest');
    const r3 = run('bash', [at('scripts/k8s-secrets.sh'), '--print', 'recovery-grpo'], { env: { ...process.env, RECOVERY_GRPO_METRICS_TOKEN_FILE: join(tdir, 'short') } });
    assert.notEqual(r3.code, 0);
    assert.match(r3.out, /RECOVERY_GRPO_METRICS_TOKEN_FILE=.*short: the token has fewer than 16 characters/);
  } finally {
    rmSync(tdir, { recursive: true, force: true });
  }
});

test('the container arguments are accepted by the real CLI commands (yargs strict)', async (t) => {
  // gpu-all passes --device=cuda to three roles, webgpu --device=webgpu to the reward workers
  const objs = ['k8s/overlays/gpu-all', 'k8s/overlays/webgpu'].flatMap((k) => rendered.get(k)!);
  const { default: yargs } = await import('yargs');
  // The commands read their secret files when they parse (cli/flag-checks.ts): each path under one of the
  // container's volume mounts gets an empty file under a scratch root, the argument pointing there.
  const root = mkdtempSync(join(tmpdir(), 'k8s-args-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const mounted = (c: Any) => (c.args as string[]).map((a) => a.replace(/^(--[\w-]+=)(\/\S+)$/, (all, flag: string, path: string) => {
    if (!(c.volumeMounts as Any[] ?? []).some((m) => path.startsWith(`${m.mountPath}/`))) return all;
    mkdirSync(dirname(join(root, path)), { recursive: true });
    // a stand-in secret: the metrics token is read (and a short one refused) when the command line is parsed
    writeFileSync(join(root, path), 'stand-in-secret-'.padEnd(64, '0'));
    return `${flag}${join(root, path)}`;
  }));
  for (const w of workloads(objs).filter((o) => component(o)! in ROLES)) {
    const c = podSpec(w).containers[0] as Any;
    const verb = c.args[0] as string;
    const args = mounted(c);
    let mod: { default: Any };
    try {
      mod = await import(`../../cli/commands/${verb}.ts`);
    } catch (e) {
      t.diagnostic(`cli/commands/${verb}.ts cannot be loaded (${(e as Error).message.split('\n')[0]}): its arguments are not checked`);
      continue;
    }
    let handled = false;
    const parser = yargs()
      .scriptName('recovery-grpo')
      .strict()
      .exitProcess(false)
      .fail((msg: string, err: Error) => {
        throw err ?? new Error(msg);
      })
      .command({ ...mod.default, handler: () => { handled = true; } });
    await assert.doesNotReject(async () => parser.parseAsync(args), `${verb} ${args.slice(1).join(' ')}`);
    assert.ok(handled, `${verb}: the command matched`);
  }
  // Not vacuous: an unknown flag is refused.
  const { default: orch } = await import('../../cli/commands/orchestrator.ts');
  const bad = yargs().strict().exitProcess(false).fail((msg: string, err: Error) => { throw err ?? new Error(msg); }).command({ ...orch, handler: () => {} });
  await assert.rejects(async () => bad.parseAsync(['orchestrator', '--metrics-hots=0.0.0.0']), /Unknown argument/);
});
