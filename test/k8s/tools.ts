// External programs the k8s tests run: promtool and prometheus (Debian's prometheus package, installed by
// scripts/ensure-prometheus.sh), nats-server (scripts/ensure-nats-server.sh), kubectl (optional: cross-checks the
// offline kustomize renderer when present).
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return r.status === 0 && path ? path : undefined;
}

/**
 * The path of a required program. Missing: the test fails with how to install it, except on a machine without
 * apt-get and outside CI (say, a developer's Mac), where it is skipped with that message instead.
 */
export function requireTool(t: TestContext, name: string, install = 'bash scripts/ensure-prometheus.sh'): string | undefined {
  const path = which(name);
  if (path) return path;
  const msg = `${name} is not installed: run \`${install}\` (Debian package; see docs/monitoring.md)`;
  if (!process.env.CI && !which('apt-get')) {
    t.skip(`${msg}; skipped: no apt-get on this machine`);
    return undefined;
  }
  throw new Error(msg);
}

export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): { code: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs ?? 60_000 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}
