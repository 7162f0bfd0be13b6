// NATS takes renewed TLS files without a restart (k8s/base/nats.yaml's reloader sidecar; docs/kubernetes.md "NATS takes
// renewed certificates"): in every run overlay the sidecar watches exactly the files nats.conf's tls block names, as
// the nats container sees them (same Secret keys), and signals the pid that nats.conf's pid_file writes, on a volume
// both containers share; the pod shares its process namespace and both containers run as the same uid with no
// capability (kill(2) then needs no CAP_KILL); the preStop hook's lame-duck signal finds nats-server by that pid file
// (pid 1 is the pause process). What nats-server does on that signal: test/transport/nats-tls-reload.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderKustomization, type K8sObject } from './kustomize.ts';
import { NATS_PID_FILE, natsConfOf, RUN_OVERLAYS } from './overlays.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Mount { name: string; mountPath: string; readOnly?: boolean; subPath?: string }
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  volumeMounts?: Mount[];
  securityContext?: { runAsUser?: number; runAsGroup?: number; capabilities?: { add?: string[]; drop?: string[] } };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
}
interface Volume { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] }; emptyDir?: unknown }
interface PodSpec { shareProcessNamespace?: boolean; securityContext?: { runAsUser?: number; runAsGroup?: number }; containers: Container[]; volumes: Volume[] }

/** The values of nats.conf's `tls { ... }` block's cert_file, key_file and ca_file, and of the top-level pid_file. */
function natsConfFiles(conf: string): { tls: string[]; pidFile: string | undefined } {
  const block = /^tls\s*\{([^}]*)\}/m.exec(conf);
  assert.ok(block, 'nats.conf has a tls { ... } block');
  const tls = [...block[1]!.matchAll(/^\s*(cert_file|key_file|ca_file)\s*:\s*"?([^"\s#]+)"?/gm)].map((m) => m[2]!);
  const pid = [...conf.matchAll(/^pid_file\s*:\s*"?([^"\s#]+)"?/gm)].map((m) => m[1]!);
  assert.ok(pid.length <= 1, 'one pid_file');
  return { tls, pidFile: pid[0] };
}

/** Go flag-package arguments (`-name=value`, `-name value`, one or two dashes): name -> values in order. */
function goFlags(args: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const m = /^--?([\w-]+)(?:=(.*))?$/.exec(args[i]!);
    assert.ok(m, `argument ${JSON.stringify(args[i])} is a flag`);
    const value = m[2] ?? args[++i];
    assert.ok(value !== undefined, `flag -${m[1]} has a value`);
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), value]);
  }
  return out;
}

/** Which volume, and which file inside it, a path in a container is: its mount (the longest that holds it). */
function fileOf(spec: PodSpec, c: Container, path: string): { volume: Volume; inVolume: string; mount: Mount } {
  const mounts = (c.volumeMounts ?? []).filter((m) => path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length);
  const mount = mounts[0];
  assert.ok(mount, `container ${c.name}: ${path} is on a mount`);
  assert.equal(mount.subPath, undefined, `container ${c.name}: ${path}'s mount has no subPath (the kubelet never updates a subPath mount)`);
  const volume = spec.volumes.find((v) => v.name === mount.name);
  assert.ok(volume, `container ${c.name}: volume ${mount.name}`);
  return { volume, inVolume: posix.relative(mount.mountPath, path), mount };
}

for (const overlay of RUN_OVERLAYS) {
  test(`${overlay}: NATS's reloader watches exactly nats.conf's TLS files, as nats-server reads them, and signals the pid nats.conf writes`, () => {
    const objs = renderKustomization(`${ROOT}${overlay}`);
    const sts = objs.filter((o: K8sObject) => o.kind === 'StatefulSet' && o.metadata.labels?.['app.kubernetes.io/component'] === 'nats');
    assert.equal(sts.length, 1, 'one NATS StatefulSet');
    const spec = (sts[0]!.spec as { template: { spec: PodSpec } }).template.spec;
    const conf = natsConfOf(objs);
    const { tls, pidFile } = natsConfFiles(conf);
    assert.deepEqual([...tls].sort(), ['/etc/nats-tls/ca.crt', '/etc/nats-tls/tls.crt', '/etc/nats-tls/tls.key'], 'nats.conf names a certificate, a key and a CA bundle');
    assert.equal(pidFile, NATS_PID_FILE, 'nats.conf writes a pid file');
    assert.doesNotMatch(conf, /^\s*include\s/m, 'no include: the reloader watches the files given, not what an included file names');

    const [nats, ...sidecars] = spec.containers;
    assert.equal(nats!.name, 'nats');
    assert.deepEqual(sidecars.map((c) => c.name), ['reloader'], 'one sidecar, the reloader');
    const reloader = sidecars[0]!;
    assert.deepEqual(reloader.command, ['nats-server-config-reloader']);
    assert.match(reloader.image, /^natsio\/nats-server-config-reloader:\d+\.\d+\.\d+$/, 'the reloader image, a fixed version');
    const flags = goFlags(reloader.args ?? []);
    assert.deepEqual([...flags.keys()].sort(), ['config', 'pid'], 'only -pid and -config (the rest: the reloader\'s defaults)');
    assert.deepEqual(flags.get('config')!.slice().sort(), [...tls].sort(), 'the reloader watches exactly the tls block\'s files, each once');
    assert.deepEqual(flags.get('pid'), [pidFile], 'the reloader signals the pid nats.conf writes');

    // The files the reloader watches are the ones nats-server reads: the same Secret key of the same volume.
    for (const f of tls) {
      const seen = fileOf(spec, reloader, f);
      const read = fileOf(spec, nats!, f);
      assert.equal(seen.volume, read.volume, `${f}: the same volume in both containers`);
      assert.equal(seen.inVolume, read.inVolume, `${f}: the same file of it`);
      assert.ok(seen.volume.secret, `${f}: from a Secret (the kubelet updates its files in place)`);
      assert.ok(seen.volume.secret.items?.some((it) => it.path === seen.inVolume), `${f}: an item of Secret ${seen.volume.secret.secretName}`);
      assert.equal(seen.mount.readOnly, true, `${f}: read-only in the reloader`);
    }
    // The pid file: written by nats-server, read by the reloader, on one emptyDir.
    const written = fileOf(spec, nats!, pidFile!);
    const read = fileOf(spec, reloader, pidFile!);
    assert.equal(written.volume, read.volume, 'the pid file: the same volume in both containers');
    assert.equal(written.inVolume, read.inVolume);
    assert.ok(written.volume.emptyDir !== undefined, 'the pid file is on an emptyDir');
    assert.notEqual(written.mount.readOnly, true, 'nats-server can write its pid file (read-only root file system)');
    assert.equal(read.mount.readOnly, true, 'the reloader only reads it');

    // Signalling: the reloader sees nats-server's process, as the same uid, with no capability (no CAP_KILL).
    assert.equal(spec.shareProcessNamespace, true, 'the pod shares its process namespace');
    assert.ok(spec.securityContext?.runAsUser !== undefined && spec.securityContext.runAsUser > 0, 'a non-root uid for the pod');
    for (const c of [nats!, reloader]) {
      assert.equal(c.securityContext?.runAsUser ?? spec.securityContext.runAsUser, spec.securityContext.runAsUser, `${c.name}: runs as the pod's uid`);
      assert.deepEqual(c.securityContext?.capabilities, { drop: ['ALL'] }, `${c.name}: no capability`);
    }
    // Lame duck by the pid file: with a shared process namespace nats-server is not pid 1.
    const preStop = nats!.lifecycle?.preStop?.exec?.command ?? [];
    assert.equal(preStop[0], 'nats-server');
    assert.ok(preStop.join(' ').includes(`ldm=${pidFile}`), `preStop signals lame duck by ${pidFile}: ${preStop.join(' ')}`);
    assert.ok(!preStop.some((a) => /=1$/.test(a)), 'not to pid 1');
  });
}
