// The Kubernetes nats.conf's accounts block (k8s/base/nats.conf): natsAccountsBlock with the users the role
// certificates map to (verify_and_map: the role URI is the user), their grants naming `run` (the run id of the
// run.yaml mounted beside it) or every run (`run` undefined: wildcards). scripts/gen-nats-conf.ts rewrites the base's
// block with it; scripts/k8s-ablation.ts gives each ablation run (its own namespace, NATS and run id) its own.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../config/index.ts';
import { roleUri } from '../transport/cert-identity.ts';
import { natsAccountsBlock, NATS_ROLES } from '../transport/nats-permissions.ts';

export function k8sNatsAccounts(run: string | undefined): string {
  return natsAccountsBlock(NATS_ROLES.map((role) => ({ role, user: roleUri(role), ...(run !== undefined ? { run } : {}) })));
}

/** `conf` (a nats.conf) with its `accounts { ... }` block, up to the first line that is only "}", replaced. */
export function withNatsAccounts(conf: string, run: string | undefined, source: string): string {
  const start = conf.indexOf('accounts {\n');
  const end = conf.indexOf('\n}\n', start);
  if (start < 0 || end < 0) throw new Error(`${source}: no "accounts {" block ending in a "}" line to replace`);
  return conf.slice(0, start) + k8sNatsAccounts(run) + conf.slice(end + 3);
}

/**
 * The run.yaml a kustomization mounts: its own, else that of the first kustomization under its `resources` that has
 * one (k8s/overlays/gpu-all: gpu's), else undefined.
 */
export function runYamlOf(dir: string): string | undefined {
  if (existsSync(join(dir, 'run.yaml'))) return join(dir, 'run.yaml');
  const file = join(dir, 'kustomization.yaml');
  if (!existsSync(file)) return undefined;
  const resources = (parse(readFileSync(file, 'utf8')) as { resources?: unknown } | null)?.resources;
  for (const r of Array.isArray(resources) ? resources : []) {
    const found = typeof r === 'string' ? runYamlOf(join(dir, r)) : undefined; // a file's run.yaml is never there
    if (found) return found;
  }
  return undefined;
}

/** The run the grants of k8s/base/nats.conf (mounted by every overlay) are written for, and what named it. */
export interface NatsConfRun {
  /** undefined: every run (wildcards). */
  run: string | undefined;
  from: string;
}

/**
 * Which run scripts/gen-nats-conf.ts writes the grants for, under the kustomize tree `k8sDir`: `run` (--run), every
 * run (--any-run), the run.yaml of `overlay` (--overlay), else k8s/base/run.yaml's, which is refused while an
 * overlay of k8s/overlays names another run (its pods would get grants for the base's run and be refused: name it).
 */
export function natsConfRun(k8sDir: string, o: { run?: string; anyRun?: boolean; overlay?: string }): NatsConfRun {
  if ([o.run !== undefined, o.anyRun === true, o.overlay !== undefined].filter(Boolean).length > 1) throw new Error('gen-nats-conf: --run, --any-run and --overlay exclude each other');
  if (o.anyRun) return { run: undefined, from: '--any-run' };
  if (o.run !== undefined) return { run: o.run, from: '--run' };
  const idOf = (file: string) => loadConfig(file, []).run.id;
  if (o.overlay !== undefined) {
    const file = runYamlOf(o.overlay);
    if (!file) throw new Error(`gen-nats-conf: --overlay ${o.overlay}: no run.yaml there nor in a kustomization it builds on`);
    return { run: idOf(file), from: file };
  }
  const base = join(k8sDir, 'base', 'run.yaml');
  const run = idOf(base);
  const overlays = join(k8sDir, 'overlays');
  for (const name of existsSync(overlays) ? readdirSync(overlays).sort() : []) {
    const file = runYamlOf(join(overlays, name));
    const other = file && resolve(file) !== resolve(base) ? idOf(file) : run;
    if (other !== run) {
      throw new Error(`gen-nats-conf: ${file} names run ${other}, ${base} run ${run}; every overlay mounts k8s/base/nats.conf, so say which run it is for: --overlay ${join(overlays, name)} (or --run=<id>)`);
    }
  }
  return { run, from: base };
}
