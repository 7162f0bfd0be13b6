// The run overlays under k8s/overlays, found on disk: the tests that hold for every run overlay cover a new one
// without being told (test/k8s/manifests.test.ts names each, with what it expects of its GPUs).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig, parseConfigText, type RunConfig } from '../../lib/config/index.ts';
import type { K8sObject } from './kustomize.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Repository-relative paths, sorted: k8s/overlays/cpu-dev, ... */
export const RUN_OVERLAYS: readonly string[] = readdirSync(`${ROOT}k8s/overlays`, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => `k8s/overlays/${d.name}`)
  .sort();

/** The run configuration a rendered overlay mounts (its one `recovery-grpo-config` ConfigMap's run.yaml), parsed. */
export function runConfigOf(objs: K8sObject[]): RunConfig {
  const cms = objs.filter((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('recovery-grpo-config'));
  assert.equal(cms.length, 1, 'one run configuration ConfigMap');
  const text = (cms[0]!.data as Record<string, string>)['run.yaml']!;
  return parseConfig(parseConfigText(text, 'run.yaml'), { source: `ConfigMap ${cms[0]!.metadata.name}` });
}

/** The nats.conf a rendered overlay mounts (its `recovery-grpo-nats-config` ConfigMap). */
export function natsConfOf(objs: K8sObject[]): string {
  return (objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('recovery-grpo-nats-config'))!.data as Record<string, string>)['nats.conf']!;
}

/** Where nats.conf has nats-server write its pid (pid_file), as the reloader sidecar and the preStop hook read it. */
export const NATS_PID_FILE = '/var/run/nats/nats.pid';

/**
 * That nats.conf made runnable by a local nats-server (spawnNatsServer with `-c`): its TLS paths pointed at `tls`'s
 * files; host, port and store directory left to spawnNatsServer's flags; the file store's limit fixed; the pid file
 * at `pidFile`, or none.
 */
export function localNatsConf(objs: K8sObject[], tls: { cert: string; key: string; ca: string }, pidFile?: string): string {
  const conf = natsConfOf(objs);
  if (pidFile !== undefined && !conf.includes(`pid_file: ${NATS_PID_FILE}`)) throw new Error(`localNatsConf: nats.conf has no pid_file: ${NATS_PID_FILE}`);
  return conf
    .replace('/etc/nats-tls/tls.crt', tls.cert)
    .replace('/etc/nats-tls/tls.key', tls.key)
    .replace('/etc/nats-tls/ca.crt', tls.ca)
    .replace(`pid_file: ${NATS_PID_FILE}`, pidFile !== undefined ? `pid_file: ${JSON.stringify(pidFile)}` : '')
    .replace(/^\s*(server_name|port|http_port|store_dir|lame_duck_duration|lame_duck_grace_period):.*$/gm, '')
    .replace('$NATS_JS_MAX_FILE_STORE', '1GB');
}
