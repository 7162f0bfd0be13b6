// Rewrites the accounts block of k8s/base/nats.conf from lib/transport/nats-permissions.ts (lib/deploy/k8s-nats-conf.ts:
// natsAccountsBlock with the users the role certificates map to): `node --import tsx scripts/gen-nats-conf.ts`. test/k8s/security.test.ts
// fails while the file holds anything else.
//
// The grants name one run, so a role's certificate creates and writes only that run's streams: by default the run of
// k8s/base/run.yaml (`run.id`), refused while an overlay's run.yaml names another (every overlay mounts the base's
// nats.conf); `--overlay <dir>` reads the run.yaml that overlay mounts (its own, else the one it builds on);
// `--run=<id>` names the run; `--any-run` writes the grants for every run (wildcards: any stream name), for a server
// that serves several runs with the same certificates, where one run's learner may then write another's checkpoints
// (docs/security.md). `--print` writes the accounts block to stdout instead (and which run it names to stderr), for a
// nats-server outside Kubernetes that maps role certificates the same way (`include` it beside
// `tls { ... verify_and_map: true }`: README, "Running it distributed").
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { k8sNatsAccounts, natsConfRun, withNatsAccounts } from '../lib/deploy/k8s-nats-conf.ts';

const USAGE = 'use --run=<id>, --overlay <dir>, --any-run, --print';
const args = process.argv.slice(2);
let overlay: string | undefined;
let run: string | undefined;
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--overlay' || a.startsWith('--overlay=')) {
    overlay = a === '--overlay' ? args[++i] : a.slice('--overlay='.length);
    if (!overlay) throw new Error(`gen-nats-conf: --overlay needs a directory (${USAGE})`);
  } else if (a.startsWith('--run=')) run = a.slice('--run='.length);
  else if (a !== '--any-run' && a !== '--print') throw new Error(`gen-nats-conf: unknown argument ${JSON.stringify(a)} (${USAGE})`);
}
const chosen = natsConfRun(fileURLToPath(new URL('../k8s', import.meta.url)), { ...(run !== undefined ? { run } : {}), anyRun: args.includes('--any-run'), ...(overlay !== undefined ? { overlay } : {}) });
const named = chosen.run !== undefined ? `run ${chosen.run} (from ${chosen.from})` : 'every run';

if (args.includes('--print')) {
  process.stdout.write(`${k8sNatsAccounts(chosen.run)}\n`);
  process.stderr.write(`gen-nats-conf: the grants name ${named}\n`);
} else {
  const file = fileURLToPath(new URL('../k8s/base/nats.conf', import.meta.url));
  writeFileSync(file, withNatsAccounts(readFileSync(file, 'utf8'), chosen.run, file));
  console.log(`${file}: accounts for ${named}`);
}
