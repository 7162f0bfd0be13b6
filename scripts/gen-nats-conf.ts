// Rewrites the accounts block of k8s/base/nats.conf from lib/transport/nats-permissions.ts (lib/deploy/k8s-nats-conf.ts:
// natsAccountsBlock with the users the role certificates map to): `node --import tsx scripts/gen-nats-conf.ts`. test/k8s/security.test.ts
// fails while the file holds anything else.
//
// The grants name the run of k8s/base/run.yaml (`run.id`, which every overlay keeps: test/k8s/manifests.test.ts), so a
// role's certificate creates and writes only that run's streams. `--run=<id>` names another run; `--any-run` writes
// the grants for every run (wildcards: any stream name), for a server that serves several runs with the same
// certificates, where one run's learner may then write another's checkpoints (docs/security.md).
// `--print` writes the accounts block to stdout instead, for a nats-server outside Kubernetes that maps role
// certificates the same way (`include` it beside `tls { ... verify_and_map: true }`: README, "Running it distributed").
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../lib/config/index.ts';
import { k8sNatsAccounts, withNatsAccounts } from '../lib/deploy/k8s-nats-conf.ts';

const args = process.argv.slice(2);
for (const a of args) if (a !== '--any-run' && a !== '--print' && !a.startsWith('--run=')) throw new Error(`gen-nats-conf: unknown argument ${JSON.stringify(a)} (use --run=<id>, --any-run, --print)`);
const named = args.find((a) => a.startsWith('--run='))?.slice('--run='.length);
if (named !== undefined && args.includes('--any-run')) throw new Error('gen-nats-conf: --run and --any-run exclude each other');
const run = args.includes('--any-run') ? undefined : named ?? loadConfig(fileURLToPath(new URL('../k8s/base/run.yaml', import.meta.url)), []).run.id;

if (args.includes('--print')) {
  process.stdout.write(`${k8sNatsAccounts(run)}\n`);
} else {
  const file = fileURLToPath(new URL('../k8s/base/nats.conf', import.meta.url));
  writeFileSync(file, withNatsAccounts(readFileSync(file, 'utf8'), run, file));
  console.log(`${file}: accounts for ${run !== undefined ? `run ${run}` : 'every run'}`);
}
