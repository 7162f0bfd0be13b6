// The orchestrator's event log held open (lib/log/event-log.ts openEventLog): every line is in the file when
// append returns (a reader, or a kill right after, sees it), after what the file already held, and the file is
// opened once, not once per line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { appendEventLine, checkEventLogWritable, openEventLog, readEvents } from '../../lib/log/event-log.ts';
import { SetupError } from '../../lib/config/setup-error.ts';
import { parseConfig } from '../../lib/config/index.ts';
import { runOrchestrator } from '../../orchestrator/main.ts';

const openFds = () => readdirSync('/proc/self/fd').length;

test('openEventLog: each line readable as soon as append returns, after the existing lines, as appendEventLine writes it; appends after close still land', () => {
  const dir = mkdtempSync(join(tmpdir(), 'event-log-'));
  try {
    const f = join(dir, 'events.jsonl');
    writeFileSync(f, `${JSON.stringify({ t: 1, type: 'trained', seq: 1 })}\n`);
    const log = openEventLog(f);
    for (let i = 0; i < 5; i++) {
      log.append({ type: 'rollout', sample: `s${i}`, text: 'é\n"' });
      const events = readEvents(f);
      assert.equal(events.length, i + 2, 'the line is in the file before close');
      assert.deepEqual({ ...events.at(-1), t: 0 }, { t: 0, type: 'rollout', sample: `s${i}`, text: 'é\n"' });
    }
    log.close();
    log.append({ type: 'dropped', sample: 'late', reason: 'x' });
    // byte for byte the lines appendEventLine writes (the time aside)
    const g = join(dir, 'reference.jsonl');
    writeFileSync(g, `${JSON.stringify({ t: 1, type: 'trained', seq: 1 })}\n`);
    for (let i = 0; i < 5; i++) appendEventLine(g, { type: 'rollout', sample: `s${i}`, text: 'é\n"' });
    appendEventLine(g, { type: 'dropped', sample: 'late', reason: 'x' });
    const strip = (s: string) => s.replace(/"t":\d+/g, '"t":0');
    assert.equal(strip(readFileSync(f, 'utf8')), strip(readFileSync(g, 'utf8')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('openEventLog: the file is opened once for all its lines (not opened and closed per line), and closed by close', { skip: !existsSync('/proc/self/fd') && 'no /proc/self/fd' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'event-log-'));
  try {
    const log = openEventLog(join(dir, 'events.jsonl'));
    const before = openFds();
    log.append({ type: 'first' });
    assert.equal(openFds(), before + 1, 'one descriptor held after the first line');
    for (let i = 0; i < 50; i++) log.append({ type: 'more', i });
    assert.equal(openFds(), before + 1, 'still the one');
    log.close();
    assert.equal(openFds(), before);
    assert.equal(readEvents(join(dir, 'events.jsonl')).length, 51);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an event log that cannot be written is refused at start, naming it, before the orchestrator dials NATS', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'event-log-'));
  try {
    const f = join(dir, 'events.jsonl');
    checkEventLogWritable(f, '--events');
    assert.equal(readFileSync(f, 'utf8'), '', 'created, empty');
    const bad = join(dir, 'missing', 'events.jsonl');
    assert.throws(() => checkEventLogWritable(bad, '--events'), (e: unknown) => e instanceof SetupError && /^--events .*missing\/events\.jsonl: cannot open it for appending \(ENOENT\)$/.test(e.message));
    // NATS at an address nothing listens on: a refusal after dialling would be a connection error instead
    const config = parseConfig({ run: { id: 'events-check' }, data: { source: { kind: 'procedural', count: 8 }, size: 16 }, model: { width: 4, depth: 1 } });
    await assert.rejects(runOrchestrator({ config, listen: '127.0.0.1:0', natsUrl: 'nats://127.0.0.1:1', metricsPort: 0, eventsFile: bad, log: () => undefined }),
      (e: unknown) => e instanceof SetupError && /^eventsFile .*: cannot open it for appending \(ENOENT\)$/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
