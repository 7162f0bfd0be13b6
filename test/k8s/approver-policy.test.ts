// cert-manager approver-policy for the per-pod certificates (k8s/components/approver-policy; docs/kubernetes.md,
// "Restricting what the Issuer signs"): the CA Issuer recovery-grpo-ca signs only what the per-pod-identity volumes ask
// for. Checked here without a cluster:
//  - the component renders over every run overlay with per-pod-identity (this renderer and kubectl kustomize agree):
//    three CertificateRequestPolicies valid against approver-policy's CRD (test/k8s/schemas.ts), named and selecting
//    the run's namespace, and a Role and RoleBinding there letting the csi-driver's ServiceAccount `use` exactly them;
//    two runs in two namespaces get policies of their own; the subject can be patched;
//  - the request each volume makes (its csi attributes as the csi-driver reads them) is approved, by its role's policy
//    only, and requests for anything else are refused, each by a policy field that, loosened, lets it through.
// The evaluator below is ours, written from approver-policy's documented semantics and its source (v0.27.0:
// pkg/internal/approver/allowed, constraints, manager/predicate); approver-policy itself, cert-manager and the
// csi-driver were not run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { parseK8sYaml, renderKustomization, type K8sObject } from './kustomize.ts';
import { certificateRequestPolicySchema, validateK8sObject, type CertificateRequestPolicy } from './schemas.ts';
import { RUN_OVERLAYS } from './overlays.ts';
import { run, which } from './tools.ts';
import { roleUri } from '../../lib/transport/cert-identity.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PER_POD = join(ROOT, 'k8s/components/per-pod-identity');
const APPROVER = join(ROOT, 'k8s/components/approver-policy');
const CSI = 'csi.cert-manager.io';
/** The run overlays' namespace. */
const RUN_NAMESPACE = 'recovery-grpo';
/** The csi-driver's ServiceAccount as its Helm chart names it, the creator of every pod's CertificateRequest. */
const CSI_DRIVER_USER = 'system:serviceaccount:cert-manager:cert-manager-csi-driver';
/** component label -> role; a pod name of each as its controller names pods (Deployment: hash and suffix; Job: suffix). */
const WORKERS = [
  { comp: 'rollout-worker', role: 'rollout', pod: 'recovery-grpo-rollout-worker-6d5f7c9b8-x2x4z' },
  { comp: 'reward-worker', role: 'reward', pod: 'recovery-grpo-reward-worker-7b8c9d6f5-q9w8e' },
  { comp: 'learner', role: 'learner', pod: 'recovery-grpo-learner-k7p2m' },
] as const;
const ROLES = WORKERS.map((w) => w.role);

// ---------------------------------------------------------------------------------------------------------------
// Rendering

interface Layout {
  /** the run's namespace: set in a kustomization below the one listing the components (docs/kubernetes.md), or beside them */
  namespace?: { name: string; where: 'below' | 'beside' };
  /** appended to the kustomization listing the components */
  extra?: string;
}

/** A kustomization in a temporary folder: `overlay` (repository-relative) with per-pod-identity and approver-policy. */
function withComponents(overlay: string, layout: Layout = {}): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'rg-approver-'));
  // kustomize takes only relative paths to other kustomizations
  let resource = relative(dir, join(ROOT, overlay));
  if (layout.namespace?.where === 'below') {
    mkdirSync(join(dir, 'run'));
    writeFileSync(join(dir, 'run', 'kustomization.yaml'), `namespace: ${layout.namespace.name}\nresources:\n  - ${relative(join(dir, 'run'), join(ROOT, overlay))}\n`);
    resource = 'run';
  }
  const ns = layout.namespace?.where === 'beside' ? `namespace: ${layout.namespace.name}\n` : '';
  writeFileSync(join(dir, 'kustomization.yaml'), `${ns}resources:\n  - ${resource}\ncomponents:\n  - ${relative(dir, PER_POD)}\n  - ${relative(dir, APPROVER)}\n${layout.extra ?? ''}`);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function render(overlay: string, layout: Layout = {}): K8sObject[] {
  const k = withComponents(overlay, layout);
  try {
    return renderKustomization(k.dir);
  } finally {
    k.cleanup();
  }
}

/** The same overlay with per-pod-identity only, as per-pod-identity.test.ts renders it. */
function renderPerPodOnly(overlay: string): K8sObject[] {
  const dir = mkdtempSync(join(tmpdir(), 'rg-approver-'));
  try {
    writeFileSync(join(dir, 'kustomization.yaml'), `resources:\n  - ${relative(dir, join(ROOT, overlay))}\ncomponents:\n  - ${relative(dir, PER_POD)}\n`);
    return renderKustomization(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface PolicyRule { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[] }
interface Subject { kind: string; name: string; namespace?: string; apiGroup?: string }
interface Role { kind: 'Role'; metadata: { name: string; namespace?: string }; rules: PolicyRule[] }
interface RoleBinding { kind: 'RoleBinding'; metadata: { name: string; namespace?: string }; roleRef: { apiGroup: string; kind: string; name: string }; subjects: Subject[] }
interface Rbac { roles: Role[]; bindings: RoleBinding[] }

const policiesOf = (objs: K8sObject[]): CertificateRequestPolicy[] => objs.filter((o) => o.kind === 'CertificateRequestPolicy').map((o) => certificateRequestPolicySchema.parse(o));
function rbacOf(objs: K8sObject[]): Rbac {
  // cluster-wide grants would bind in every namespace: none is made here, and the evaluator models none
  assert.deepEqual(objs.filter((o) => ['ClusterRole', 'ClusterRoleBinding'].includes(o.kind)).map((o) => o.metadata.name), [], 'no cluster-wide RBAC');
  return {
    roles: objs.filter((o) => o.kind === 'Role') as unknown as Role[],
    bindings: objs.filter((o) => o.kind === 'RoleBinding') as unknown as RoleBinding[],
  };
}
const workloadOf = (objs: K8sObject[], comp: string): K8sObject =>
  objs.find((o) => ['Deployment', 'Job'].includes(o.kind) && o.metadata.labels?.['app.kubernetes.io/component'] === comp)!;
type PodTemplate = { template: { spec: { volumes: { name: string; csi?: { volumeAttributes: Record<string, string> } }[] } } };
/** The csi volume attributes of a worker's pod (per-pod-identity's `tls` volume), unexpanded. */
const tlsAttributes = (objs: K8sObject[], comp: string): Record<string, string> =>
  (workloadOf(objs, comp).spec as PodTemplate).template.spec.volumes.find((v) => v.name === 'tls')!.csi!.volumeAttributes;
const policyNames = (ns: string) => ROLES.map((r) => `recovery-grpo-${r}.${ns}`);

// ---------------------------------------------------------------------------------------------------------------
// The request a csi-driver volume makes (cert-manager/csi-driver pkg/requestgen and pkg/apis/defaults)

/** A CertificateRequest as approver-policy sees it: its CSR's subject and SANs, its spec, its creator. */
interface CertRequest {
  namespace: string;
  username: string;
  issuerRef: { name: string; kind?: string; group?: string };
  commonName: string;
  dnsNames: string[];
  ipAddresses: string[];
  uris: string[];
  emailAddresses: string[];
  usages: string[];
  isCA: boolean;
  /** spec.duration in seconds; undefined: none */
  duration?: number;
}

/** Go's time.ParseDuration for the units a certificate duration uses, in seconds. */
function goDurationSeconds(d: string): number {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3 };
  let total = 0;
  const rest = d.replace(/([0-9]+(?:\.[0-9]*)?)(ms|h|m|s)/g, (_, n: string, u: string) => {
    total += Number(n) * units[u]!;
    return '';
  });
  assert.ok(rest === '' && d !== '', `duration ${JSON.stringify(d)}: not modelled`);
  return total;
}

/**
 * The request the csi-driver makes for a volume with `attrs` in pod `pod` of `namespace`: ${POD_NAME} expanded, lists
 * split at commas and trimmed, the driver's defaults (issuer kind Issuer, group cert-manager.io, usages digital
 * signature and key encipherment, duration cert-manager's 2160h, not a CA). An attribute this does not model fails the
 * test (add it here).
 */
function requestOfVolume(attrs: Record<string, string>, pod: string, namespace: string): CertRequest {
  const known = ['issuer-name', 'issuer-kind', 'issuer-group', 'common-name', 'uri-sans', 'dns-names', 'ip-sans', 'key-usages', 'duration', 'is-ca', 'fs-group'];
  for (const k of Object.keys(attrs)) assert.ok(known.map((x) => `${CSI}/${x}`).includes(k), `volume attribute ${k}: not modelled by this test's request`);
  const attr = (k: string): string | undefined => {
    const v = attrs[`${CSI}/${k}`];
    if (v === undefined) return undefined;
    assert.ok(!/\$\{(?!POD_NAME\})/.test(v), `${k}: a variable other than \${POD_NAME} is not modelled`);
    return v.replaceAll('${POD_NAME}', pod);
  };
  const list = (k: string): string[] => (attr(k) ? attr(k)!.split(',').map((s) => s.trim()) : []);
  return {
    namespace,
    username: CSI_DRIVER_USER,
    issuerRef: { name: attr('issuer-name')!, kind: attr('issuer-kind') ?? 'Issuer', group: attr('issuer-group') ?? 'cert-manager.io' },
    commonName: attr('common-name') ?? '',
    dnsNames: list('dns-names'),
    ipAddresses: list('ip-sans'),
    uris: list('uri-sans'),
    emailAddresses: [],
    usages: attr('key-usages') !== undefined ? list('key-usages') : ['digital signature', 'key encipherment'],
    isCA: attr('is-ca')?.toLowerCase() === 'true',
    duration: goDurationSeconds(attr('duration') ?? '2160h'),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The evaluator: approver-policy's documented semantics, ours (not approver-policy's code)

/** approver-policy's wildcard: `*` stands for any text (none, and `/`, included); no other special character; "" matches only "". */
function wildcardMatches(pattern: string, s: string): boolean {
  const re = pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${re}$`, 's').test(s);
}

type AllowedString = NonNullable<NonNullable<CertificateRequestPolicy['spec']['allowed']>['commonName']>;
type AllowedSlice = NonNullable<NonNullable<CertificateRequestPolicy['spec']['allowed']>['uris']>;

/** The reasons `policy` refuses `req` (none: it allows it). Throws on a policy field it does not model. */
function refusals(policy: CertificateRequestPolicy, req: CertRequest): string[] {
  const allowed = policy.spec.allowed ?? {};
  const modelled = ['commonName', 'dnsNames', 'ipAddresses', 'uris', 'emailAddresses', 'isCA', 'usages'];
  for (const k of Object.keys(allowed)) assert.ok(modelled.includes(k), `${policy.metadata.name}: allowed.${k} is not modelled by this evaluator`);
  for (const k of Object.keys(policy.spec.constraints ?? {})) assert.ok(['minDuration', 'maxDuration'].includes(k), `${policy.metadata.name}: constraints.${k} is not modelled`);
  assert.equal(policy.spec.plugins, undefined, `${policy.metadata.name}: plugins are not modelled`);
  const out: string[] = [];
  // a value present needs a field that allows it; a field absent allows nothing; required asks for a value
  const str = (name: string, v: string, f: AllowedString | undefined) => {
    assert.equal(f?.validations, undefined, `${name}.validations (CEL) is not modelled`);
    if (v === '') {
      if (f?.required) out.push(`${name} is required`);
    } else if (f?.value === undefined) out.push(`${name} ${JSON.stringify(v)}: no allowed value`);
    else if (!wildcardMatches(f.value, v)) out.push(`${name} ${JSON.stringify(v)} does not match ${JSON.stringify(f.value)}`);
  };
  const slice = (name: string, vs: string[], f: AllowedSlice | undefined) => {
    assert.equal(f?.validations, undefined, `${name}.validations (CEL) is not modelled`);
    if (vs.length === 0) {
      if (f?.required) out.push(`${name} is required`);
    } else if (f?.values === undefined) out.push(`${name} ${JSON.stringify(vs)}: no allowed values`);
    else for (const v of vs) if (!f.values.some((p) => wildcardMatches(p, v))) out.push(`${name} ${JSON.stringify(v)} matches none of ${JSON.stringify(f.values)}`);
  };
  str('commonName', req.commonName, allowed.commonName);
  slice('dnsNames', req.dnsNames, allowed.dnsNames);
  slice('ipAddresses', req.ipAddresses, allowed.ipAddresses);
  slice('uris', req.uris, allowed.uris);
  slice('emailAddresses', req.emailAddresses, allowed.emailAddresses);
  if (req.isCA && allowed.isCA !== true) out.push('isCA');
  // spec.usages: empty is not checked; present, each must match an allowed usage
  if (req.usages.length > 0) {
    const ok = allowed.usages ?? [];
    for (const u of req.usages) if (!ok.some((p) => wildcardMatches(p, u))) out.push(`usage ${JSON.stringify(u)} not allowed`);
  }
  // a duration bound needs a duration, within it (inclusive)
  const { maxDuration, minDuration } = policy.spec.constraints ?? {};
  if (maxDuration !== undefined && (req.duration === undefined || req.duration > goDurationSeconds(maxDuration))) out.push(`duration over ${maxDuration}`);
  if (minDuration !== undefined && (req.duration === undefined || req.duration < goDurationSeconds(minDuration))) out.push(`duration under ${minDuration}`);
  return out;
}

/** Whether `policy` selects `req`: its issuerRef (the request's kind and group defaulted) and namespace selectors. */
function selects(policy: CertificateRequestPolicy, req: CertRequest): boolean {
  const { issuerRef, namespace } = policy.spec.selector;
  const kind = req.issuerRef.kind || 'Issuer';
  const group = req.issuerRef.group || 'cert-manager.io';
  if (issuerRef?.name !== undefined && !wildcardMatches(issuerRef.name, req.issuerRef.name)) return false;
  if (issuerRef?.kind !== undefined && !wildcardMatches(issuerRef.kind, kind)) return false;
  if (issuerRef?.group !== undefined && !wildcardMatches(issuerRef.group, group)) return false;
  assert.equal(namespace?.matchLabels, undefined, 'namespace.matchLabels is not modelled (it needs the namespace\'s labels)');
  if (namespace?.matchNames?.length && !namespace.matchNames.some((n) => wildcardMatches(n, req.namespace))) return false;
  return true;
}

/** RBAC as a SubjectAccessReview answers it for `use` of policy `name` in the request's namespace (Roles only). */
function mayUse(rbac: Rbac, req: CertRequest, name: string): boolean {
  const subjectIs = (s: Subject) =>
    (s.kind === 'ServiceAccount' && req.username === `system:serviceaccount:${s.namespace}:${s.name}`) || (s.kind === 'User' && req.username === s.name);
  const has = (list: string[] | undefined, v: string) => (list ?? []).some((x) => x === v || x === '*');
  return rbac.bindings.some((b) => {
    if (b.metadata.namespace !== req.namespace || b.roleRef.kind !== 'Role' || !b.subjects.some(subjectIs)) return false;
    const role = rbac.roles.find((r) => r.metadata.name === b.roleRef.name && r.metadata.namespace === req.namespace);
    return (role?.rules ?? []).some((r) =>
      has(r.apiGroups, 'policy.cert-manager.io') && has(r.resources, 'certificaterequestpolicies') && has(r.verbs, 'use') && (r.resourceNames === undefined || r.resourceNames.length === 0 || r.resourceNames.includes(name)));
  });
}

type Verdict = { result: 'approved'; by: string } | { result: 'denied'; why: string[] } | { result: 'unprocessed' };

/**
 * approver-policy's review (manager/review.go): the policies that select the request and that its creator may use;
 * none: left unprocessed (neither approved nor denied: cert-manager does not sign it); approved when one of them allows
 * it, else denied. Every policy is taken as Ready.
 */
function review(policies: CertificateRequestPolicy[], rbac: Rbac, req: CertRequest): Verdict {
  const applicable = policies.filter((p) => selects(p, req) && mayUse(rbac, req, p.metadata.name));
  if (applicable.length === 0) return { result: 'unprocessed' };
  const why: string[] = [];
  for (const p of applicable) {
    const r = refusals(p, req);
    if (r.length === 0) return { result: 'approved', by: p.metadata.name };
    why.push(`${p.metadata.name}: ${r.join('; ')}`);
  }
  return { result: 'denied', why };
}

// ---------------------------------------------------------------------------------------------------------------

test('the approver-policy component renders over every run overlay with per-pod-identity: a policy per role and the csi-driver\'s RBAC, in the run\'s namespace', async () => {
  for (const overlay of RUN_OVERLAYS) {
    const objs = render(overlay);
    // it adds its five objects and changes nothing else (per-pod-identity.test.ts validates the rest)
    const key = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;
    const before = renderPerPodOnly(overlay);
    const addedObjs = objs.filter((o) => !before.some((b) => key(b) === key(o)));
    for (const o of addedObjs) await validateK8sObject(o).catch((e: Error) => assert.fail(`${overlay} + components: ${e.message}`));
    const added = addedObjs.map(key).sort();
    assert.deepEqual(added, [
      ...policyNames(RUN_NAMESPACE).map((n) => `CertificateRequestPolicy/${n}`),
      'Role/recovery-grpo-certificate-policies',
      'RoleBinding/recovery-grpo-certificate-policies',
    ].sort(), `${overlay}: the objects the component adds`);
    for (const b of before) assert.deepEqual(objs.find((o) => key(o) === key(b)), b, `${overlay}: ${key(b)} unchanged`);

    const policies = policiesOf(objs);
    for (const p of policies) {
      // cluster-scoped: no namespace of its own; its name and selector carry the run's
      assert.equal(p.metadata.namespace, undefined, `${p.metadata.name}: no metadata.namespace`);
      assert.deepEqual(p.spec.selector, { issuerRef: { name: 'recovery-grpo-ca', kind: 'Issuer', group: 'cert-manager.io' }, namespace: { matchNames: [RUN_NAMESPACE] } }, `${overlay} ${p.metadata.name}: selector`);
    }
    const rbac = rbacOf(objs);
    assert.deepEqual(rbac.roles.map((r) => [r.metadata.namespace, r.rules]), [[RUN_NAMESPACE, [{
      apiGroups: ['policy.cert-manager.io'], resources: ['certificaterequestpolicies'], verbs: ['use'], resourceNames: policyNames(RUN_NAMESPACE),
    }]]], `${overlay}: the Role names exactly the policies`);
    assert.deepEqual(rbac.bindings.map((b) => [b.metadata.namespace, b.roleRef, b.subjects]), [[RUN_NAMESPACE,
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'recovery-grpo-certificate-policies' },
      [{ kind: 'ServiceAccount', name: 'cert-manager-csi-driver', namespace: 'cert-manager' }]]], `${overlay}: the RoleBinding binds the csi-driver`);

    // exactly what the volumes ask: per role, its two URI patterns, its usages, not a CA, its duration at most; nothing else
    for (const w of WORKERS) {
      const p = policies.find((x) => x.metadata.name === `recovery-grpo-${w.role}.${RUN_NAMESPACE}`)!;
      const attrs = tlsAttributes(objs, w.comp);
      assert.equal(attrs[`${CSI}/is-ca`], undefined, `${w.comp}: the volume asks for no CA`);
      assert.deepEqual(p.spec.allowed, {
        commonName: { value: '*' },
        uris: { values: [roleUri(w.role), roleUri(w.role, '*')], required: true },
        usages: attrs[`${CSI}/key-usages`]!.split(',').map((u) => u.trim()),
        isCA: false,
      }, `${overlay} ${p.metadata.name}: allowed`);
      assert.deepEqual(p.spec.constraints, { maxDuration: attrs[`${CSI}/duration`] }, `${overlay} ${p.metadata.name}: at most the volume's duration`);
    }
  }
});

test('two runs in two namespaces get policies of their own; a namespace set beside the components does not reach them', () => {
  const overlay = 'k8s/overlays/gpu';
  const names = (objs: K8sObject[]) => policiesOf(objs).map((p) => [p.metadata.name, p.spec.selector.namespace?.matchNames]).sort();
  const a = render(overlay);
  const b = render(overlay, { namespace: { name: 'team-b', where: 'below' } });
  assert.deepEqual(names(b), policyNames('team-b').map((n) => [n, ['team-b']]).sort());
  // no cluster-scoped name in common: applying one run leaves the other's policies alone, deleting one keeps the other's
  const clusterScoped = (objs: K8sObject[]) => new Set(policiesOf(objs).map((p) => p.metadata.name));
  assert.deepEqual([...clusterScoped(a)].filter((n) => clusterScoped(b).has(n)), []);
  // every namespaced object of run b is in team-b, the RBAC naming team-b's policies
  const elsewhere = b.filter((o) => !['CertificateRequestPolicy', 'Namespace'].includes(o.kind) && o.metadata.namespace !== 'team-b').map((o) => `${o.kind}/${o.metadata.name}`);
  assert.deepEqual(elsewhere, [], 'run b: namespaced objects outside team-b');
  assert.deepEqual(rbacOf(b).roles[0]!.rules[0]!.resourceNames, policyNames('team-b'));
  // and each run's pods are approved by its own policies only (below: the evaluator)
  const pod = WORKERS[0];
  const attrs = (objs: K8sObject[]) => tlsAttributes(objs, pod.comp);
  const reqB = requestOfVolume(attrs(b), pod.pod, 'team-b');
  assert.deepEqual(review(policiesOf(b), rbacOf(b), reqB), { result: 'approved', by: 'recovery-grpo-rollout.team-b' });
  assert.deepEqual(review(policiesOf(a), rbacOf(a), reqB), { result: 'unprocessed' }, 'run a\'s policies do not serve team-b');

  // The documented pitfall: `namespace:` beside `components:` runs after the component, so over a run overlay the
  // workloads move while the policies keep naming and selecting recovery-grpo (kustomize takes the policy for a
  // namespaced kind and gives it a metadata.namespace, which the API server drops for a cluster-scoped one)
  const beside = render(overlay, { namespace: { name: 'team-b', where: 'beside' } });
  assert.equal(workloadOf(beside, 'rollout-worker').metadata.namespace, 'team-b');
  assert.deepEqual(policiesOf(beside).map((p) => [p.metadata.name, p.metadata.namespace, p.spec.selector.namespace?.matchNames]).sort(),
    names(a).map(([n, m]) => [n, 'team-b', m]));
  assert.deepEqual(review(policiesOf(beside), rbacOf(beside), requestOfVolume(attrs(beside), pod.pod, 'team-b')), { result: 'unprocessed' }, 'its pods would get no certificate');
});

test('the requester is a patchable subject: another csi-driver ServiceAccount', () => {
  const extra = `patches:
  - target:
      kind: RoleBinding
      name: recovery-grpo-certificate-policies
    patch: |-
      - op: test
        path: /subjects/0/name
        value: cert-manager-csi-driver
      - op: replace
        path: /subjects/0
        value: {kind: ServiceAccount, name: csi-driver, namespace: security}
`;
  const objs = render('k8s/overlays/cpu-dev', { extra });
  const rbac = rbacOf(objs);
  assert.deepEqual(rbac.bindings[0]!.subjects, [{ kind: 'ServiceAccount', name: 'csi-driver', namespace: 'security' }]);
  const w = WORKERS[2];
  const attrs = tlsAttributes(objs, w.comp);
  const req = requestOfVolume(attrs, w.pod, RUN_NAMESPACE);
  assert.deepEqual(review(policiesOf(objs), rbac, { ...req, username: 'system:serviceaccount:security:csi-driver' }), { result: 'approved', by: `recovery-grpo-learner.${RUN_NAMESPACE}` });
  assert.deepEqual(review(policiesOf(objs), rbac, req), { result: 'unprocessed' }, 'the default subject is no longer bound');
});

test('the evaluator\'s wildcard: `*` is any text, `/` and none included', () => {
  assert.ok(wildcardMatches('spiffe://recovery-grpo/role/rollout/*', 'spiffe://recovery-grpo/role/rollout/pod-a'));
  assert.ok(wildcardMatches('spiffe://recovery-grpo/role/rollout/*', 'spiffe://recovery-grpo/role/rollout/'));
  assert.ok(wildcardMatches('spiffe://recovery-grpo/role/rollout/*', 'spiffe://recovery-grpo/role/rollout/a/b'));
  assert.ok(!wildcardMatches('spiffe://recovery-grpo/role/rollout/*', 'spiffe://recovery-grpo/role/rollout'));
  assert.ok(!wildcardMatches('spiffe://recovery-grpo/role/rollout', 'spiffe://recovery-grpo/role/rollout2'));
  assert.ok(!wildcardMatches('a.c', 'abc'), 'no character but * is special');
  assert.ok(wildcardMatches('*', ''));
  assert.ok(wildcardMatches('', '') && !wildcardMatches('', 'x'));
});

/** One refused request, and the loosening of the policies (or RBAC) that would let it through. */
interface Refusal {
  what: string;
  change: (r: CertRequest) => CertRequest;
  expect: 'denied' | 'unprocessed';
  loosen: (p: CertificateRequestPolicy[], rbac: Rbac) => [CertificateRequestPolicy[], Rbac];
}
const eachPolicy = (f: (p: CertificateRequestPolicy) => void) => (ps: CertificateRequestPolicy[], rbac: Rbac): [CertificateRequestPolicy[], Rbac] => [
  ps.map((p) => {
    const c = structuredClone(p);
    f(c);
    return c;
  }),
  rbac,
];
const allowed = (p: CertificateRequestPolicy) => (p.spec.allowed ??= {});
const learnerUri = roleUri('learner');

const REFUSALS: Refusal[] = [
  { what: 'a DNS SAN spelling the learner role URI (nats-server maps DNS names before URIs)', change: (r) => ({ ...r, dnsNames: [learnerUri] }), expect: 'denied', loosen: eachPolicy((p) => void (allowed(p).dnsNames = { values: ['*'] })) },
  { what: 'an email SAN spelling the learner role URI (mapped first of all)', change: (r) => ({ ...r, emailAddresses: [learnerUri] }), expect: 'denied', loosen: eachPolicy((p) => void (allowed(p).emailAddresses = { values: ['*'] })) },
  { what: 'an IP SAN', change: (r) => ({ ...r, ipAddresses: ['10.0.0.7'] }), expect: 'denied', loosen: eachPolicy((p) => void (allowed(p).ipAddresses = { values: ['*'] })) },
  { what: 'the server DNS names recovery-grpo-orchestrator and recovery-grpo-nats', change: (r) => ({ ...r, dnsNames: ['recovery-grpo-orchestrator', 'recovery-grpo-nats'] }), expect: 'denied', loosen: eachPolicy((p) => void (allowed(p).dnsNames = { values: ['recovery-grpo-*'] })) },
  { what: 'server auth', change: (r) => ({ ...r, usages: [...r.usages, 'server auth'] }), expect: 'denied', loosen: eachPolicy((p) => void allowed(p).usages!.push('server auth')) },
  { what: 'key encipherment (the csi-driver\'s default usages)', change: (r) => ({ ...r, usages: ['digital signature', 'key encipherment'] }), expect: 'denied', loosen: eachPolicy((p) => void allowed(p).usages!.push('key encipherment')) },
  { what: 'a CA', change: (r) => ({ ...r, isCA: true }), expect: 'denied', loosen: eachPolicy((p) => void (allowed(p).isCA = true)) },
  { what: 'the orchestrator\'s role URI (its NATS user)', change: (r) => ({ ...r, uris: [roleUri('orchestrator')] }), expect: 'denied', loosen: eachPolicy((p) => void allowed(p).uris!.values!.push(roleUri('*'))) },
  { what: 'another host\'s role URIs', change: (r) => ({ ...r, uris: r.uris.map((u) => u.replace('spiffe://recovery-grpo/', 'spiffe://other-run/')) }), expect: 'denied', loosen: eachPolicy((p) => void allowed(p).uris!.values!.push('spiffe://*')) },
  {
    what: 'two roles in one certificate (its own and the learner\'s, or the rollout\'s for the learner)',
    change: (r) => ({ ...r, uris: [...r.uris, r.uris[0] === learnerUri ? roleUri('rollout') : learnerUri] }),
    expect: 'denied',
    loosen: eachPolicy((p) => void allowed(p).uris!.values!.push(learnerUri, roleUri('rollout'))),
  },
  { what: 'no URI SAN at all', change: (r) => ({ ...r, uris: [] }), expect: 'denied', loosen: eachPolicy((p) => void (allowed(p).uris!.required = false)) },
  { what: 'a duration over 2160h', change: (r) => ({ ...r, duration: goDurationSeconds('2161h') }), expect: 'denied', loosen: eachPolicy((p) => void (p.spec.constraints!.maxDuration = '8760h')) },
  { what: 'no duration', change: (r) => ({ ...r, duration: undefined }), expect: 'denied', loosen: eachPolicy((p) => void delete p.spec.constraints) },
  { what: 'another issuer in the namespace', change: (r) => ({ ...r, issuerRef: { ...r.issuerRef, name: 'other-ca' } }), expect: 'unprocessed', loosen: eachPolicy((p) => void (p.spec.selector.issuerRef!.name = '*')) },
  { what: 'a ClusterIssuer of the same name', change: (r) => ({ ...r, issuerRef: { ...r.issuerRef, kind: 'ClusterIssuer' } }), expect: 'unprocessed', loosen: eachPolicy((p) => void (p.spec.selector.issuerRef!.kind = '*')) },
  {
    what: 'a request created by someone else (a user who may create CertificateRequests)',
    change: (r) => ({ ...r, username: 'alice' }),
    expect: 'unprocessed',
    loosen: (ps, rbac) => [ps, { ...rbac, bindings: rbac.bindings.map((b) => ({ ...b, subjects: [...b.subjects, { kind: 'User', name: 'alice', apiGroup: 'rbac.authorization.k8s.io' }] })) }],
  },
  {
    what: 'a request in another namespace (its policies select and bind only their own)',
    change: (r) => ({ ...r, namespace: 'team-b' }),
    expect: 'unprocessed',
    // both guards: the selector and the RBAC (each alone still leaves it unprocessed: below)
    loosen: (ps, rbac) => [eachPolicy((p) => void (p.spec.selector.namespace = { matchNames: ['*'] }))(ps, rbac)[0], inNamespace(rbac, 'team-b')],
  },
];
/** rbac with its Roles and RoleBindings also copied into namespace `ns`. */
function inNamespace(rbac: Rbac, ns: string): Rbac {
  const move = <T extends { metadata: { namespace?: string } }>(x: T): T => ({ ...structuredClone(x), metadata: { ...x.metadata, namespace: ns } });
  return { roles: [...rbac.roles, ...rbac.roles.map(move)], bindings: [...rbac.bindings, ...rbac.bindings.map(move)] };
}

test('the policies approve what every per-pod-identity volume requests, by its role\'s policy only, and refuse anything else', () => {
  for (const overlay of RUN_OVERLAYS) {
    const objs = render(overlay);
    const policies = policiesOf(objs);
    const rbac = rbacOf(objs);
    for (const w of WORKERS) {
      const wl = workloadOf(objs, w.comp);
      const attrs = tlsAttributes(objs, w.comp);
      const req = requestOfVolume(attrs, w.pod, wl.metadata.namespace!);
      const id = `${overlay} ${w.comp}`;
      assert.deepEqual(req.uris, [roleUri(w.role), roleUri(w.role, w.pod)], `${id}: the request's URIs`);
      assert.deepEqual(review(policies, rbac, req), { result: 'approved', by: `recovery-grpo-${w.role}.${RUN_NAMESPACE}` }, `${id}: approved`);
      // by its role's policy only: each other role's refuses it
      for (const p of policies.filter((x) => !x.metadata.name.startsWith(`recovery-grpo-${w.role}.`))) assert.notDeepEqual(refusals(p, req), [], `${id}: ${p.metadata.name} refuses it`);

      for (const r of REFUSALS) {
        const bad = r.change(structuredClone(req));
        const verdict = review(policies, rbac, bad);
        assert.equal(verdict.result, r.expect, `${id}: ${r.what}: ${JSON.stringify(verdict)}`);
        // the refusal is the policy's doing: the loosening of one field lets it through
        const [lp, lr] = r.loosen(structuredClone(policies), structuredClone(rbac));
        assert.equal(review(lp, lr, bad).result, 'approved', `${id}: ${r.what}: approved once loosened`);
      }
      // another namespace: each guard alone keeps it out
      const elsewhere = { ...req, namespace: 'team-b' };
      assert.equal(review(eachPolicy((p) => void (p.spec.selector.namespace = { matchNames: ['*'] }))(policies, rbac)[0], rbac, elsewhere).result, 'unprocessed', `${id}: the RBAC binds in ${RUN_NAMESPACE} only`);
      assert.equal(review(policies, inNamespace(rbac, 'team-b'), elsewhere).result, 'unprocessed', `${id}: the selector names ${RUN_NAMESPACE} only`);
    }
  }
});

test('the CertificateRequestPolicy schema is strict (transcribed from approver-policy v0.27.0\'s CRD)', () => {
  const p = policiesOf(render('k8s/overlays/cpu-dev'))[0]!;
  const bad = (change: (x: Record<string, any>) => void, issue: RegExp) => {
    const x = structuredClone(p) as Record<string, any>;
    change(x);
    const r = certificateRequestPolicySchema.safeParse(x);
    assert.ok(!r.success && r.error.issues.some((i) => issue.test(`${i.path.join('.')}: ${i.message}`)), `${issue}: ${JSON.stringify(r.success ? 'accepted' : r.error.issues)}`);
  };
  bad((x) => void (x.spec.allowed.dnsName = { values: ['*'] }), /spec\.allowed: .*dnsName/i);
  bad((x) => void (x.spec.allowed.usages = ['client-auth']), /spec\.allowed\.usages\.0/);
  bad((x) => void (x.spec.constraints.maxDuration = '90d'), /spec\.constraints\.maxDuration: must be a Go duration/);
  bad((x) => void (x.spec.selector = {}), /spec\.selector: at least one of issuerRef, namespace/);
  bad((x) => void (x.spec.allowed.uris.values = 'spiffe://recovery-grpo/role/rollout'), /spec\.allowed\.uris\.values/);
});

test('approver-policy component: kubectl kustomize renders the same objects as test/k8s/kustomize.ts', (t) => {
  const kubectl = which('kubectl');
  if (!kubectl) return t.skip('kubectl is not installed: the component is rendered by test/k8s/kustomize.ts only');
  const layouts: [string, Layout][] = [
    ...RUN_OVERLAYS.map((o): [string, Layout] => [o, {}]),
    ['k8s/overlays/gpu', { namespace: { name: 'team-b', where: 'below' } }],
    ['k8s/overlays/gpu', { namespace: { name: 'team-b', where: 'beside' } }],
  ];
  for (const [overlay, layout] of layouts) {
    const k = withComponents(overlay, layout);
    try {
      const r = run(kubectl, ['kustomize', k.dir], { timeoutMs: 60_000 });
      const id = `${overlay} ${JSON.stringify(layout)}`;
      assert.equal(r.code, 0, `kubectl kustomize ${id}: ${r.out}`);
      const theirs = parseK8sYaml(r.out, 'kubectl kustomize') as K8sObject[];
      const key = (o: K8sObject) => `${o.apiVersion} ${o.kind} ${o.metadata.name}`;
      const mine = new Map(renderKustomization(k.dir).map((o) => [key(o), o]));
      assert.deepEqual([...mine.keys()].sort(), theirs.map(key).sort(), `${id}: same objects`);
      for (const o of theirs) assert.ok(isDeepStrictEqual(mine.get(key(o)), o), `${id}: ${key(o)} differs:\n${JSON.stringify(mine.get(key(o)))}\n${JSON.stringify(o)}`);
    } finally {
      k.cleanup();
    }
  }
});
