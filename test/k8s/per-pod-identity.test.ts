// Per-pod identity in Kubernetes (k8s/components/per-pod-identity; docs/security.md, "Per-pod certificates"): every
// rollout, reward and learner pod gets its own certificate from cert-manager's csi-driver, naming its role and its
// pod name, which it passes as its worker id; no pod holds the shared token. Checked here without a cluster:
//  - the component renders over every run overlay (this renderer and kubectl kustomize agree) into pods with the CSI
//    volume, --worker-id from the pod name and no shared-secret TLS or token volume;
//  - certificates of the shape the csi-driver asks cert-manager's CA Issuer for (made here by openssl from the rendered
//    volume attributes, signed by the CA scripts/k8s-secrets.sh --ca-issuer keeps for the Issuer) connect to a real
//    gRPC orchestrator server as their own pod only, also with the shared token beside them, and nats-server running
//    the manifests' nats.conf maps them to their role's user.
// Not verified here: cert-manager and its csi-driver themselves (what they really issue, the files' modes, renewal).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { connect, type ConnectionOptions, type NatsConnection } from 'nats';
import { containersOf, parseK8sYaml, renderKustomization, type K8sObject } from './kustomize.ts';
import { validateK8sObject } from './schemas.ts';
import { localNatsConf, RUN_OVERLAYS, runConfigOf } from './overlays.ts';
import { requireTool, run, which } from './tools.ts';
import { signClientCert } from '../helpers/certs.ts';
import { freePort } from '../helpers/nats.ts';
import { until } from '../helpers/fake-session.ts';
import { certificateGrant, roleUri } from '../../lib/transport/cert-identity.ts';
import { connectToOrchestrator, startOrchestratorServer, type SessionCredential, type ServerAuth, type WorkerRole } from '../../lib/transport/index.ts';
import { CheckpointStore, sha256Digest } from '../../lib/transport/nats.ts';
import { spawnNatsServer } from '../../lib/transport/nats-server.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMPONENT = join(ROOT, 'k8s/components/per-pod-identity');
/** component label -> the role its certificate names */
const WORKER_ROLES: Record<string, 'rollout' | 'reward' | 'learner'> = { 'rollout-worker': 'rollout', 'reward-worker': 'reward', learner: 'learner' };
const CSI = 'csi.cert-manager.io';
/** The namespace of the run overlays' workloads, and of docs/kubernetes.md's my-run. */
const RUN_NAMESPACE = 'recovery-grpo';

type Any = Record<string, any>;
const podSpec = (o: K8sObject): Any => (o.spec as Any).template.spec;
const componentOf = (o: K8sObject): string => o.metadata.labels?.['app.kubernetes.io/component'] ?? '';

/**
 * A kustomization in a temporary folder: `overlay` (repository-relative) with the component, as docs/kubernetes.md's
 * my-run/kustomization.yaml writes it (`namespace: recovery-grpo`); `namespace: false` leaves that line out (a user
 * who omits it).
 */
function withComponent(overlay: string, opts: { namespace?: boolean } = {}): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'rg-per-pod-'));
  // kustomize takes only relative paths to other kustomizations
  const ns = opts.namespace === false ? '' : `namespace: ${RUN_NAMESPACE}\n`;
  writeFileSync(join(dir, 'kustomization.yaml'), `${ns}resources:\n  - ${relative(dir, join(ROOT, overlay))}\ncomponents:\n  - ${relative(dir, COMPONENT)}\n`);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function renderWithComponent(overlay: string, opts: { namespace?: boolean } = {}): K8sObject[] {
  const k = withComponent(overlay, opts);
  try {
    return renderKustomization(k.dir);
  } finally {
    k.cleanup();
  }
}

/** The csi volume's attributes of a worker pod, with ${POD_NAME} as the csi-driver expands it. */
function csiAttributes(objs: K8sObject[], comp: string, podName: string): Record<string, string> {
  const w = objs.find((o) => ['Deployment', 'Job'].includes(o.kind) && componentOf(o) === comp)!;
  const v = (podSpec(w).volumes as Any[]).find((x) => x.name === 'tls')!;
  return Object.fromEntries(Object.entries(v.csi.volumeAttributes as Record<string, string>).map(([k, val]) => [k, val.replaceAll('${POD_NAME}', podName)]));
}

/**
 * The openssl extensions of the certificate cert-manager's CA Issuer signs for a csi-driver volume with `attrs`: the
 * URI SANs in their order, the key usages (digital signature -> keyUsage, client auth -> extendedKeyUsage), CA:FALSE.
 * An attribute this does not model fails the test (add it here).
 */
function issuedExtensions(attrs: Record<string, string>): string {
  const known = ['issuer-name', 'issuer-kind', 'common-name', 'uri-sans', 'key-usages', 'duration', 'fs-group'].map((k) => `${CSI}/${k}`);
  for (const k of Object.keys(attrs)) assert.ok(known.includes(k), `volume attribute ${k}: not modelled by this test's issuer`);
  const usages = attrs[`${CSI}/key-usages`]!.split(',').map((u) => u.trim());
  for (const u of usages) assert.ok(['digital signature', 'client auth'].includes(u), `key usage ${u}: not modelled`);
  const uris = attrs[`${CSI}/uri-sans`]!.split(',').map((u) => `URI:${u.trim()}`).join(',');
  return [
    `subjectAltName=${uris}`,
    'basicConstraints=critical,CA:FALSE',
    ...(usages.includes('digital signature') ? ['keyUsage=critical,digitalSignature'] : []),
    ...(usages.includes('client auth') ? ['extendedKeyUsage=clientAuth'] : []),
  ].join('\n') + '\n';
}

test('the per-pod-identity component renders over every run overlay: CSI certificates naming role and pod, --worker-id from the pod name, no shared secret', async () => {
  for (const overlay of RUN_OVERLAYS) {
    const objs = renderWithComponent(overlay);
    const base = renderKustomization(join(ROOT, overlay));
    for (const o of objs) await validateK8sObject(o).catch((e: Error) => assert.fail(`${overlay} + component: ${e.message}`));
    // every object in the workloads' namespace, the Issuer included (it must sit beside Secret recovery-grpo-ca and
    // the pods that name it), also when the user's kustomization sets no namespace: the component copies it
    for (const [what, rendered] of [['my-run', objs], ['my-run without namespace', renderWithComponent(overlay, { namespace: false })]] as const) {
      const workloads = [...new Set(rendered.filter((o) => ['Deployment', 'Job', 'StatefulSet'].includes(o.kind)).map((o) => o.metadata.namespace))];
      assert.deepEqual(workloads, [RUN_NAMESPACE], `${overlay} ${what}: the workloads' namespace`);
      const elsewhere = rendered.filter((o) => o.kind !== 'Namespace' && o.metadata.namespace !== RUN_NAMESPACE).map((o) => `${o.kind}/${o.metadata.name} (${o.metadata.namespace ?? 'no namespace'})`);
      assert.deepEqual(elsewhere, [], `${overlay} ${what}: objects outside ${RUN_NAMESPACE}`);
    }
    const issuers = objs.filter((o) => o.kind === 'Issuer');
    assert.deepEqual(issuers.map((o) => [o.apiVersion, o.metadata.name, (o.spec as Any).ca.secretName]), [['cert-manager.io/v1', 'recovery-grpo-ca', 'recovery-grpo-ca']]);
    for (const [comp, role] of Object.entries(WORKER_ROLES)) {
      const id = `${overlay} ${comp}`;
      const w = objs.find((o) => ['Deployment', 'Job'].includes(o.kind) && componentOf(o) === comp)!;
      const ps = podSpec(w);
      const c = containersOf(w)[0] as Any;
      // the worker id is the pod's name, from the downward API
      assert.deepEqual((c.args as string[]).filter((a) => a.startsWith('--worker-id')), ['--worker-id=$(POD_NAME)'], `${id}: --worker-id`);
      assert.deepEqual((c.env as Any[]).filter((e) => e.name === 'POD_NAME'), [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }], `${id}: POD_NAME`);
      // its TLS files come from the csi-driver, under the paths the base's flags name
      const tls = (ps.volumes as Any[]).find((v) => v.name === 'tls');
      assert.ok(tls, `${id}: a tls volume`);
      assert.equal(tls.csi?.driver, CSI, `${id}: the tls volume is the csi-driver's`);
      assert.equal(tls.csi.readOnly, true);
      const attrs = tls.csi.volumeAttributes as Record<string, string>;
      assert.equal(attrs[`${CSI}/issuer-name`], 'recovery-grpo-ca');
      assert.equal(attrs[`${CSI}/issuer-kind`], 'Issuer');
      assert.deepEqual(attrs[`${CSI}/uri-sans`]!.split(','), [roleUri(role), roleUri(role, '${POD_NAME}')], `${id}: URI SANs`);
      assert.equal(attrs[`${CSI}/fs-group`], String(ps.securityContext.runAsGroup), `${id}: the key file's group is the pod's`);
      const mount = (c.volumeMounts as Any[]).find((m) => m.name === 'tls');
      assert.ok(mount, `${id}: the tls volume is mounted`);
      for (const flag of ['tls-ca', 'tls-cert', 'tls-key', 'nats-tls-ca', 'nats-tls-cert', 'nats-tls-key']) {
        const file = (c.args as string[]).find((a) => a.startsWith(`--${flag}=`))!.slice(flag.length + 3);
        assert.ok(['ca.crt', 'tls.crt', 'tls.key'].map((f) => `${mount.mountPath}/${f}`).includes(file), `${id}: --${flag} is a file the csi-driver writes (${file})`);
      }
      // the certificate the csi-driver would request for pod "p" grants exactly role and worker id p
      assert.deepEqual(certificateGrant(attrs[`${CSI}/uri-sans`]!.replaceAll('${POD_NAME}', 'p').split(',').map((u) => `URI:${u}`).join(', ')), { role: role.toUpperCase(), workerId: 'p' });
      // everything else of the pod is the overlay's
      const before = base.find((o) => o.kind === w.kind && o.metadata.name === w.metadata.name)!;
      const strip = (o: K8sObject) => {
        const x = structuredClone(o) as Any;
        const p = x.spec.template.spec;
        p.volumes = p.volumes.filter((v: Any) => !['tls', 'auth'].includes(v.name));
        const cc = p.containers[0];
        cc.args = cc.args.filter((a: string) => !/^--(worker-id|auth-token-file)=/.test(a));
        cc.env = cc.env.filter((e: Any) => e.name !== 'POD_NAME');
        cc.volumeMounts = cc.volumeMounts.filter((m: Any) => m.name !== 'auth');
        return x;
      };
      assert.deepEqual(strip(w), strip(before), `${id}: nothing else changed`);
    }
    for (const w of objs.filter((o) => ['Deployment', 'Job', 'StatefulSet'].includes(o.kind))) {
      const ps = podSpec(w);
      const id = `${overlay} ${componentOf(w)}`;
      // no pod holds the shared token; no worker pod a shared TLS Secret
      assert.ok(!(ps.volumes as Any[]).some((v) => v.secret?.secretName === 'recovery-grpo-auth'), `${id}: no shared token volume`);
      for (const c of containersOf(w) as Any[]) assert.ok(!(c.args ?? []).some((a: string) => a.startsWith('--auth-token-file')), `${id}: no --auth-token-file`);
      const tlsSecrets = (ps.volumes as Any[]).map((v) => v.secret?.secretName as string | undefined).filter((s) => s?.startsWith('recovery-grpo-tls-'));
      if (componentOf(w) in WORKER_ROLES) assert.deepEqual(tlsSecrets, [], `${id}: no shared-secret TLS volume`);
      if (componentOf(w) === 'orchestrator') {
        assert.deepEqual(tlsSecrets, ['recovery-grpo-tls-orchestrator'], `${id}: keeps its own certificate`);
        assert.ok((containersOf(w)[0] as Any).args.includes('--require-client-cert'), `${id}: requires client certificates`);
        assert.ok((containersOf(w)[0] as Any).args.includes('--require-worker-identity'), `${id}: requires credentials that pin the worker id`);
      }
      if (componentOf(w) === 'nats') assert.deepEqual(tlsSecrets, ['recovery-grpo-tls-nats'], `${id}: NATS keeps its certificate`);
    }
  }
});

test('the component: kubectl kustomize renders the same objects as test/k8s/kustomize.ts', (t) => {
  const kubectl = which('kubectl');
  if (!kubectl) return t.skip('kubectl is not installed: the component is rendered by test/k8s/kustomize.ts only');
  // with and without the user's namespace line (the component's replacement gives the Issuer the workloads' namespace)
  for (const [overlay, namespace] of RUN_OVERLAYS.flatMap((o) => [[o, true], [o, false]] as const)) {
    const k = withComponent(overlay, { namespace });
    try {
      const r = run(kubectl, ['kustomize', k.dir], { timeoutMs: 60_000 });
      assert.equal(r.code, 0, `kubectl kustomize ${overlay} + component (namespace line: ${namespace}): ${r.out}`);
      const theirs = parseK8sYaml(r.out, 'kubectl kustomize') as K8sObject[];
      const key = (o: K8sObject) => `${o.apiVersion} ${o.kind} ${o.metadata.name}`;
      const mine = new Map(renderKustomization(k.dir).map((o) => [key(o), o]));
      assert.deepEqual([...mine.keys()].sort(), theirs.map(key).sort(), `${overlay}: same objects`);
      for (const o of theirs) assert.ok(isDeepStrictEqual(mine.get(key(o)), o), `${overlay}: ${key(o)} differs:\n${JSON.stringify(mine.get(key(o)))}\n${JSON.stringify(o)}`);
    } finally {
      k.cleanup();
    }
  }
  // a base that no longer has the items the patches check fails the build, naming the check
  const dir = mkdtempSync(join(tmpdir(), 'rg-per-pod-bad-'));
  try {
    mkdirSync(join(dir, 'base'));
    const w = renderKustomization(join(ROOT, 'k8s/base')).find((o) => o.kind === 'Deployment' && o.metadata.name === 'recovery-grpo-rollout-worker')! as Any;
    w.spec.template.spec.containers[0].args.splice(7, 1); // --auth-token-file moved away
    const others = renderKustomization(join(ROOT, 'k8s/base')).filter((o) => ['Job', 'Deployment'].includes(o.kind) && o.metadata.name !== w.metadata.name);
    writeFileSync(join(dir, 'base', 'all.yaml'), [w, ...others].map((o) => JSON.stringify(o)).join('\n---\n'));
    writeFileSync(join(dir, 'base', 'kustomization.yaml'), 'resources:\n  - all.yaml\n');
    writeFileSync(join(dir, 'kustomization.yaml'), `resources:\n  - base\ncomponents:\n  - ${relative(dir, COMPONENT)}\n`);
    assert.throws(() => renderKustomization(dir), /Deployment\/recovery-grpo-rollout-worker: test \/spec\/template\/spec\/containers\/0\/args\/7 failed/);
    assert.notEqual(run(kubectl, ['kustomize', dir], { timeoutMs: 60_000 }).code, 0, 'kubectl kustomize refuses it too');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('per-pod certificates (cert-manager\'s shape, the --ca-issuer CA): the orchestrator binds each to its pod\'s worker id, NATS maps it to its role', { timeout: 90_000 }, async (t) => {
  const natsServer = requireTool(t, 'nats-server', 'bash scripts/ensure-nats-server.sh');
  if (!natsServer || !requireTool(t, 'openssl', 'apt-get install openssl')) return;
  const r = run('bash', [join(ROOT, 'scripts/k8s-secrets.sh'), '--print', '--ca-issuer', 'rg-pp']);
  assert.equal(r.code, 0, r.out);
  const secrets = new Map(
    (parseK8sYaml(r.out, 'k8s-secrets.sh --print --ca-issuer') as K8sObject[])
      .filter((o) => o.kind === 'Secret' && o.metadata.namespace === 'rg-pp')
      .map((o) => [o.metadata.name, Object.fromEntries(Object.entries(o.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))]),
  );
  // the Issuer's CA, the NATS and orchestrator certificates; no shared token, no role-wide worker certificate
  assert.deepEqual([...secrets.keys()].sort(), ['recovery-grpo-ca', 'recovery-grpo-checkpoint-signing', 'recovery-grpo-checkpoint-verify', 'recovery-grpo-metrics', 'recovery-grpo-tls-nats', 'recovery-grpo-tls-orchestrator']);
  assert.deepEqual(Object.keys(secrets.get('recovery-grpo-ca')!).sort(), ['tls.crt', 'tls.key'], 'the CA Issuer reads tls.crt and tls.key');
  assert.equal(secrets.get('recovery-grpo-ca')!['tls.crt'], secrets.get('recovery-grpo-tls-nats')!['ca.crt'], 'the Issuer signs with the CA that NATS and the orchestrator trust');

  const dir = mkdtempSync(join(tmpdir(), 'rg-per-pod-certs-'));
  const conns: NatsConnection[] = [];
  let nats: Awaited<ReturnType<typeof spawnNatsServer>> | undefined;
  try {
    const files = (name: string) => {
      const s = secrets.get(name)!;
      mkdirSync(join(dir, name));
      const out = { ca: join(dir, name, 'ca.crt'), cert: join(dir, name, 'tls.crt'), key: join(dir, name, 'tls.key') };
      writeFileSync(out.ca, s['ca.crt'] ?? s['tls.crt']!);
      writeFileSync(out.cert, s['tls.crt']!);
      writeFileSync(out.key, s['tls.key']!, { mode: 0o600 });
      return out;
    };
    const ca = files('recovery-grpo-ca');
    const orchestrator = files('recovery-grpo-tls-orchestrator');
    const objs = renderWithComponent('k8s/overlays/cpu-dev');
    // a pod's certificate: what the csi-driver requests for the pod's volume, signed by the Issuer's CA
    const podCert = (comp: keyof typeof WORKER_ROLES, pod: string, ext?: string) =>
      signClientCert(dir, { cert: ca.cert, key: ca.key }, pod, pod, ext ?? issuedExtensions(csiAttributes(objs, comp, pod)));
    const podA = podCert('rollout-worker', 'recovery-grpo-rollout-worker-7d9f8-aaaaa');
    let minted: { cert: string; key: string } | undefined;
    const podB = 'recovery-grpo-rollout-worker-7d9f8-bbbbb';
    podCert('rollout-worker', podB);
    const learnerPod = podCert('learner', 'recovery-grpo-learner-ccccc');

    // the orchestrator as the component runs it: mutual TLS, no token, and the rendered --require-worker-identity
    const orchestratorArgs = (containersOf(objs.find((o) => o.kind === 'Job' && componentOf(o) === 'orchestrator')!)[0] as Any).args as string[];
    const requireWorkerIdentity = orchestratorArgs.includes('--require-worker-identity');
    assert.ok(requireWorkerIdentity, 'the rendered orchestrator requires per-worker identities');
    const welcomed: { id: string; credential: SessionCredential }[] = [];
    const serve = (auth: Omit<ServerAuth, 'tls'>) =>
      startOrchestratorServer({
        listen: '127.0.0.1:0',
        auth: { requireWorkerIdentity, ...auth, tls: { cert: orchestrator.cert, key: orchestrator.key, ca: orchestrator.ca, requireClientCert: true } },
        onConnect: async (s) => {
          welcomed.push({ id: `${s.role}/${s.workerId}`, credential: s.credential });
          await s.send({ welcome: { run_id: 'per-pod', config_json: '{}', policy_version: 0, heartbeat_interval_ms: 0 } });
        },
      });
    const hello = (address: string, cert: { cert: string; key: string }, role: WorkerRole, workerId: string, token?: string) =>
      connectToOrchestrator({
        address, role, workerId, token,
        // pods dial the Service by name, which the orchestrator's certificate names
        tls: { ca: orchestrator.ca, cert: cert.cert, key: cert.key, serverName: 'recovery-grpo-orchestrator' },
        capabilities: { device: 'cpu', max_batch: 1, max_in_flight: 1 },
        connectTimeoutMs: 5000,
      });
    const server = await serve({});
    try {
      const c = await hello(server.address, podA, 'ROLLOUT', 'recovery-grpo-rollout-worker-7d9f8-aaaaa');
      await c.close();
      const l = await hello(server.address, learnerPod, 'LEARNER', 'recovery-grpo-learner-ccccc');
      await l.close();
      assert.deepEqual(welcomed.map((w) => w.id), ['ROLLOUT/recovery-grpo-rollout-worker-7d9f8-aaaaa', 'LEARNER/recovery-grpo-learner-ccccc']);
      assert.deepEqual(welcomed.map((w) => [w.credential.kind, w.credential.pinned]), [['cert', true], ['cert', true]], 'each session\'s credential is its pod\'s certificate, pinned');
      assert.notEqual(welcomed[0]!.credential.id, welcomed[1]!.credential.id);
      // pod A presenting pod B's id (a disconnected replica's, say), or another role: refused, naming both
      await assert.rejects(hello(server.address, podA, 'ROLLOUT', podB), new RegExp(`PERMISSION_DENIED.*the client certificate grants worker id "recovery-grpo-rollout-worker-7d9f8-aaaaa", not "${podB}"`));
      await assert.rejects(hello(server.address, podA, 'LEARNER', 'recovery-grpo-rollout-worker-7d9f8-aaaaa'), /PERMISSION_DENIED.*grants role ROLLOUT, not LEARNER/);
      // a certificate whose URIs contradict each other (two roles, two worker ids) is refused, naming them
      const twoRoles = signClientCert(dir, ca, 'two-roles', 'x', `subjectAltName=URI:${roleUri('rollout')},URI:${roleUri('learner', 'x')}\nextendedKeyUsage=clientAuth\n`);
      await assert.rejects(hello(server.address, twoRoles, 'LEARNER', 'x'), /PERMISSION_DENIED.*names 2 roles, ROLLOUT and LEARNER/);
      const twoIds = signClientCert(dir, ca, 'two-ids', 'x', `subjectAltName=URI:${roleUri('rollout', 'a')},URI:${roleUri('rollout', 'b')}\nextendedKeyUsage=clientAuth\n`);
      await assert.rejects(hello(server.address, twoIds, 'ROLLOUT', 'a'), /PERMISSION_DENIED.*names 2 worker ids, "a" and "b"/);
      // review30 F2: a SAN that nats-server could map to another user (it tries email addresses, then DNS names, then
      // URIs with the scheme lower-cased) is refused, naming it, though the two URIs grant rollout pod-a
      const R = roleUri('rollout');
      for (const [name, extra, shown] of [
        ['dns-learner', `DNS.0 = ${roleUri('learner')}`, `DNS SAN "${roleUri('learner')}"`],
        ['email-learner', `email.0 = ${roleUri('learner')}`, `email SAN "${roleUri('learner')}"`],
        ['upper-scheme-learner', 'URI.0 = SPIFFE://recovery-grpo/role/learner', 'URI SAN "SPIFFE://recovery-grpo/role/learner"'],
        ['dns-orchestrator', 'DNS.0 = spiffe://recovery-grpo/role/orchestrator', 'DNS SAN "spiffe://recovery-grpo/role/orchestrator"'],
      ] as const) {
        const c = signClientCert(dir, ca, name, 'pod-a', `subjectAltName=@alt\nextendedKeyUsage=clientAuth\nbasicConstraints=critical,CA:FALSE\n[alt]\n${extra}\nURI.1 = ${R}\nURI.2 = ${R}/pod-a\n`);
        await assert.rejects(hello(server.address, c, 'ROLLOUT', 'pod-a'), (e: Error) => e.message.includes('PERMISSION_DENIED') && e.message.includes(`${shown} spells a spiffe://recovery-grpo/ name`), name);
      }
      // review30 F3: a pod's volume asking for csi.cert-manager.io/is-ca gets a CA certificate from the CA Issuer; the
      // script's CA has pathlen:0, so a leaf minted with it (any role, any id, sent with its chain) is refused
      const podCa = signClientCert(dir, ca, 'pod-ca', 'pod-x', `subjectAltName=URI:${R},URI:${R}/pod-x\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,digitalSignature\n`);
      const leaf = signClientCert(dir, podCa, 'minted', 'anyone', `subjectAltName=URI:${roleUri('learner')},URI:${roleUri('learner', 'anyone')}\nextendedKeyUsage=clientAuth\nbasicConstraints=critical,CA:FALSE\n`);
      writeFileSync(join(dir, 'minted-chain.crt'), readFileSync(leaf.cert, 'utf8') + readFileSync(podCa.cert, 'utf8'));
      minted = { cert: join(dir, 'minted-chain.crt'), key: leaf.key };
      await assert.rejects(hello(server.address, minted, 'LEARNER', 'anyone'), 'a leaf under a CA-flagged pod certificate is refused');
      // a role-wide certificate from the same CA (k8s/base's shape: the role URI only) pins no worker id: refused
      const roleWide = signClientCert(dir, ca, 'role-wide', 'rollout', `subjectAltName=URI:${R}\nextendedKeyUsage=clientAuth\n`);
      await assert.rejects(hello(server.address, roleWide, 'ROLLOUT', podB), /PERMISSION_DENIED.*requires a per-worker identity.*a client certificate without a worker URI/);
      assert.equal(welcomed.length, 2, 'no refused Hello reached the orchestrator');
    } finally {
      await server.close();
    }
    // with the shared token kept beside the certificates (an orchestrator given --auth-token-file): the token adds
    // nothing, the pod's certificate still pins its id
    const TOKEN = 'shared-token-0123456789abcdef';
    const withToken = await serve({ token: TOKEN });
    try {
      await assert.rejects(hello(withToken.address, podA, 'ROLLOUT', podB, TOKEN), /PERMISSION_DENIED.*grants worker id "recovery-grpo-rollout-worker-7d9f8-aaaaa"/);
      const c = await hello(withToken.address, podA, 'ROLLOUT', 'recovery-grpo-rollout-worker-7d9f8-aaaaa', TOKEN);
      await c.close();
      assert.deepEqual([welcomed.at(-1)!.credential.kind, welcomed.at(-1)!.credential.pinned], ['cert', true]);
    } finally {
      await withToken.close();
    }

    // nats-server with the rendered nats.conf (the component leaves it as the overlay's), the script's NATS certificate
    const natsFiles = files('recovery-grpo-tls-nats');
    writeFileSync(join(dir, 'nats.conf'), localNatsConf(objs, natsFiles));
    nats = await spawnNatsServer({ port: await freePort(), storeDir: join(dir, 'js'), binary: natsServer, extraArgs: ['-c', join(dir, 'nats.conf')] });
    const as = async (cert: { cert: string; key: string }, name: string) => {
      const tls = { caFile: natsFiles.ca, certFile: cert.cert, keyFile: cert.key, servername: 'recovery-grpo-nats' } as ConnectionOptions['tls'];
      const nc = await connect({ servers: nats!.url, tls, maxReconnectAttempts: 0, name });
      conns.push(nc);
      return nc;
    };
    const runId = runConfigOf(objs).run.id;
    const learner = await CheckpointStore.open(await as(learnerPod, 'learner'), { runId });
    const rollout = await CheckpointStore.open(await as(podA, 'rollout'), { runId });
    const bytes = randomBytes(2000);
    await learner.put(1, bytes, sha256Digest(bytes));
    assert.equal((await rollout.latest())?.version, 1, 'the rollout pod reads the learner pod\'s checkpoint');
    await assert.rejects(rollout.put(2, bytes, sha256Digest(bytes)), /Permissions Violation/, 'the rollout pod is the ROLLOUT user: it cannot store a checkpoint');
    // the order of the URIs does not matter: nats-server takes the first that names a user
    const reversed = signClientCert(dir, ca, 'reversed', 'r', `subjectAltName=URI:${roleUri('rollout', 'r')},URI:${roleUri('rollout')}\nextendedKeyUsage=clientAuth\n`);
    const rev = await CheckpointStore.open(await as(reversed, 'reversed'), { runId });
    assert.equal((await rev.latest())?.version, 1);
    await assert.rejects(rev.put(2, bytes, sha256Digest(bytes)), /Permissions Violation/);
    // why the role URI is there: a certificate with the worker URI alone names no NATS user
    const workerOnly = signClientCert(dir, ca, 'worker-only', 'w', `subjectAltName=URI:${roleUri('rollout', 'w')}\nextendedKeyUsage=clientAuth\n`);
    await assert.rejects(as(workerOnly, 'worker-only'), /Authorization Violation|AUTHORIZATION_VIOLATION/i);
    // review30 F3: nats-server refuses the leaf minted under a pod's CA certificate too (the CA's pathlen:0)
    // (TLS 1.3: the client learns of the refusal only as a closed connection, which nats.js answers with its connect
    // timeout; the server's log says why)
    const mintedTls = { caFile: natsFiles.ca, certFile: minted!.cert, keyFile: minted!.key, servername: 'recovery-grpo-nats' } as ConnectionOptions['tls'];
    await assert.rejects(connect({ servers: nats.url, tls: mintedTls, maxReconnectAttempts: 0, timeout: 2000, name: 'minted' }), 'NATS refuses a leaf under a CA-flagged pod certificate');
    await until(() => /TLS handshake error: .*path length constraint/.test(nats!.logTail()), 'nats-server logs the minted leaf\'s refusal for its path length');
  } finally {
    for (const nc of conns) await nc.close().catch(() => undefined);
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
