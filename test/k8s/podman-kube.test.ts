// lib/deploy/podman-kube.ts: the cpu-dev overlay converted for `podman kube play` keeps everything podman can run
// as it is, and changes exactly the documented rest. (Running it is scripts/deploy/check.ts, npm run deploy-check.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { renderKustomization, type K8sObject } from './kustomize.ts';
import { RUN_OVERLAYS } from './overlays.ts';
import { podmanPodName, toPodmanKube } from '../../lib/deploy/podman-kube.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const rendered = renderKustomization(`${ROOT}k8s/overlays/cpu-dev`);
const TOKEN = 'not-a-real-token';
/** What scripts/k8s-secrets.sh makes, with stand-in values (the conversion only carries them). */
const SECRETS: Record<string, Record<string, string>> = {
  'recovery-grpo-auth': { token: TOKEN },
  ...Object.fromEntries(['nats', 'orchestrator', 'learner', 'rollout', 'reward'].map((c) => [`recovery-grpo-tls-${c}`, { 'ca.crt': 'ca', 'tls.crt': `${c} cert`, 'tls.key': `${c} key` }])),
  'recovery-grpo-checkpoint-signing': { 'learner.key': 'private', 'learner.pub': 'public' },
  'recovery-grpo-checkpoint-verify': { 'learner.pub': 'public' },
  'recovery-grpo-metrics': { token: 'not-a-real-metrics-token' },
};

type PodSpec = {
  restartPolicy?: string;
  securityContext?: Record<string, unknown>;
  containers: { name: string; image: string; args?: string[]; ports?: unknown[]; securityContext?: Record<string, unknown>; livenessProbe?: unknown; readinessProbe?: unknown; startupProbe?: unknown; volumeMounts?: unknown[] }[];
  volumes?: { name: string; configMap?: { name: string }; secret?: { secretName: string }; persistentVolumeClaim?: { claimName: string }; emptyDir?: unknown }[];
};
const specOf = (o: K8sObject): PodSpec => (o.kind === 'Pod' ? o.spec : (o.spec as { template: { spec: unknown } }).template.spec) as PodSpec;
const find = (objs: K8sObject[], kind: string, name: string) => objs.find((o) => o.kind === kind && o.metadata.name === name);
const specOfRendered = (kind: string, name: string): PodSpec => (find(rendered, kind, name)!.spec as { template: { spec: PodSpec } }).template.spec;

test('cpu-dev for podman: Jobs and the StatefulSet become pods named after their Services, nothing else changes kind', () => {
  const kube = toPodmanKube(rendered, { images: { 'nats:2.10-alpine': 'localhost/base' }, secrets: SECRETS });
  const all = kube.stages.flatMap((s) => s.objects);
  assert.deepEqual([...new Set(all.map((o) => o.kind))].sort(), ['ConfigMap', 'Deployment', 'PersistentVolumeClaim', 'Pod'], 'Secrets travel as ConfigMaps (podman 4.3 mounts secret data base64-encoded)');
  // Services -> pod names: clients dial the same host names as in a cluster.
  assert.deepEqual(kube.serviceToPod, { 'recovery-grpo-orchestrator': 'recovery-grpo-orchestrator', 'recovery-grpo-nats': 'recovery-grpo-nats' });
  const orch = find(all, 'Pod', 'recovery-grpo-orchestrator');
  const learner = find(all, 'Pod', 'recovery-grpo-learner');
  const nats = find(all, 'Pod', 'recovery-grpo-nats');
  assert.ok(orch && learner && nats, 'the orchestrator, learner and NATS pods');
  assert.equal(specOf(orch).restartPolicy, 'Never', 'a Job is a pod that is never restarted');
  assert.equal(specOf(learner).restartPolicy, 'Never');
  assert.ok(specOf(orch).containers[0]!.args!.includes('--nats=nats://recovery-grpo-nats:4222'), 'the arguments are untouched: the pod name carries the Service name');
  // The workers stay Deployments, as podman runs them.
  for (const d of ['recovery-grpo-rollout-worker', 'recovery-grpo-reward-worker']) {
    const dep = find(all, 'Deployment', d);
    assert.ok(dep, d);
    assert.equal(podmanPodName(dep), `${d}-pod-0`);
  }
});

test('cpu-dev for podman: the security settings, volumes and resources are kept; httpGet probes and host ports are the only container changes', () => {
  const kube = toPodmanKube(rendered, { images: { 'nats:2.10-alpine': 'localhost/base' }, secrets: SECRETS });
  const all = kube.stages.flatMap((s) => s.objects);
  const before = new Map(rendered.filter((o) => ['Job', 'Deployment', 'StatefulSet'].includes(o.kind)).map((o) => [o.metadata.name, specOf(o)]));
  for (const w of all.filter((o) => o.kind === 'Pod' || o.kind === 'Deployment')) {
    const orig = [...before.entries()].find(([, s]) => s.containers[0]!.name === specOf(w).containers[0]!.name)![1];
    const spec = specOf(w);
    assert.deepEqual(spec.securityContext, orig.securityContext, `${w.metadata.name}: pod securityContext kept`);
    const c = spec.containers[0]!;
    const oc = orig.containers[0]!;
    assert.deepEqual(c.securityContext, oc.securityContext, `${w.metadata.name}: container securityContext kept (read-only root, no privilege escalation, no capabilities)`);
    assert.deepEqual(c.volumeMounts, oc.volumeMounts, `${w.metadata.name}: mounts kept`);
    assert.equal(c.livenessProbe, undefined);
    assert.equal(c.readinessProbe, undefined);
    assert.equal(c.startupProbe, undefined);
    assert.equal(c.ports, undefined, 'podman would publish them on the host');
    const rest = (x: typeof c) => ({ ...x, livenessProbe: undefined, readinessProbe: undefined, startupProbe: undefined, image: undefined, ports: undefined });
    assert.deepEqual(rest(c), rest(oc));
  }
  const natsPod = find(all, 'Pod', 'recovery-grpo-nats')!;
  assert.equal(specOf(natsPod).containers[0]!.image, 'localhost/base', 'the NATS image renamed');
  assert.equal(specOf(find(all, 'Pod', 'recovery-grpo-orchestrator')!).containers[0]!.image, 'recovery-grpo:0.1.0', 'the app image as the overlay set it');
  // The volumeClaimTemplate -> a claim named as Kubernetes names it, mounted where the template was.
  const claim = find(all, 'PersistentVolumeClaim', 'data-recovery-grpo-nats-0');
  assert.ok(claim, 'data-recovery-grpo-nats-0');
  assert.deepEqual(specOf(natsPod).volumes!.find((v) => v.name === 'data'), { name: 'data', persistentVolumeClaim: { claimName: 'data-recovery-grpo-nats-0' } });
  // Every change is listed.
  const kinds = new Set(kube.changes.map((c) => c.kind));
  for (const k of ['Job', 'StatefulSet', 'Service', 'ServiceAccount', 'PodDisruptionBudget', 'NetworkPolicy']) assert.ok(kinds.has(k), `a change recorded for ${k}`);
});

test('cpu-dev for podman: NATS plays first with its ConfigMap, claim and certificate; the rest gets the run ConfigMap and the secrets, each once', () => {
  const kube = toPodmanKube(rendered, { secrets: SECRETS });
  assert.deepEqual(kube.stages.map((s) => s.name), ['stateful', 'run']);
  const [first, second] = kube.stages;
  assert.deepEqual(first!.objects.map((o) => o.kind).sort(), ['ConfigMap', 'ConfigMap', 'PersistentVolumeClaim', 'Pod']);
  assert.deepEqual(first!.objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name.replace(/-[a-z0-9]{10}$/, '-HASH')).sort(), ['recovery-grpo-nats-config-HASH', 'recovery-grpo-tls-nats']);
  const cms = second!.objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name);
  assert.equal(cms.filter((n) => /^recovery-grpo-config-/.test(n)).length, 1, 'the run configuration, once');
  assert.deepEqual(cms.filter((n) => !/^recovery-grpo-config-/.test(n)).sort(), Object.keys(SECRETS).filter((n) => n !== 'recovery-grpo-tls-nats').sort(), 'every other Secret, once');
  // a Secret's values arrive decoded (as files), its volume a configMap volume with the same items and mode
  const auth = second!.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'recovery-grpo-auth')!;
  assert.equal((auth.data as Record<string, string>).token, TOKEN);
  const orch = second!.objects.find((o) => o.kind === 'Pod' && o.metadata.name === 'recovery-grpo-orchestrator')!;
  const orig = specOfRendered('Job', 'recovery-grpo-orchestrator').volumes!.find((v) => v.name === 'tls')!;
  const { secretName, ...rest } = orig.secret as { secretName: string } & Record<string, unknown>;
  assert.deepEqual(specOf(orch).volumes!.find((v) => v.name === 'tls'), { name: 'tls', configMap: { name: secretName, ...rest } });
  // Every volume a stage's pods use is in that stage or an earlier one.
  const have = new Set<string>();
  for (const s of kube.stages) {
    for (const o of s.objects) have.add(`${o.kind}/${o.metadata.name}`);
    for (const w of s.objects.filter((o) => o.kind === 'Pod' || o.kind === 'Deployment')) {
      for (const v of specOf(w).volumes ?? []) {
        if (v.configMap) assert.ok(have.has(`ConfigMap/${v.configMap.name}`), `${w.metadata.name}: ConfigMap ${v.configMap.name}`);
        assert.equal(v.secret, undefined, `${w.metadata.name}: no secret volume left`);
        if (v.persistentVolumeClaim) assert.ok(have.has(`PersistentVolumeClaim/${v.persistentVolumeClaim.claimName}`), `${w.metadata.name}: claim`);
      }
    }
  }
});

test('podman conversion refuses what it cannot stand in for, naming it', () => {
  assert.throws(() => toPodmanKube(rendered), /Pod recovery-grpo-nats uses ConfigMap recovery-grpo-tls-nats, which is neither rendered nor given/);
  const twoSelected: K8sObject[] = [
    ...rendered.filter((o) => o.kind !== 'Service'),
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'everything' }, spec: { selector: { 'app.kubernetes.io/part-of': 'recovery-grpo' } } },
  ];
  assert.throws(() => toPodmanKube(twoSelected, { secrets: SECRETS }), /Service everything selects 5 workloads/);
  const unknown: K8sObject[] = [...rendered, { apiVersion: 'v1', kind: 'CronJob', metadata: { name: 'nightly' } }];
  assert.throws(() => toPodmanKube(unknown, { secrets: SECRETS }), /CronJob nightly: no podman counterpart known/);
});

test('every secret volume in every overlay spells out optional (podman kube play 4.3 crashes without it)', () => {
  for (const overlay of RUN_OVERLAYS) {
    for (const o of renderKustomization(`${ROOT}${overlay}`).filter((x) => ['Job', 'Deployment', 'StatefulSet'].includes(x.kind))) {
      for (const v of specOf(o).volumes ?? []) {
        if (v.secret) assert.equal(typeof (v.secret as { optional?: unknown }).optional, 'boolean', `${overlay}: ${o.kind} ${o.metadata.name} volume ${v.name}`);
      }
    }
  }
});
