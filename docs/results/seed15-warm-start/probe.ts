// Seed 15's warm start (round 26): what the run seed changes, separately.
//   node --import tsx docs/results/seed15-warm-start/probe.ts draws               SFT draws' type counts, seeds 10-17
//   node --import tsx docs/results/seed15-warm-start/probe.ts sft INIT DATA STEPS [key=value ...]  SFT only: network initialised from
//        seed INIT, crops and corruptions from seed DATA (the demo's config, sft.steps=STEPS); prints the loss per 50
//        steps and scan_lines PSNR / the every-type PSNR of identity and the warm start on 32 px crops of the training
//        photographs at fresh epochs (1000+, never trained on).
//   node --import tsx docs/results/seed15-warm-start/probe.ts init               the initial networks of seeds 10-17 on
//        scan_lines crops: units never positive per layer, R^2 of a least-squares 3x3 head on the last features.
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../../lib/config/index.ts';
import { openRunDataset } from '../../../lib/config/dataset.ts';
import { initialParamsOf } from '../../../lib/models/bundle.ts';
import { PolicyRunner } from '../../../lib/models/runner.ts';
import { PolicyTrainer } from '../../../lib/models/trainer.ts';
import { sftLearningRate } from '../../../lib/optim/schedule.ts';
import { sftCursors } from '../../../lib/grpo/sampling.ts';
import { stackPairs } from '../../../lib/data/image.ts';
import type { TensorMap } from '../../../lib/checkpoint/tensors.ts';
import type { Sample } from '../../../lib/data/dataset.ts';

const RUN = '/work/wt/stats26/runs/demo-r26-s15/config.json';
const base = JSON.parse(readFileSync(RUN, 'utf8')) as Record<string, unknown>;
async function config(seed: number, extra: string[] = []) {
  const { writeFileSync, mkdirSync } = await import('node:fs');
  const c = structuredClone(base) as { run: { seed: number; outDir: string; id: string } };
  c.run.seed = seed; c.run.outDir = '/tmp/seed15-probe'; c.run.id = `probe-${seed}`;
  mkdirSync('/tmp/seed15-probe', { recursive: true });
  const p = `/tmp/seed15-probe/config-${seed}.json`;
  writeFileSync(p, JSON.stringify(c));
  return loadConfig(p, extra);
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'draws') {
  for (let seed = 10; seed <= 17; seed++) {
    const c = await config(seed);
    const ds = await openRunDataset(c, 'train');
    const n = c.sft.steps * c.sft.batchSize;
    const counts = new Map<string, number>();
    const sl: number[] = [];
    for (let k = 0; k < n; k++) {
      const s = await ds.sample(k);
      const t = typeof s.corruption === 'string' ? s.corruption : s.corruption.type;
      counts.set(t, (counts.get(t) ?? 0) + 1);
      if (t === 'scan_lines') sl.push(k);
    }
    const byQuarter = [0, 1, 2, 3].map((q) => sl.filter((k) => Math.floor(k / (n / 4)) === q).length);
    console.log(`seed ${seed}: ${ds.size} training photographs; scan_lines ${counts.get('scan_lines')} of ${n} (per 100 steps ${byQuarter.join('/')}); min type ${Math.min(...counts.values())}, max ${Math.max(...counts.values())}`);
  }
} else if (mode === 'sft') {
  const [init, data, steps] = args.slice(0, 3).map(Number) as [number, number, number];
  const c = await config(data, [...args.slice(3), `sft.steps=${steps}`, 'grpo.steps=0']);
  const params: TensorMap = initialParamsOf(await config(init));
  const trainer = PolicyTrainer.create(c, params);
  const train = await openRunDataset(c, 'train');
  // held-out probes: 32 px crops of the training photographs at fresh epochs (1000-1001), never trained on
  const probes: [string, { corrupted: Float32Array; clean: Float32Array; n: number }][] = [];
  for (const [label, extra] of [['every type', []], ['scan_lines', ['data.corruptions.types=["scan_lines"]']]] as const) {
    const ds = await openRunDataset(await config(data, [...extra]), 'train');
    const samples: Sample[] = [];
    for (let epoch = 1000; epoch < 1010; epoch++) for (let i = 0; i < ds.size; i++) { const s = await ds.get(i, epoch); if (s) samples.push(s); }
    probes.push([label, { ...stackPairs(samples), n: samples.length }]);
  }
  const runner = await PolicyRunner.create(c);
  const pix = 3 * c.data.size * c.data.size;
  const psnr = (x: Float32Array, clean: Float32Array, n: number) => {
    let t = 0;
    for (let j = 0; j < n; j++) { let e = 0; for (let k = j * pix; k < (j + 1) * pix; k++) { const v = Math.min(1, Math.max(0, x[k]!)) - clean[k]!; e += v * v; } t += 10 * Math.log10(1 / Math.max(e / pix, 1e-10)); }
    return t / n;
  };
  const report = async (s: number, loss: string) => {
    const parts: string[] = [];
    for (const [label, p] of probes) {
      const out = await runner.run(params, p.corrupted, new Float32Array(p.n * pix), p.n);
      parts.push(`${label} ${psnr(out.mean, p.clean, p.n).toFixed(2)} (identity ${psnr(p.corrupted, p.clean, p.n).toFixed(2)})`);
    }
    console.log(`init ${init} data ${data}${args.length > 3 ? ` ${args.slice(3).join(' ')}` : ''} step ${s}: train loss ${loss}; PSNR dB on ${probes.map(([l, p]) => `${p.n} ${l}`).join(' / ')} held-out crops: ${parts.join(', ')}`);
  };
  await report(0, '-');
  let acc: number[] = [];
  for (let s = 1; s <= steps; s++) {
    const samples: Sample[] = [];
    for (const k of sftCursors(c, s)) samples.push(await train.sample(k));
    const { corrupted, clean } = stackPairs(samples);
    const r = await trainer.sftStep(corrupted, clean, c.sft.batchSize, sftLearningRate(c.sft, s));
    acc.push(r.loss);
    if (s % 50 === 0) { await report(s, (acc.reduce((a, b) => a + b, 0) / acc.length).toFixed(2)); acc = []; }
  }
  await runner.release();
} else if (mode === 'init') {
  // The initial network of seeds 10-17 on the same held-out scan_lines crops (data seed 15): each layer's share of
  // units that are never positive (leaky side only), and how much of the restoration residual (clean - corrupted)
  // a least-squares 3x3 head on the last features could explain (R^2; the head is zero at initialisation, so this
  // is what the features offer the first SFT steps), beside the same 3x3 linear head on the input image itself.
  const ec = await config(15, ['data.corruptions.types=["scan_lines"]']);
  const ds = await openRunDataset(ec, 'train');
  const samples: Sample[] = [];
  for (let epoch = 1000; epoch < 1002; epoch++) for (let i = 0; i < ds.size; i++) { const s = await ds.get(i, epoch); if (s) samples.push(s); }
  const { corrupted, clean } = stackPairs(samples);
  const H = ec.data.size, W = H, HW = H * W, n = samples.length;
  const conv3 = (x: Float32Array, cin: number, w: Float32Array, bias: Float32Array, cout: number) => {
    const y = new Float32Array(cout * HW);
    for (let o = 0; o < cout; o++) {
      y.fill(bias[o]!, o * HW, (o + 1) * HW);
      for (let c = 0; c < cin; c++) for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
        const wv = w[((o * cin + c) * 3 + ky) * 3 + kx]!;
        for (let yy = 0; yy < H; yy++) { const sy = yy + ky - 1; if (sy < 0 || sy >= H) continue;
          for (let xx = 0; xx < W; xx++) { const sx = xx + kx - 1; if (sx < 0 || sx >= W) continue; y[o * HW + yy * W + xx]! += wv * x[c * HW + sy * W + sx]!; } }
      }
    }
    return y;
  };
  const act = (v: Float32Array) => v.map((t) => (t > 0 ? t : 0.1 * t));
  const probe = (feats: (j: number) => Float32Array, C: number) => {
    const F = C * 9 + 1;
    const xtx = new Float64Array(F * F), xty = new Float64Array(F * 3);
    let yy = 0; const ysum = [0, 0, 0]; let m = 0;
    const row = new Float64Array(F);
    for (let j = 0; j < n; j++) {
      const h = feats(j);
      for (let py = 0; py < H; py++) for (let px = 0; px < W; px++) {
        let f = 0;
        for (let c = 0; c < C; c++) for (let ky = -1; ky <= 1; ky++) for (let kx = -1; kx <= 1; kx++) {
          const sy = py + ky, sx = px + kx; row[f++] = sy < 0 || sy >= H || sx < 0 || sx >= W ? 0 : h[c * HW + sy * W + sx]!;
        }
        row[f] = 1;
        for (let a = 0; a < F; a++) { const ra = row[a]!; if (ra === 0) continue; for (let b2 = a; b2 < F; b2++) xtx[a * F + b2]! += ra * row[b2]!; }
        for (let o = 0; o < 3; o++) { const t = clean[(j * 3 + o) * HW + py * W + px]! - corrupted[(j * 3 + o) * HW + py * W + px]!; yy += t * t; ysum[o]! += t; for (let a = 0; a < F; a++) xty[a * 3 + o]! += row[a]! * t; }
        m++;
      }
    }
    for (let a = 0; a < F; a++) { xtx[a * F + a]! += 1e-6; for (let b2 = 0; b2 < a; b2++) xtx[a * F + b2] = xtx[b2 * F + a]!; }
    // Gaussian elimination with partial pivoting on [XtX | XtY]
    const A = xtx, B = Float64Array.from(xty);
    for (let k = 0; k < F; k++) {
      let piv = k; for (let r = k + 1; r < F; r++) if (Math.abs(A[r * F + k]!) > Math.abs(A[piv * F + k]!)) piv = r;
      if (piv !== k) { for (let c = 0; c < F; c++) { const t = A[k * F + c]!; A[k * F + c] = A[piv * F + c]!; A[piv * F + c] = t; } for (let o = 0; o < 3; o++) { const t = B[k * 3 + o]!; B[k * 3 + o] = B[piv * 3 + o]!; B[piv * 3 + o] = t; } }
      for (let r = k + 1; r < F; r++) { const f = A[r * F + k]! / A[k * F + k]!; if (f === 0) continue; for (let c = k; c < F; c++) A[r * F + c]! -= f * A[k * F + c]!; for (let o = 0; o < 3; o++) B[r * 3 + o]! -= f * B[k * 3 + o]!; }
    }
    const sol = new Float64Array(F * 3);
    for (let k = F - 1; k >= 0; k--) for (let o = 0; o < 3; o++) { let v = B[k * 3 + o]!; for (let c = k + 1; c < F; c++) v -= A[k * F + c]! * sol[c * 3 + o]!; sol[k * 3 + o] = v / A[k * F + k]!; }
    let explained = 0; for (let a = 0; a < F * 3; a++) explained += sol[a]! * xty[a]!;
    const sst = yy - ysum.reduce((t, v) => t + v * v, 0) / m;
    return (explained - ysum.reduce((t, v) => t + v * v, 0) / m) / sst;
  };
  const img = (j: number) => corrupted.subarray(j * 3 * HW, (j + 1) * 3 * HW);
  console.log(`${n} scan_lines crops (data seed 15); R^2 of a 3x3 linear head on the corrupted image itself: ${probe(img, 3).toFixed(3)}`);
  for (let seed = 10; seed <= 17; seed++) {
    const p = initialParamsOf(await config(seed));
    const g = (k: string) => p.get(k)!.data as Float32Array;
    const depth = 4, w = 16;
    const never: number[] = Array(1 + depth).fill(0);
    const pos: number[] = Array(1 + depth).fill(0);
    const last: Float32Array[] = [];
    const anyPos = Array.from({ length: 1 + depth }, () => new Uint8Array(w));
    for (let j = 0; j < n; j++) {
      let pre = conv3(img(j), 3, g('stem.weight'), g('stem.bias'), w);
      const mark = (l: number, v: Float32Array) => { for (let c = 0; c < w; c++) for (let k = 0; k < HW; k++) if (v[c * HW + k]! > 0) { anyPos[l]![c] = 1; pos[l]! += 1; } };
      mark(0, pre);
      let h = act(pre);
      for (let i = 0; i < depth; i++) {
        const r = conv3(act(conv3(h, w, g(`block${i}.conv1.weight`), g(`block${i}.conv1.bias`), w)), w, g(`block${i}.conv2.weight`), g(`block${i}.conv2.bias`), w);
        pre = h.map((t, k) => t + r[k]!); mark(i + 1, pre); h = act(pre);
      }
      last.push(h);
    }
    for (let l = 0; l <= depth; l++) never[l] = w - anyPos[l]!.reduce((a, b2) => a + b2, 0);
    console.log(`init seed ${seed}: units never positive per layer (stem, block0-3, of ${w}): ${never.join(' ')}; positive share ${pos.map((v) => (v / (n * w * HW)).toFixed(2)).join(' ')}; R^2 of a 3x3 head on the last features: ${probe((j) => last[j]!, w).toFixed(3)}`);
  }
} else throw new Error(`probe: mode must be draws or sft, got ${JSON.stringify(mode)}`);
