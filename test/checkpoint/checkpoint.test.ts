import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import fc from 'fast-check';
import {
  canonicalJson, CheckpointError, configHash, decodeCheckpoint, decodeSafetensors, encodeCheckpoint,
  encodeSafetensors, loadCheckpoint, saveCheckpoint, type Checkpoint, type TensorMap,
} from '../../lib/checkpoint/index.ts';

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function assertBitEqual(a: TensorMap, b: TensorMap): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, t] of a) {
    const u = b.get(name)!;
    assert.deepEqual(u.shape, t.shape, `shape of ${name}`);
    assert.deepEqual(bits(u.data), bits(t.data), `bits of ${name}`);
  }
}

/** Deterministic random float32 values from random bit patterns, NaN excluded. */
function randomFloats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  const u = bits(out);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    do {
      s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
      u[i] = s;
    } while (Number.isNaN(out[i]));
  }
  return out;
}

const SPECIALS = new Float32Array([
  0, -0, 1, -1, 1.401298464324817e-45 /* smallest denormal */, -1.401298464324817e-45,
  1.1754942106924411e-38 /* largest denormal */, 1.1754943508222875e-38 /* smallest normal */,
  3.4028234663852886e38, -3.4028234663852886e38, Infinity, -Infinity, Math.fround(Math.PI), Math.fround(1e-40),
]);

function sample(): Checkpoint {
  const params: TensorMap = new Map([
    ['conv1.weight', { shape: [4, 3, 3, 3], data: randomFloats(108, 7) }],
    ['conv1.bias', { shape: [4], data: randomFloats(4, 9) }],
    ['specials', { shape: [2, 7], data: SPECIALS.slice() }],
    ['log_std', { shape: [], data: new Float32Array([Math.fround(Math.log(0.01))]) }],
    ['empty', { shape: [0, 5], data: new Float32Array(0) }],
  ]);
  const m: TensorMap = new Map([...params].map(([k, t]) => [k, { shape: [...t.shape], data: randomFloats(t.data.length, 11) }]));
  const v: TensorMap = new Map([...params].map(([k, t]) => [k, { shape: [...t.shape], data: randomFloats(t.data.length, 13).map(Math.abs) }]));
  return {
    meta: { runId: 'run-α', version: 12, step: 340, lastBatchId: 'batch-000339', configHash: configHash({ a: 1 }), extra: { clip_encoder: 'random-features', note: '' } },
    params,
    optimizer: { step: 340, m, v },
  };
}

/** Hand-build safetensors bytes from a header object (not through the encoder) for the refusal tests. */
function craft(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}
const META = { format: 'recovery-grpo/checkpoint@1', run_id: 'r', version: '1', step: '1', config_hash: 'h' };

function throwsNaming(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${e}`);
    for (const p of parts) {
      if (typeof p === 'string') assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
      else assert.match(e.message, p);
    }
    return true;
  });
}

test('round trip is bit-exact for params, specials, scalars, empty tensors, optimizer state and metadata', () => {
  const ck = sample();
  const { bytes, digest } = encodeCheckpoint(ck);
  assert.equal(digest, createHash('sha256').update(bytes).digest('hex'));
  const back = decodeCheckpoint(bytes, { expectedDigest: digest });
  assertBitEqual(back.params, ck.params);
  assertBitEqual(back.optimizer!.m, ck.optimizer!.m);
  assertBitEqual(back.optimizer!.v, ck.optimizer!.v);
  assert.equal(back.optimizer!.step, 340);
  assert.deepEqual(back.meta, ck.meta);
  assert.equal(back.digest, digest);
  assert.ok(Object.is(back.params.get('specials')!.data[1], -0));
  // Re-encoding the decoded checkpoint gives the same bytes.
  assert.deepEqual(encodeCheckpoint(back).bytes, bytes);
});

test('views: aligned tensors share the decoded bytes (bit-exact), misaligned ones are copies; default copies', () => {
  const ck = sample();
  const { bytes, digest } = encodeCheckpoint(ck);
  const viewed = decodeCheckpoint(bytes, { expectedDigest: digest, views: true });
  assertBitEqual(viewed.params, ck.params);
  assertBitEqual(viewed.optimizer!.m, ck.optimizer!.m);
  for (const t of viewed.params.values()) assert.equal(t.data.buffer, bytes.buffer, 'a view of the bytes');
  for (const t of decodeCheckpoint(bytes).params.values()) assert.notEqual(t.data.buffer, bytes.buffer, 'a copy by default');
  // the same bytes 1 byte into a buffer: no tensor can be an aligned view, so each is a copy with the same bits
  const shifted = new Uint8Array(bytes.length + 1).subarray(1);
  shifted.set(bytes);
  const copied = decodeCheckpoint(shifted, { expectedDigest: digest, views: true });
  assertBitEqual(copied.params, ck.params);
  for (const t of copied.params.values()) assert.notEqual(t.data.buffer, shifted.buffer);
  // a view sees a later write to the bytes (why the learner, which trains in its tensors, takes copies)
  const w = viewed.params.get('conv1.bias')!;
  const before = w.data[0];
  new Float32Array(bytes.buffer, w.data.byteOffset, 1)[0] = 42;
  assert.equal(w.data[0], 42);
  assert.notEqual(before, 42);
});

test('layout follows safetensors: LE u64 length, 8-aligned "{" header, F32 entries, contiguous data', () => {
  const { bytes } = encodeCheckpoint(sample());
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const n = Number(dv.getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  assert.equal(new TextDecoder().decode(bytes.subarray(8, 9)), '{');
  assert.equal(header.__metadata__.version, '12');
  assert.equal(header.__metadata__['extra.clip_encoder'], 'random-features');
  assert.equal(header.__metadata__.optimizer, 'adamw');
  const entries = Object.entries(header).filter(([k]) => k !== '__metadata__') as [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][];
  assert.equal(entries.length, 15);
  entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  let off = 0;
  for (const [name, e] of entries) {
    assert.equal(e.dtype, 'F32');
    assert.equal(e.data_offsets[0], off, name);
    off = e.data_offsets[1];
  }
  assert.equal(8 + n + off, bytes.length);
  // Read one value straight from the bytes, little-endian.
  const spec = header.specials as { data_offsets: [number, number] };
  assert.equal(dv.getFloat32(8 + n + spec.data_offsets[0] + 4 * 12, true), Math.fround(Math.PI));
  assert.ok(header['adam.m.conv1.weight'] && header['adam.v.log_std']);
});

test('a tensor or metadata key named "__proto__" is kept as a key (fast-check found the tensor case)', () => {
  const t: TensorMap = new Map([['__proto__', { shape: [2], data: new Float32Array([1, -2]) }], ['w', { shape: [1], data: new Float32Array([3]) }]]);
  const back = decodeSafetensors(encodeSafetensors(t, { __proto__x: 'a' }));
  assertBitEqual(back.tensors, t);
  const raw = new TextDecoder().decode(encodeSafetensors(t, JSON.parse('{"__proto__": "m"}') as Record<string, string>));
  assert.match(raw, /"__metadata__":\{"__proto__":"m"\}/);
});

test('encoding is deterministic whatever the insertion order', () => {
  const a = sample();
  const b: Checkpoint = { ...a, params: new Map([...a.params].reverse()), meta: { ...a.meta, extra: { note: '', clip_encoder: 'random-features' } } };
  assert.equal(encodeCheckpoint(a).digest, encodeCheckpoint(b).digest);
});

test('property: any float32 values (NaN excluded) and shapes round-trip bit-exactly', () => {
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !s.startsWith('adam.') && s !== '__metadata__'),
      fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 })), { maxLength: 6 }),
    fc.array(fc.float({ noNaN: true }), { minLength: 64, maxLength: 64 }),
    (specs, pool) => {
      const params: TensorMap = new Map();
      for (const [name, shape] of specs) {
        const n = shape.reduce((x, y) => x * y, 1);
        params.set(name, { shape, data: Float32Array.from({ length: n }, (_, i) => pool[i % pool.length]!) });
      }
      const ck: Checkpoint = { meta: { runId: 'p', version: 0, step: 0, lastBatchId: null, configHash: '' }, params };
      const back = decodeCheckpoint(encodeCheckpoint(ck).bytes);
      assertBitEqual(back.params, params);
      assert.equal(back.optimizer, undefined);
      assert.equal(back.meta.lastBatchId, null);
    }), { numRuns: 150 });
});

test('refuses a digest mismatch', () => {
  const { bytes } = encodeCheckpoint(sample());
  throwsNaming(() => decodeCheckpoint(bytes, { expectedDigest: '0'.repeat(64), source: 'v12.safetensors' }), 'v12.safetensors', 'digest mismatch');
});

test('refuses truncated bytes wherever they are cut', () => {
  const { bytes } = encodeCheckpoint(sample());
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  throwsNaming(() => decodeCheckpoint(bytes.subarray(0, 5)), 'truncated');
  throwsNaming(() => decodeCheckpoint(bytes.subarray(0, 8 + n - 3)), 'truncated');
  // Cut inside the data section: the last tensor in file order is named.
  throwsNaming(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 1)), /tensor "[^"]+": data_offsets .* outside the data section/, 'truncated');
});

test('refuses malformed headers', () => {
  const data = new Uint8Array(4);
  throwsNaming(() => decodeCheckpoint(craft(null, data, '{"a": {"dtype": "F32", ')), 'malformed header', 'invalid JSON');
  throwsNaming(() => decodeCheckpoint(craft(null, data, '[1, 2]')), 'malformed header', "'{'");
  throwsNaming(() => decodeCheckpoint(craft({ w: { dtype: 'F32', shape: 'x', data_offsets: [0, 4] } }, data)), 'tensor "w"', 'malformed shape');
  throwsNaming(() => decodeCheckpoint(craft({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, data)), 'tensor "w"', 'malformed data_offsets');
  throwsNaming(() => decodeCheckpoint(craft({ __metadata__: { version: 3 }, w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, data)), 'metadata "version" must be a string');
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 62n, true);
  throwsNaming(() => decodeCheckpoint(huge), 'header length');
});

test('refuses offsets outside the buffer, gaps, overlaps, size mismatches and trailing bytes', () => {
  const eight = new Uint8Array(8);
  throwsNaming(() => decodeCheckpoint(craft({ __metadata__: META, w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, eight)), 'tensor "w"', 'outside the data section of 8 bytes');
  throwsNaming(() => decodeCheckpoint(craft({ __metadata__: META, a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight)), 'tensor "a"', 'gap');
  throwsNaming(() => decodeCheckpoint(craft({ __metadata__: META, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight)), 'tensor "b"', 'overlap');
  throwsNaming(() => decodeCheckpoint(craft({ __metadata__: META, a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, eight)), 'tensor "a"', 'needs 12');
  throwsNaming(() => decodeCheckpoint(craft({ __metadata__: META, a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, eight)), '4 trailing bytes');
  // And the well-formed version of the same passes.
  const ok = decodeCheckpoint(craft({ __metadata__: META, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, eight));
  assert.deepEqual(ok.params.get('a')!.shape, [2]);
});

test('refuses non-F32 dtypes, naming the tensor', () => {
  throwsNaming(() => decodeCheckpoint(craft({ __metadata__: META, 'head.w': { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4))), 'tensor "head.w"', 'F16', 'only F32');
});

test('refuses missing or mistyped metadata, naming the field', () => {
  const w = { dtype: 'F32', shape: [1], data_offsets: [0, 4] };
  const four = new Uint8Array(4);
  throwsNaming(() => decodeCheckpoint(craft({ w }, four)), 'not a recovery-grpo checkpoint');
  throwsNaming(() => decodeCheckpoint(craft({ __metadata__: { ...META, version: '1.5' }, w }, four)), 'metadata "version"', 'non-negative integer');
  const { run_id: _omit, ...noRun } = META;
  throwsNaming(() => decodeCheckpoint(craft({ __metadata__: noRun, w }, four)), 'metadata "run_id" is missing');
  throwsNaming(() => decodeCheckpoint(craft({ __metadata__: { ...META, optimizer: 'adamw', 'optimizer.step': '1' }, w, 'adam.m.w': w }, four)), /tensor "adam\.(m|v)\.w"/);
  throwsNaming(() => decodeCheckpoint(craft({ __metadata__: META, w, 'adam.m.w': { ...w, data_offsets: [4, 8] } }, new Uint8Array(8))), 'metadata "optimizer" is missing');
});

test('expectedShapes: refuses a missing, an extra or a wrongly shaped parameter, naming each', () => {
  const { bytes } = encodeCheckpoint(sample());
  const good = new Map([...sample().params].map(([k, t]) => [k, t.shape]));
  assert.doesNotThrow(() => decodeCheckpoint(bytes, { expectedShapes: good }));
  assert.doesNotThrow(() => decodeCheckpoint(bytes, { expectedShapes: sample().params }));
  const missing = new Map(good).set('conv2.weight', [4, 4, 3, 3]);
  throwsNaming(() => decodeCheckpoint(bytes, { expectedShapes: missing }), 'tensor "conv2.weight" is missing');
  const extra = new Map(good);
  extra.delete('conv1.bias');
  throwsNaming(() => decodeCheckpoint(bytes, { expectedShapes: extra }), 'tensor "conv1.bias" is not an expected parameter');
  throwsNaming(() => decodeCheckpoint(bytes, { expectedShapes: { ...Object.fromEntries(good), 'conv1.weight': [4, 3, 5, 5] } }),
    'tensor "conv1.weight": shape [4, 3, 3, 3], expected [4, 3, 5, 5]');
});

test('encode refuses reserved names and inconsistent optimizer state', () => {
  const ck = sample();
  ck.params.set('adam.m.x', { shape: [1], data: new Float32Array(1) });
  throwsNaming(() => encodeCheckpoint(ck), 'adam.m.x', 'reserved');
  const ck2 = sample();
  ck2.optimizer!.v.delete('conv1.bias');
  throwsNaming(() => encodeCheckpoint(ck2), 'optimizer v."conv1.bias" is missing');
  const ck3 = sample();
  ck3.params.get('conv1.bias')!.data = new Float32Array(3);
  throwsNaming(() => encodeCheckpoint(ck3), 'conv1.bias', 'needs 4 elements');
});

test('saveCheckpoint is atomic, writes <file>.sha256; loadCheckpoint verifies it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ckpt-'));
  try {
    const path = join(dir, 'sub', 'v000012.safetensors');
    const ck = sample();
    const { digest, byteLength } = await saveCheckpoint(path, ck);
    assert.deepEqual((await readdir(join(dir, 'sub'))).sort(), ['v000012.safetensors', 'v000012.safetensors.sha256']);
    assert.equal(await readFile(`${path}.sha256`, 'utf8'), `${digest}  v000012.safetensors\n`);
    const onDisk = await readFile(path);
    assert.equal(onDisk.length, byteLength);
    if (spawnSync('sha256sum', ['--version']).status === 0) {
      execFileSync('sha256sum', ['-c', 'v000012.safetensors.sha256'], { cwd: join(dir, 'sub') });
    }
    const back = await loadCheckpoint(path, { requireDigestFile: true, expectedDigest: digest });
    assertBitEqual(back.params, ck.params);
    assert.equal(back.meta.version, 12);
    // Overwrite in place (a newer save replaces the old file).
    await saveCheckpoint(path, { ...ck, meta: { ...ck.meta, version: 13 } });
    assert.equal((await loadCheckpoint(path)).meta.version, 13);
    // A flipped byte is caught by the sidecar digest.
    const flipped = Buffer.from(await readFile(path));
    flipped[flipped.length - 1]! ^= 1;
    await writeFile(path, flipped);
    await assert.rejects(loadCheckpoint(path), /digest mismatch/);
    await rm(`${path}.sha256`);
    await assert.rejects(loadCheckpoint(path, { requireDigestFile: true }), /digest file .* is missing/);
    await assert.rejects(loadCheckpoint(join(dir, 'nope.safetensors')), /nope\.safetensors: cannot read/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('plain safetensors helpers round-trip metadata and refuse __metadata__ as a tensor name', () => {
  const t: TensorMap = new Map([['x', { shape: [2], data: new Float32Array([1, 2]) }]]);
  const back = decodeSafetensors(encodeSafetensors(t, { k: 'v' }));
  assert.deepEqual(back.metadata, { k: 'v' });
  assert.throws(() => encodeSafetensors(new Map([['__metadata__', { shape: [], data: new Float32Array(1) }]])), /__metadata__/);
});

test('configHash: canonical JSON with sorted keys at every level', () => {
  assert.equal(canonicalJson({ b: [1, { d: 2, c: 'x' }], a: null, u: undefined }), '{"a":null,"b":[1,{"c":"x","d":2}]}');
  assert.equal(configHash({ b: 1, a: { y: 2, x: 3 } }), configHash({ a: { x: 3, y: 2 }, b: 1 }));
  assert.notEqual(configHash({ a: 1 }), configHash({ a: 2 }));
  assert.equal(configHash({ a: 1 }), createHash('sha256').update('{"a":1}').digest('hex'));
  // task routing cannot change what is trained: a configuration from before these keys hashes the same
  const before = { orchestrator: { leaseSeconds: 60 } };
  assert.equal(configHash({ orchestrator: { leaseSeconds: 60, dispatch: 'spread', coalesceMs: 2, bundleMs: 0 } }), configHash(before));
  assert.notEqual(configHash({ orchestrator: { leaseSeconds: 61, dispatch: 'pack' } }), configHash(before));
  // nor the quarantine of a worker (round 25): a run's checkpoints keep the hash they had before grpo.quarantineAfter
  assert.equal(configHash({ grpo: { steps: 4, quarantineAfter: 7 } }), configHash({ grpo: { steps: 4 } }));
  assert.throws(() => canonicalJson({ a: NaN }), /non-finite number NaN at \$\.a/);
  assert.throws(() => canonicalJson({ m: new Map() }), /Map at \$\.m/);
});

test('readable by Python safetensors (skipped where python3 lacks safetensors/numpy)', async (t) => {
  const probe = spawnSync('python3', ['-c', 'import safetensors.numpy, numpy'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    t.skip('python3 with safetensors and numpy not available');
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'ckpt-py-'));
  try {
    const path = join(dir, 'c.safetensors');
    const ck = sample();
    await saveCheckpoint(path, ck);
    const out = execFileSync('python3', ['-c', `
import json, sys, numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file
d = load_file(sys.argv[1])
with safe_open(sys.argv[1], "np") as f: meta = f.metadata()
print(json.dumps({"names": sorted(d), "shape": list(d["conv1.weight"].shape), "dtype": str(d["conv1.weight"].dtype),
  "b2": float(d["conv1.bias"][2]), "version": meta["version"], "pi": float(d["specials"][1][5])}))
`, path], { encoding: 'utf8' });
    const r = JSON.parse(out);
    assert.equal(r.names.length, 15);
    assert.deepEqual(r.shape, [4, 3, 3, 3]);
    assert.equal(r.dtype, 'float32');
    assert.equal(r.version, '12');
    assert.equal(r.pi, Math.fround(Math.PI));
    assert.equal(r.b2, ck.params.get('conv1.bias')!.data[2]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
