// `recovery-grpo import`, run as a user would (the real CLI in a child process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cli } from '../helpers/cli.ts';
import { torchStyleOnnx } from '../import/models.ts';
import type { ImportReport } from '../../lib/import/report.ts';

test('import writes a report: ops, parameters, contract, forward against onnxruntime, gradient check', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'import-cli-'));
  try {
    const file = join(dir, 'net.onnx');
    writeFileSync(file, torchStyleOnnx());
    const { stdout } = await cli('import', '--onnx', file, '--out', join(dir, 'out'), '--height', '8', '--width', '8');
    assert.match(stdout, /contract: image 'input' \[N,3,8,8\]/);
    const r = JSON.parse(readFileSync(join(dir, 'out', 'report.json'), 'utf8')) as ImportReport;
    assert.ok(r.ops.every((o) => o.supported));
    assert.equal(r.ops.find((o) => o.op === 'Conv')?.nodes, 3);
    assert.equal(r.parameters.count, 8 * 27 + 8 + 4 * 8 + 8 * 72 + 8 + 3 * 16 + 3);
    assert.equal(r.parameters.bytes, 4 * r.parameters.count);
    assert.ok(r.forward!.ok && r.gradient!.ok && r.contract.ok);

    // An unsupported op: the report names it and the command fails.
    writeFileSync(file, torchStyleOnnx({ replaceOp: ['LeakyRelu', 'Celu'] }));
    await assert.rejects(cli('import', '--onnx', file, '--out', join(dir, 'bad')), (e: { code: number; stdout: string }) => e.code === 1 && /Celu x1 \(UNSUPPORTED\)/.test(e.stdout));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
