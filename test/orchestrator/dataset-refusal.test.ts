// A run whose training data cannot be opened (a missing folder, a path that is a file, an empty folder) is refused
// by the orchestrator before it touches NATS, as a SetupError (exit 78) naming data.source and the path: no restart
// cures it, so the local run stops at once with the reason (docs/roles.md, "Exit status"). Until round 26 the folder
// was opened after NATS as a plain error (exit 1): the run state was created and the local run restarted the
// orchestrator 5 times before it stopped (review26b, following README's `--set data.source.kind=folder`).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config/index.ts';
import { CONFIG_EXIT_CODE, exitCodeFor, SetupError } from '../../lib/config/setup-error.ts';
import { connectNats } from '../../lib/transport/index.ts';
import { runOrchestrator } from '../../orchestrator/main.ts';
import { startNatsServer } from '../helpers/nats.ts';

const dir = mkdtempSync(join(tmpdir(), 'dataset-refusal-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a folder source that is missing, a file or empty is a SetupError naming data.source and the path, before NATS', { timeout: 60_000 }, async () => {
  const nats = await startNatsServer();
  try {
    writeFileSync(join(dir, 'a-file'), 'not a folder');
    mkdirSync(join(dir, 'empty'));
    const cases = [
      { path: join(dir, 'no-such-folder'), says: /dataset folder does not exist/ },
      { path: join(dir, 'a-file'), says: /not a folder/ },
      { path: join(dir, 'empty'), says: /empty dataset/ },
    ];
    for (const [i, c] of cases.entries()) {
      const runId = `dataset-refusal-${i}`;
      const config = parseConfig({
        run: { id: runId, seed: 1 }, data: { size: 16, source: { kind: 'folder', path: c.path } },
        model: { width: 4, depth: 1 }, sft: { steps: 2, batchSize: 2 }, grpo: { steps: 0 },
      });
      const err = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, log: () => undefined }).then(
        () => assert.fail(`${c.path}: the orchestrator started`),
        (e: unknown) => e as Error,
      );
      assert.ok(err instanceof SetupError, `${c.path}: ${err.name}: ${err.message}`);
      assert.equal(exitCodeFor(err), CONFIG_EXIT_CODE);
      assert.ok(err.message.startsWith('data.source (folder): '), err.message);
      assert.ok(err.message.includes(c.path), err.message);
      assert.match(err.message, c.says);
      // nothing was written to NATS: no run state for this run
      const nc = await connectNats({ url: nats.url, name: 'dataset-refusal-check' });
      try {
        const jsm = await nc.jetstreamManager();
        await assert.rejects(jsm.streams.info(`KV_runstate-${runId}`), /stream not found/i);
      } finally {
        await nc.close();
      }
    }
  } finally {
    await nats.stop();
  }
});
