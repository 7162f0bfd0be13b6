// The Kubernetes nats.conf's accounts block (k8s/base/nats.conf): natsAccountsBlock with the users the role
// certificates map to (verify_and_map: the role URI is the user), their grants naming `run` (the run id of the
// run.yaml mounted beside it) or every run (`run` undefined: wildcards). scripts/gen-nats-conf.ts rewrites the base's
// block with it; scripts/k8s-ablation.ts gives each ablation run (its own namespace, NATS and run id) its own.
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
