// TLS by default and least privilege in the Kubernetes manifests (issue #16): every role mounts its own
// certificate and key from its own Secret and passes them for gRPC and NATS, the orchestrator requires client
// certificates, NATS requires TLS and maps each certificate to a per-role user whose permissions are exactly
// lib/transport/nats-permissions.ts's, only the learner mounts the checkpoint signing key, and no secret is in an
// environment variable or an argument. Then the real thing: the Secrets scripts/k8s-secrets.sh --print makes are
// valid certificates naming their roles, and nats-server running the manifests' nats.conf with them refuses a
// rollout worker's checkpoint and accepts the learner's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type ConnectionOptions, type NatsConnection } from 'nats';
import { parseK8sYaml, renderKustomization, type K8sObject } from './kustomize.ts';
import { requireTool, run } from './tools.ts';
import { natsAccountsBlock, NATS_ROLES, type NatsRole } from '../../lib/transport/nats-permissions.ts';
import { certificateGrant, roleUri } from '../../lib/transport/cert-identity.ts';
import { CheckpointStore, sha256Digest } from '../../lib/transport/nats.ts';
import { spawnNatsServer } from '../../lib/transport/nats-server.ts';
import { freePort } from '../helpers/nats.ts';
import { localNatsConf, natsConfOf, RUN_OVERLAYS, runConfigOf } from './overlays.ts';
import { k8sNatsAccounts } from '../../lib/deploy/k8s-nats-conf.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** component label -> the role its certificate names (and its Secret's suffix). */
const ROLE_OF: Record<string, NatsRole> = { orchestrator: 'orchestrator', learner: 'learner', 'rollout-worker': 'rollout', 'reward-worker': 'reward' };
/** Which checkpoint-key Secret each component mounts. */
const CHECKPOINT_KEY: Record<string, string | undefined> = {
  learner: 'recovery-grpo-checkpoint-signing',
  orchestrator: 'recovery-grpo-checkpoint-verify',
  'rollout-worker': 'recovery-grpo-checkpoint-verify',
  'reward-worker': undefined,
};

type Any = Record<string, any>;
const podSpec = (o: K8sObject): Any => (o.spec as Any).template.spec;
const component = (o: K8sObject): string => o.metadata.labels?.['app.kubernetes.io/component'] ?? '';
const args = (c: Any): Map<string, string | true> =>
  new Map((c.args as string[]).filter((a) => a.startsWith('--')).map((a): [string, string | true] => {
    const i = a.indexOf('=');
    return i < 0 ? [a.slice(2), true] : [a.slice(2, i), a.slice(i + 1)];
  }));
/** The Secret and key a file path in a container comes from (a read-only secret mount), or undefined. */
function secretFileOf(w: K8sObject, c: Any, path: string): { secret: string; key: string } | undefined {
  const m = (c.volumeMounts as Any[]).find((x) => path.startsWith(`${x.mountPath}/`));
  if (!m?.readOnly) return undefined;
  const v = podSpec(w).volumes.find((x: Any) => x.name === m.name);
  if (!v?.secret) return undefined;
  const file = path.slice(m.mountPath.length + 1);
  const item = (v.secret.items as Any[] | undefined)?.find((i) => i.path === file);
  return { secret: v.secret.secretName, key: item ? item.key : file };
}

for (const overlay of RUN_OVERLAYS) {
  const objs = renderKustomization(join(ROOT, overlay));
  const workloads = objs.filter((o) => ['Deployment', 'StatefulSet', 'Job'].includes(o.kind));

  test(`${overlay}: every role speaks TLS with its own certificate, from its own Secret`, () => {
    const roles = workloads.filter((w) => component(w) in ROLE_OF);
    assert.equal(roles.length, 4, 'four roles');
    for (const w of roles) {
      const comp = component(w);
      const c = podSpec(w).containers[0] as Any;
      const a = args(c);
      const own = `recovery-grpo-tls-${ROLE_OF[comp]}`;
      for (const flag of ['tls-ca', 'tls-cert', 'tls-key', 'nats-tls-ca', 'nats-tls-cert', 'nats-tls-key']) {
        const path = a.get(flag);
        assert.equal(typeof path, 'string', `${comp}: --${flag}`);
        const from = secretFileOf(w, c, path as string);
        const key = flag.endsWith('ca') ? 'ca.crt' : flag.endsWith('cert') ? 'tls.crt' : 'tls.key';
        assert.deepEqual(from, { secret: own, key }, `${comp}: --${flag} is ${key} of Secret ${own}, on a read-only mount`);
      }
      if (comp === 'orchestrator') assert.equal(a.get('require-client-cert'), true, 'the orchestrator requires client certificates');
      // No other role's certificate is mounted.
      for (const v of podSpec(w).volumes as Any[]) {
        if (v.secret?.secretName?.startsWith('recovery-grpo-tls-')) assert.equal(v.secret.secretName, own, `${comp} mounts only its own certificate`);
      }
    }
    // NATS: TLS with verified, mapped client certificates, from its own Secret.
    const nats = workloads.find((w) => component(w) === 'nats')!;
    const conf = natsConfOf(objs);
    assert.match(conf, /verify_and_map:\s*true/, 'nats.conf maps client certificates to users');
    const nc = podSpec(nats).containers[0] as Any;
    for (const [field, key] of [['cert_file', 'tls.crt'], ['key_file', 'tls.key'], ['ca_file', 'ca.crt']] as const) {
      const path = new RegExp(`${field}:\\s*(\\S+)`).exec(conf)?.[1];
      assert.ok(path, `nats.conf ${field}`);
      assert.deepEqual(secretFileOf(nats, nc, path), { secret: 'recovery-grpo-tls-nats', key }, `nats.conf ${field} is ${key} of Secret recovery-grpo-tls-nats`);
    }
  });

  test(`${overlay}: NATS users are the roles' certificates with exactly the generated permissions, for the overlay's run`, () => {
    // the grants name the run the overlay configures (scripts/gen-nats-conf.ts reads it from k8s/base/run.yaml)
    const run = runConfigOf(objs).run.id;
    const expected = natsAccountsBlock(NATS_ROLES.map((role) => ({ role, user: roleUri(role), run })));
    assert.equal(k8sNatsAccounts(run), expected);
    assert.ok(natsConfOf(objs).includes(expected), `k8s/base/nats.conf holds natsAccountsBlock(...) for run ${run} verbatim (regenerate it: node --import tsx scripts/gen-nats-conf.ts)`);
    assert.doesNotMatch(natsConfOf(objs), /password\s*:/, 'no NATS password anywhere');
  });

  test(`${overlay}: only the learner holds the signing key; no secret in an environment variable or argument`, () => {
    for (const w of workloads) {
      const comp = component(w);
      for (const c of podSpec(w).containers as Any[]) {
        for (const e of (c.env ?? []) as Any[]) {
          assert.ok(!e.valueFrom?.secretKeyRef, `${comp}: env ${e.name} is not read from a Secret (Secrets are files)`);
          if (/TOKEN|PASS|SECRET|_KEY$/i.test(e.name)) assert.fail(`${comp}: env ${e.name} looks like a secret`);
          if (typeof e.value === 'string') assert.doesNotMatch(e.value, /^[0-9a-f]{32,}$|BEGIN .*PRIVATE KEY/i, `${comp}: env ${e.name} holds no secret value`);
        }
        for (const a of (c.args ?? []) as string[]) assert.doesNotMatch(a, /^--(auth-token|nats-pass|nats-token|nats-user)(=|$)(?!.*-file)|BEGIN /, `${comp}: argument ${a}`);
      }
      const keySecrets = (podSpec(w).volumes as Any[]).map((v) => v.secret?.secretName).filter((s) => s?.startsWith('recovery-grpo-checkpoint-'));
      if (!(comp in ROLE_OF)) {
        assert.deepEqual(keySecrets, [], `${comp} mounts no checkpoint key`);
        continue;
      }
      assert.deepEqual(keySecrets, CHECKPOINT_KEY[comp] ? [CHECKPOINT_KEY[comp]] : [], `${comp}: checkpoint key Secret`);
      const c = podSpec(w).containers[0] as Any;
      const env = new Map(((c.env ?? []) as Any[]).map((e) => [e.name, e.value]));
      if (comp === 'learner') {
        assert.deepEqual(secretFileOf(w, c, env.get('RECOVERY_GRPO_CHECKPOINT_KEY_FILE')), { secret: 'recovery-grpo-checkpoint-signing', key: 'learner.key' });
      } else if (CHECKPOINT_KEY[comp]) {
        assert.equal(env.get('RECOVERY_GRPO_CHECKPOINT_KEY_FILE'), undefined, `${comp}: no private key`);
        assert.deepEqual(secretFileOf(w, c, env.get('RECOVERY_GRPO_CHECKPOINT_PUBKEY_FILE')), { secret: 'recovery-grpo-checkpoint-verify', key: 'learner.pub' });
      }
    }
  });
}

test('scripts/k8s-secrets.sh --print makes certificates that name their roles, and the manifests\' NATS enforces them', { timeout: 60_000 }, async (t) => {
  const natsServer = requireTool(t, 'nats-server', 'bash scripts/ensure-nats-server.sh');
  if (!natsServer || !requireTool(t, 'openssl', 'apt-get install openssl')) return;
  const r = run('bash', [join(ROOT, 'scripts/k8s-secrets.sh'), '--print', 'rg-sec']);
  assert.equal(r.code, 0, r.out);
  const secrets = new Map(
    (parseK8sYaml(r.out, 'k8s-secrets.sh --print') as K8sObject[])
      .filter((o) => o.kind === 'Secret')
      .map((o) => [o.metadata.name, Object.fromEntries(Object.entries(o.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))]),
  );
  const dir = mkdtempSync(join(tmpdir(), 'rg-k8s-sec-'));
  const conns: NatsConnection[] = [];
  let server: Awaited<ReturnType<typeof spawnNatsServer>> | undefined;
  try {
    const files = (name: string): { ca: string; cert: string; key: string } => {
      const s = secrets.get(`recovery-grpo-tls-${name}`);
      assert.ok(s, `Secret recovery-grpo-tls-${name}`);
      mkdirSync(join(dir, name));
      const out = { ca: join(dir, name, 'ca.crt'), cert: join(dir, name, 'tls.crt'), key: join(dir, name, 'tls.key') };
      writeFileSync(out.ca, s['ca.crt']!);
      writeFileSync(out.cert, s['tls.crt']!);
      writeFileSync(out.key, s['tls.key']!, { mode: 0o600 });
      return out;
    };
    const ca = new X509Certificate(secrets.get('recovery-grpo-tls-nats')!['ca.crt']!);
    for (const role of NATS_ROLES) {
      const cert = new X509Certificate(secrets.get(`recovery-grpo-tls-${role}`)!['tls.crt']!);
      assert.ok(cert.verify(ca.publicKey), `${role}: signed by the namespace's CA`);
      assert.ok(cert.subjectAltName?.includes(`URI:${roleUri(role)}`), `${role}: names its role`);
      if (role !== 'orchestrator') assert.equal(certificateGrant(cert.subjectAltName)?.role, role.toUpperCase(), `${role}: the orchestrator grants it its role`);
    }
    assert.ok(new X509Certificate(secrets.get('recovery-grpo-tls-orchestrator')!['tls.crt']!).checkHost('recovery-grpo-orchestrator'), 'the orchestrator certificate names its Service');
    // the signing pair: the verify Secret's public key checks what the learner's private key signs
    const msg = randomBytes(32);
    const sig = sign(null, msg, createPrivateKey(secrets.get('recovery-grpo-checkpoint-signing')!['learner.key']!));
    assert.ok(verify(null, msg, createPublicKey(secrets.get('recovery-grpo-checkpoint-verify')!['learner.pub']!), sig));
    assert.equal(Buffer.from(secrets.get('recovery-grpo-auth')!.token!).length, 64);

    // nats-server with the manifests' nats.conf, its paths pointed at the printed Secrets
    const natsFiles = files('nats');
    writeFileSync(join(dir, 'nats.conf'), localNatsConf(renderKustomization(join(ROOT, 'k8s/overlays/cpu-dev')), natsFiles));
    server = await spawnNatsServer({ port: await freePort(), storeDir: join(dir, 'js'), binary: natsServer, extraArgs: ['-c', join(dir, 'nats.conf')] });
    const as = async (role: NatsRole) => {
      const f = files(role);
      // the certificate names the Service, as pods dial it
      const tls = { caFile: f.ca, certFile: f.cert, keyFile: f.key, servername: 'recovery-grpo-nats' } as ConnectionOptions['tls'];
      const nc = await connect({ servers: server!.url, tls, maxReconnectAttempts: 0, name: role });
      conns.push(nc);
      return nc;
    };
    await assert.rejects(connect({ servers: server.url, maxReconnectAttempts: 0 }), 'a client without TLS is refused');
    const runId = runConfigOf(renderKustomization(join(ROOT, 'k8s/overlays/cpu-dev'))).run.id;
    const learnerNc = await as('learner');
    const learner = await CheckpointStore.open(learnerNc, { runId });
    const rollout = await CheckpointStore.open(await as('rollout'), { runId });
    const bytes = randomBytes(2000);
    await learner.put(1, bytes, sha256Digest(bytes));
    assert.equal((await rollout.latest())?.version, 1, 'the rollout worker reads the learner\'s checkpoint');
    await assert.rejects(rollout.put(2, bytes, sha256Digest(bytes)), /Permissions Violation/, 'the rollout worker\'s certificate cannot store a checkpoint');
    assert.equal((await learner.latest())?.version, 1);
    // the grants name the overlay's run: the learner's certificate makes no stream of another run
    await assert.rejects(CheckpointStore.open(learnerNc, { runId: 'k8s-other-run' }), /Permissions Violation/, 'the learner\'s certificate creates another run\'s streams');
  } finally {
    for (const nc of conns) await nc.close().catch(() => undefined);
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
