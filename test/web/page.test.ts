// The orchestrator's live page in a real browser: Debian's chromium (scripts/ensure-chromium.sh), headless, driven
// by playwright-core, on a real run in progress (nats-server, the orchestrator and the three worker roles in this
// process, a tiny configuration with an evaluation every 2 versions). Asserts that the curves are drawn from data
// (SVG paths with points), that the evaluation grid PNG loads (naturalWidth > 0) and that the workers are listed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { chromium } from 'playwright-core';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../lib/config/index.ts';
import { silentLogger } from '../../lib/worker/index.ts';
import { runOrchestrator } from '../../orchestrator/main.ts';
import { runLearner } from '../../learner/index.ts';
import { runRolloutWorker } from '../../rollout-worker/index.ts';
import { runRewardWorker } from '../../reward-worker/index.ts';
import { startNatsServer } from '../helpers/nats.ts';
import { requireTool } from '../k8s/tools.ts';

const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

function chromiumPath(t: import('node:test').TestContext): string | undefined {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  return requireTool(t, 'chromium', 'bash scripts/ensure-chromium.sh');
}

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface History {
  state: { phase: string; version: number };
  workers: unknown[];
  points: Array<{ phase: string; reward?: number }>;
  evals: Array<{ version: number }>;
  grid: { version: number } | null;
}

test('web page: live run state, reward and component curves, evaluation grid and workers render in chromium', { timeout: 240_000 }, async (t) => {
  const executablePath = chromiumPath(t);
  if (!executablePath) return;
  const nats = await startNatsServer();
  const profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
  const config = loadConfig(undefined, [
    'run.id=webtest', 'data.source.kind=procedural', 'data.size=16', 'data.source.count=64', 'model.width=4', 'model.depth=1', 'sft.batchSize=4', 'sft.steps=2',
    'grpo.groupSize=4', 'grpo.samplesPerBatch=2', 'grpo.steps=200', 'eval.everyVersions=2', 'eval.samples=6',
    'orchestrator.leaseSeconds=10', 'orchestrator.heartbeatSeconds=1',
  ]);
  // with a metrics token, as on Kubernetes: the page is opened as /#token=... and sends it for its data (round 26)
  const token = randomBytes(32).toString('hex');
  const auth = { headers: { authorization: `Bearer ${token}` } };
  const orch = await runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: nats.url, metricsPort: 0, metricsToken: token, log: () => undefined });
  const common = { orchestrator: orch.address, nats: nats.url, metricsPort: 0, logger: silentLogger };
  const workers = [
    await runLearner({ ...common, workerId: 'learner-web' }),
    await runRolloutWorker({ ...common, workerId: 'rollout-web' }),
    await runRewardWorker({ ...common, workerId: 'reward-web' }),
  ];
  let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
  try {
    // The API first: some GRPO batches and an evaluation with its grid.
    const api = `${orch.metricsUrl}/api/history`;
    const h = await until('GRPO points and an evaluation grid', async () => {
      const j = (await (await fetch(api, auth)).json()) as History;
      return j.points.filter((p) => p.phase === 'grpo' && p.reward !== undefined).length >= 4 && j.evals.length >= 1 && j.grid ? j : undefined;
    }, 180_000);
    assert.equal(h.workers.length, 3);
    assert.equal((await fetch(api)).status, 401, 'the data needs the token');
    const png = await fetch(`${orch.metricsUrl}/api/eval-grid.png`, auth);
    assert.equal(png.headers.get('content-type'), 'image/png');

    context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: CHROMIUM_FLAGS });
    const page = context.pages()[0] ?? (await context.newPage());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const external: string[] = [];
    page.on('request', (r) => {
      // blob: URLs are the page's own (the grid, fetched with the token), not requests
      if (!r.url().startsWith(orch.metricsUrl) && !r.url().startsWith('blob:')) external.push(r.url());
    });
    await page.goto(`${orch.metricsUrl}/#token=${token}`);
    await page.waitForFunction('Number(document.body.dataset.updates || 0) >= 1', undefined, { timeout: 20_000 });
    // The grid image has loaded with real pixels.
    await page.waitForFunction("(() => { const img = document.getElementById('grid'); return !img.hidden && img.complete && img.naturalWidth > 0; })()", undefined, { timeout: 20_000 });
    // A string, not a function: tsx's transform would add helpers (__name) that do not exist in the page.
    const seen = (await page.evaluate(`(() => {
      const pathPoints = (id) => [...document.querySelectorAll('#' + id + ' path.series')].map((p) => (p.getAttribute('d') || '').split(/[ML]/).filter(Boolean).length);
      const img = document.getElementById('grid');
      return {
        reward: pathPoints('chart-reward'),
        components: pathPoints('chart-components'),
        loss: pathPoints('chart-loss'),
        evaluation: pathPoints('chart-eval'),
        componentNames: [...document.querySelectorAll('#chart-components text')].map((x) => x.textContent),
        img: { w: img.naturalWidth, h: img.naturalHeight },
        workers: [...document.querySelectorAll('#workers tbody tr')].map((r) => r.textContent),
        evalRows: document.querySelectorAll('#evaltable tbody tr').length,
        phase: document.getElementById('phase').textContent,
        version: Number(document.getElementById('version').textContent),
      };
    })()`)) as {
      reward: number[]; components: number[]; loss: number[]; evaluation: number[]; componentNames: string[];
      img: { w: number; h: number }; workers: string[]; evalRows: number; phase: string; version: number;
    };
    assert.ok(seen.reward.length >= 1 && seen.reward[0]! >= 4, `reward curve has points: ${JSON.stringify(seen.reward)}`);
    assert.ok(seen.components.length >= 2 && seen.components.every((n) => n >= 4), `component curves: ${JSON.stringify(seen.components)}`);
    assert.ok(seen.componentNames.includes('ssim') && seen.componentNames.includes('clip_cos'));
    assert.ok(seen.loss.some((n) => n >= 2), `loss curve: ${JSON.stringify(seen.loss)}`);
    assert.ok(seen.evaluation.length >= 2 && seen.evaluation.every((n) => n >= 1), `evaluation series: ${JSON.stringify(seen.evaluation)}`);
    assert.ok(seen.img.w > 16 && seen.img.h > 16, `grid image ${seen.img.w}x${seen.img.h}`);
    assert.equal(seen.workers.length, 3, `workers: ${seen.workers.join('; ')}`);
    assert.ok(seen.workers.some((w) => w.includes('rollout-web')));
    assert.ok(seen.evalRows >= 2, 'evaluation table has policy and identity rows');
    assert.equal(seen.phase, 'grpo');
    assert.ok(seen.version >= 4);
    if (process.env.WEB_SCREENSHOT) await page.screenshot({ path: process.env.WEB_SCREENSHOT, fullPage: true });
    assert.deepEqual(errors, [], 'no script errors');
    assert.deepEqual(external, [], 'no request leaves the orchestrator');
    assert.equal(new URL(page.url()).hash, '', 'the token is taken out of the address bar');
    // The evaluation gauges are exported.
    const metrics = await (await fetch(`${orch.metricsUrl}/metrics`, auth)).text();
    assert.match(metrics, /recovery_grpo_eval_reward\{[^}]*policy="policy"[^}]*\} [0-9.]+/);
    assert.match(metrics, /recovery_grpo_eval_reward\{[^}]*policy="identity"[^}]*\} [0-9.]+/);
    assert.match(metrics, /recovery_grpo_eval_policy_version\{[^}]*\} [1-9]/);
  } finally {
    await context?.close().catch(() => undefined);
    await Promise.all(workers.map((w) => w.stop({ graceMs: 500 })));
    await orch.stop();
    await nats.stop();
    rmSync(profile, { recursive: true, force: true });
  }
});
