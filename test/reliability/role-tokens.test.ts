// Identity per role (issue #16, probe 1): with a role-token file, a token names the one role (and optionally
// the one worker id) it may connect as. A rollout worker's token cannot open a learner session; unknown tokens
// are refused as before. Real orchestrator, gRPC on 127.0.0.1, real nats-server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../lib/config/index.ts';
import { connectToOrchestrator, parseRoleTokens, type WorkerRole } from '../../lib/transport/index.ts';
import { runOrchestrator, type RunningOrchestrator } from '../../orchestrator/main.ts';
import { startNatsServer, type TestNatsServer } from '../helpers/nats.ts';

const LEARNER = 'learner-token-0123456789abcdef';
const ROLLOUT = 'rollout-token-0123456789abcdef';
const PINNED = 'reward-r0-token-0123456789abcdef';
const FILE = `# role     worker-id  token
learner    *          ${LEARNER}
rollout    *          ${ROLLOUT}
reward     reward-0   ${PINNED}
`;

let nats: TestNatsServer;
let orch: RunningOrchestrator;

before(async () => {
  nats = await startNatsServer();
  const config = parseConfig({ run: { id: 'role-tokens', seed: 1 }, data: { size: 16, source: { kind: 'procedural', count: 16 } }, model: { width: 4, depth: 1 }, sft: { steps: 2, batchSize: 2 }, grpo: { steps: 0 } });
  orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, auth: { roleTokens: parseRoleTokens(FILE, 'test file') }, log: () => {} });
});

after(async () => {
  await orch?.stop();
  await nats?.stop();
});

const connect = (role: WorkerRole, workerId: string, token?: string) =>
  connectToOrchestrator({ address: `127.0.0.1:${orch.port}`, role, workerId, token, capabilities: { device: 'cpu', max_batch: 1, max_in_flight: 1 }, connectTimeoutMs: 5000 });

test('a token connects only as the role (and worker id) it grants', { timeout: 60_000 }, async () => {
  // the grants themselves
  for (const [role, id, token] of [['ROLLOUT', 'rollout-7', ROLLOUT], ['REWARD', 'reward-0', PINNED], ['LEARNER', 'learner-0', LEARNER]] as const) {
    const c = await connect(role, id, token);
    assert.equal(c.welcome.run_id, 'role-tokens');
    await c.close();
  }
  // a rollout token posing as the learner, a pinned token under another worker id
  await assert.rejects(connect('LEARNER', 'impostor', ROLLOUT), /PERMISSION_DENIED.*this credential grants role ROLLOUT, not LEARNER/);
  await assert.rejects(connect('REWARD', 'reward-1', PINNED), /PERMISSION_DENIED.*this credential grants worker id "reward-0", not "reward-1"/);
  await assert.rejects(connect('ROLLOUT', 'r', LEARNER), /PERMISSION_DENIED.*grants role LEARNER, not ROLLOUT/);
  // no token, an unknown one
  await assert.rejects(connect('ROLLOUT', 'r'), /UNAUTHENTICATED/);
  await assert.rejects(connect('ROLLOUT', 'r', 'not-a-granted-token-at-all'), /UNAUTHENTICATED/);
  // the orchestrator still serves
  const ok = await connect('ROLLOUT', 'after', ROLLOUT);
  await ok.close();
});

test('a role-token file with a bad line is refused, naming the line and never the token', () => {
  const cases: Array<[string, RegExp]> = [
    [`admin * ${LEARNER}\n`, /f:1: role "admin" is not one of rollout, reward, learner/],
    [`learner * short\n`, /f:1: the token is shorter than 16 characters/],
    [`learner * ${LEARNER}\n\nrollout * ${LEARNER}\n`, /f:3: the token is already granted on an earlier line/],
    [`learner ${LEARNER}\n`, /f:1: expected "<role> <worker-id\|\*> <token>", got 2 fields/],
    [`# nothing\n`, /f: no grants/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(() => parseRoleTokens(text, 'f'), (e: Error) => {
      assert.match(e.message, pattern);
      assert.ok(!e.message.includes(LEARNER), 'the token is not in the message');
      return true;
    });
  }
});
