// Rewrites the accounts block of k8s/base/nats.conf from lib/transport/nats-permissions.ts (natsAccountsBlock, with
// the users the role certificates map to): `node --import tsx scripts/gen-nats-conf.ts`. test/k8s/security.test.ts
// fails while the file holds anything else.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { natsAccountsBlock, NATS_ROLES } from '../lib/transport/nats-permissions.ts';

const file = fileURLToPath(new URL('../k8s/base/nats.conf', import.meta.url));
const conf = readFileSync(file, 'utf8');
const start = conf.indexOf('accounts {\n');
const end = conf.indexOf('\n}\n', start);
if (start < 0 || end < 0) throw new Error(`${file}: no "accounts {" block ending in a "}" line to replace`);
const block = natsAccountsBlock(NATS_ROLES.map((role) => ({ role, user: `spiffe://recovery-grpo/role/${role}` })));
writeFileSync(file, conf.slice(0, start) + block + conf.slice(end + 3));
