// Where a GPU provider's result departs from the CPU's: runs one of the project's graphs with every float
// intermediate value made an output, on the CPU and on the device, and lists the nodes whose output differs
// while their inputs agree (the operators to suspect). For diagnosis after `npm run gpu-check` fails a case.
//
//   node --import tsx scripts/gpu/bisect.ts --device webgpu --graph grpo-dense|flow-step|time-features [--size 64]
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { loadConfig } from '../../lib/config/index.ts';
import { DEVICES, type Device } from '../../lib/graph/device.ts';
import { Graph, type Value } from '../../lib/graph/graph.ts';
import { add, conv, pad, slice } from '../../lib/graph/ops.ts';
import { serialize } from '../../lib/graph/onnx.ts';
import { GraphSession, type Feeds, type Fetches } from '../../lib/graph/runtime.ts';
import { buildGrpoGraph } from '../../lib/models/graphs.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { groupImages } from './inputs.ts';
import { initialParamsWithNoiseOf } from '../../lib/models/bundle.ts';
import { difference, sameBits } from './compare.ts';
import { paramFeeds, scalarFeed, sharedRowFeeds } from '../../lib/models/feeds.ts';
import { PolicyRunner } from '../../lib/models/runner.ts';
import { ssimMapSize } from '../../lib/models/ssim.ts';
import { grpoHyper } from '../../lib/grpo/algorithm.ts';
import { buildFlowStepGraph } from '../../lib/flow/graphs.ts';
import { flowNetworkSpecOf } from '../../lib/flow/velocity-network.ts';
import { velocitySpecOf } from '../../lib/flow/config.ts';
import { timeFeatures } from '../../lib/flow/velocity.ts';
import { standardNormal } from '../../lib/data/random.ts';
import { clamp01 } from '../../lib/data/image.ts';

const GRAPHS = ['grpo-dense', 'grpo-dense-shared', 'flow-step', 'time-features', 'convs'] as const;
/** Input channels of the `convs` graph's 3x3 convolutions (16 outputs each): the flow stem takes 6, the Gaussian one 3. */
const CONV_CHANNELS = [2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16];

async function build(which: (typeof GRAPHS)[number], H: number): Promise<{ g: Graph; feeds: Feeds }> {
  const r = { height: H, width: H };
  const pix = 3 * H * H;
  if (which === 'time-features') {
    const g = new Graph();
    const t = g.input('t', ['N']);
    g.output('features', timeFeatures(t, velocitySpecOf(loadConfig().model, loadConfig().flow).timeFrequencies));
    const n = 101;
    return { g, feeds: { t: { data: Float32Array.from({ length: n }, (_, i) => i / (n - 1)), dims: [n] } } };
  }
  if (which === 'convs') {
    const g = new Graph();
    const feeds: Feeds = {};
    const n = 8;
    for (const c of CONV_CHANNELS) {
      const x = g.input(`x${c}`, [n, c, H, H]);
      const w = g.constant(standardNormal(16 * c * 9, c).map((v) => v * 0.2), [16, c, 3, 3]);
      const b = g.constant(standardNormal(16, 100 + c), [16]);
      g.output(`conv${c}`, conv(x, w, b, { pads: [1, 1, 1, 1] }));
      feeds[`x${c}`] = { data: standardNormal(n * c * H * H, 200 + c), dims: [n, c, H, H] };
      if (c !== 6) continue;
      // the same 6-channel convolution in two other forms (candidate workarounds): two 3-channel convolutions
      // added, and the input and weights padded with zero channels to 8
      const half = (t: Value, axis0: number, from: number) => slice(t, [from], [from + 3], [axis0]);
      g.output('conv6-split', add(conv(half(x, 1, 0), half(w, 1, 0), b, { pads: [1, 1, 1, 1] }), conv(half(x, 1, 3), half(w, 1, 3), undefined, { pads: [1, 1, 1, 1] })));
      g.output('conv6-pad8', conv(pad(x, [0, 0, 0, 0], [0, 2, 0, 0]), pad(w, [0, 0, 0, 0], [0, 2, 0, 0]), b, { pads: [1, 1, 1, 1] }));
    }
    return { g, feeds };
  }
  if (which === 'flow-step') {
    const config = loadConfig(undefined, [`data.size=${H}`, 'model.family=flow']);
    const spec = flowNetworkSpecOf(velocitySpecOf(config.model, config.flow), config.model.network, r);
    const g = buildFlowStepGraph(spec, r, config.flow.sde.type);
    const n = 8;
    const dims = [n, 3, H, H];
    const img = (seed: number) => ({ data: Float32Array.from(standardNormal(n * pix, seed), (v) => 0.5 * v), dims });
    const row = (v: number) => ({ data: new Float32Array(n).fill(v), dims: [n] });
    return { g, feeds: { ...paramFeeds(initialParamsWithNoiseOf(config)), x: img(1), y: img(2), eps: img(3), t: row(0.9), t_next: row(0.8), a: row(0.7) } };
  }
  const config = loadConfig(undefined, [`data.size=${H}`, 'grpo.advantageMode=dense']);
  // grpo-dense-shared: the learner's form, 4 groups of 8 rows sharing an image (lib/graph/shared-rows.ts)
  const shared = which === 'grpo-dense-shared';
  const g = buildGrpoGraph(policySpecOf(config), r, 'dense', false, { sharedRows: shared });
  const n = 32;
  const dims = [n, 3, H, H];
  const params = initialParamsWithNoiseOf(config);
  const images = shared ? groupImages(4, 8, pix, 1) : clamp01(Float32Array.from(standardNormal(n * pix, 1), (v) => 0.5 + 0.15 * v));
  const runner = await PolicyRunner.create(config, 'cpu');
  const out = await runner.run(params, images, standardNormal(n * pix, 2), n);
  await runner.release();
  const m = ssimMapSize(H);
  const hyper = grpoHyper(config);
  return {
    g,
    feeds: {
      ...paramFeeds(params),
      image: { data: images, dims }, action: { data: out.action, dims }, logp_old: { data: out.logpMap, dims },
      advantage: { data: standardNormal(n, 3), dims: [n] },
      advantage_map: { data: Float32Array.from(standardNormal(n * 3 * m * m, 4), (v) => 0.1 * v), dims: [n, 3, m, m] },
      // the run config's clip range and KL weight, as the learner feeds them (round 16 fed 0.2 here, where float noise
      // in the ratio never reaches the clip: docs/gpu.md)
      ref_mean: { data: out.mean, dims }, clip_low: scalarFeed(hyper.clipLow), clip_high: scalarFeed(hyper.clipHigh), dual_clip: scalarFeed(hyper.dualClip ?? 3), beta: scalarFeed(hyper.beta),
      ...(shared ? sharedRowFeeds(images, n) : {}),
    },
  };
}

/** |b - a| relative to a's largest magnitude: no floor, since an intermediate's scale is whatever it is. */
function relDiff(a: Float32Array, b: Float32Array): number {
  const { maxAbs, scale, finite } = difference(a, b);
  if (!finite) return Infinity;
  return maxAbs === 0 ? 0 : maxAbs / Math.max(scale, 1e-30);
}

async function main(): Promise<void> {
  const a = await yargs(hideBin(process.argv))
    .option('device', { type: 'string', choices: DEVICES, demandOption: true })
    .option('graph', { type: 'string', choices: GRAPHS, demandOption: true })
    .option('size', { type: 'number', default: 64 })
    .option('origin', { type: 'number', default: 1e-4, describe: 'an output this far off (relative) with inputs within a tenth of it is an origin' })
    .option('probe', { type: 'boolean', default: false, describe: 'grpo-dense*: run the graph as it is, then with only the mean, density and per-element ratio exposed; compare the two, and list the elements whose ratio departs' })
    .strict()
    .parseAsync();
  const { g, feeds } = await build(a.graph as (typeof GRAPHS)[number], a.size);
  if (a.probe) return probe(g, feeds, a.device as Device, a.size);
  // every float value a node makes, as an output: d.<node index>.<output index>
  const traced = new Map<Value, string>();
  g.nodes.forEach((node, i) => node.outputs.forEach((v, j) => {
    if (v.dtype === 'float32' && v.name !== '') {
      traced.set(v, `d.${i}.${j}`);
      g.output(`d.${i}.${j}`, v);
    }
  }));
  const model = serialize(g);
  const cpu = await runOn(model, 'cpu', feeds);
  const dev = await runOn(model, a.device as Device, feeds);
  const diff = new Map<Value, number>();
  for (const [v, name] of traced) diff.set(v, relDiff(cpu[name]!.data, dev[name]!.data));
  const origins: string[] = [];
  const byOp = new Map<string, number>();
  g.nodes.forEach((node, i) => {
    const out = Math.max(0, ...node.outputs.map((v) => diff.get(v) ?? 0));
    const inp = Math.max(0, ...node.inputs.map((v) => diff.get(v) ?? 0));
    if (out > a.origin && inp <= out / 10) {
      byOp.set(node.op, (byOp.get(node.op) ?? 0) + 1);
      if (origins.length < 20) origins.push(`node ${i} ${node.op} ${node.outputs.map(String).join(' ')}: output ${out.toExponential(2)}, inputs ${inp.toExponential(2)}; inputs ${node.inputs.map(String).join(' ')} ${JSON.stringify(node.attrs).slice(0, 120)}`);
    }
  });
  const worst = Math.max(...diff.values());
  console.log(`bisect ${a.graph} at ${a.size} px on ${a.device}: ${g.nodes.length} nodes, ${traced.size} float values, worst relative difference ${worst.toExponential(2)}`);
  console.log(`origins (output > ${a.origin}, inputs within a tenth of it): ${[...byOp].map(([op, n]) => `${op} x${n}`).join(', ') || 'none'}`);
  for (const o of origins) console.log(`  ${o}`);
  for (const name of g.outputList.map(([n]) => n).filter((n) => !n.startsWith('d.'))) {
    const v = g.getOutput(name);
    if (diff.has(v)) console.log(`  graph output ${name}: ${diff.get(v)!.toExponential(2)}`);
  }
}

/** One run of `model` on `device`, in a session of its own. */
async function runOn(model: Uint8Array, device: Device, feeds: Feeds): Promise<Fetches> {
  const s = await GraphSession.create(model, { device });
  const out = await s.run(feeds);
  await s.release();
  return out;
}

/**
 * The dense GRPO graph as the learner runs it (the config's clip range), then with three more outputs: the policy
 * mean, each element's log-density and its ratio. Says whether the outputs changed any bit, how far the ratios are
 * from the CPU's against the clip range, and lists the elements whose ratio departs by more than 0.05, with where
 * they are, so a wrong kernel shows by its pattern (docs/gpu.md).
 */
async function probe(g: Graph, feeds: Feeds, device: Device, H: number): Promise<void> {
  const consumers = (v: Value) => g.nodes.filter((n) => n.inputs.includes(v));
  const ratioNode = g.nodes.find((n) => n.op === 'Exp' && consumers(n.outputs[0]!).some((c) => c.op === 'Clip'));
  const meanNode = g.nodes.find((n) => n.op === 'Sub' && n.inputs[0] === g.getInput('action'));
  if (!ratioNode || !meanNode) throw new Error('probe: no per-element ratio (Exp feeding Clip) or mean (action - mean) in this graph');
  const densityNode = g.nodes.find((n) => n.outputs.includes(ratioNode.inputs[0]!));
  // the graph as the learner runs it, on the device, before the probe's outputs are added
  const plain = await runOn(serialize(g), device, feeds);
  g.output('probe.mean', meanNode.inputs[1]!);
  g.output('probe.density', densityNode!.inputs[0]!);
  g.output('probe.ratio', ratioNode.outputs[0]!);
  const model = serialize(g);
  const cpu = await runOn(model, 'cpu', feeds);
  const dev = await runOn(model, device, feeds);
  // what the three extra outputs changed on the device, output by output (same bits, or how far)
  const changed = Object.keys(plain).filter((k) => !sameBits(plain[k]!.data, dev[k]!.data));
  console.log(`probe: with the three outputs added, ${Object.keys(plain).length - changed.length} of ${Object.keys(plain).length} outputs keep their bits on ${device}; changed: ${changed.map((k) => `${k} ${relDiff(dev[k]!.data, plain[k]!.data).toExponential(2)}`).join(', ') || 'none'}`);
  const [mc, md, dc, dd, rc, rd] = ['probe.mean', 'probe.mean', 'probe.density', 'probe.density', 'probe.ratio', 'probe.ratio'].map((k, i) => (i % 2 ? dev : cpu)[k]!.data);
  const logpOld = feeds.logp_old!.data;
  const at = (i: number) => `n${Math.floor(i / (3 * H * H))} c${Math.floor(i / (H * H)) % 3} y${Math.floor(i / H) % H} x${i % H}`;
  const bad: number[] = [];
  let meanBad = 0;
  let ratioDev = 0;
  for (let i = 0; i < rc!.length; i++) {
    const dr = Math.abs(rd![i]! - rc![i]!);
    ratioDev = Math.max(ratioDev, dr);
    if (dr > 0.05) bad.push(i);
    if (Math.abs(md![i]! - mc![i]!) > 1e-4 * Math.max(1, Math.abs(mc![i]!))) meanBad++;
  }
  console.log(`probe at ${H} px on ${device}: ${bad.length} of ${rc!.length} elements with |ratio - cpu| > 0.05; ${meanBad} mean elements off by > 1e-4; largest |ratio - cpu| ${ratioDev.toExponential(2)} (clip range ${feeds.clip_low!.data[0]!.toExponential(1)}); clip_fraction cpu ${cpu.clip_fraction!.data[0]} ${device} ${dev.clip_fraction!.data[0]}`);
  for (const i of bad.slice(0, 16)) console.log(`  ${at(i)}: mean ${mc![i]} / ${md![i]}; density ${dc![i]} / ${dd![i]}; logp_old ${logpOld[i]}; ratio ${rc![i]} / ${rd![i]}`);
  const count = (f: (i: number) => number) => [...bad.reduce((m, i) => m.set(f(i), (m.get(f(i)) ?? 0) + 1), new Map<number, number>())].sort((p, q) => p[0] - q[0]).map(([k, v]) => `${k}:${v}`).join(' ');
  console.log(`  by row y: ${count((i) => Math.floor(i / H) % H)}`);
  console.log(`  by column x: ${count((i) => i % H)}`);
  console.log(`  by image n: ${count((i) => Math.floor(i / (3 * H * H)))}; by channel: ${count((i) => Math.floor(i / (H * H)) % 3)}`);
}

main().catch((e: unknown) => {
  console.error(`bisect: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 2;
});
