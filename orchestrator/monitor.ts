// The orchestrator's live web page, served on its metrics port beside /metrics and /health:
//   /                    a self-contained page (inline CSS, JS and SVG plotting; no external asset)
//   /api/history         JSON: the run's state, the workers connected, per-batch curves (bounded), evaluations
//   /api/eval-grid.png   the latest periodic evaluation's grid (corrupted | reference | policy | clean)
// RunMonitor keeps the in-memory history (thinned to at most MAX_POINTS points, evenly over the whole run),
// drives the periodic evaluator and, when the orchestrator keeps an event log, appends `progress` and `eval`
// lines to it (the sweep report reads its curves from there).
import type { EventLog } from '../lib/log/event-log.ts';
import type { NatsConnection } from 'nats';
import type { RunConfig } from '../lib/config/index.ts';
import type { Metrics, RouteHandler } from '../lib/metrics/index.ts';
import { CheckpointStore } from '../lib/transport/index.ts';
import { overall, PeriodicEvaluator, type PeriodicEvalResult } from '../lib/eval/periodic.ts';
import type { Coordinator } from './coordinator.ts';
import type { Progress } from './run-state.ts';

export const MAX_POINTS = 2000;
const MAX_EVALS = 500;

export interface HistoryPoint {
  seq: number;
  phase: 'sft' | 'grpo';
  version: number;
  t: number;
  loss: number | null;
  reward?: number;
  components?: Record<string, number>;
  kl?: number;
  clip_fraction?: number;
  /** Flow family: clip fraction and KL per trained step index of the sampler. */
  flow_steps?: Array<{ step: number; clip_fraction: number; kl: number }>;
  samples_per_second: number;
}

export interface EvalPoint {
  version: number;
  t: number;
  seconds: number;
  samples: number;
  policy: ReturnType<typeof overall>;
  identity: ReturnType<typeof overall>;
  reference?: ReturnType<typeof overall> & { version: number };
}

export interface MonitorOptions {
  config: RunConfig;
  /** The run's live state (phase, acknowledged batch, version, workers). */
  state: () => { phase: string; ackedBatch: number; totalBatches: number; version: number; workers: Array<{ role: string; workerId: string; device: string }> };
  evaluator?: PeriodicEvaluator;
  /** Appends a JSON object to the run's event log (when it has one). */
  appendEvent?: (e: Record<string, unknown>) => void;
}

const fin = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x : undefined);

export class RunMonitor {
  readonly points: HistoryPoint[] = [];
  readonly evals: EvalPoint[] = [];
  private stride = 1;
  private readonly started = Date.now();

  constructor(private readonly o: MonitorOptions) {}

  /** Records an acknowledged batch and starts a periodic evaluation when one is due. */
  progress(p: Progress): void {
    const point: HistoryPoint = {
      seq: p.seq,
      phase: p.phase === 'sft' || (p.phase === 'done' && p.reward === undefined) ? 'sft' : 'grpo',
      version: p.version,
      t: Date.now(),
      loss: fin(p.loss) ?? null,
      ...(fin(p.reward) !== undefined ? { reward: p.reward } : {}),
      ...(p.components ? { components: p.components } : {}),
      ...(fin(p.kl) !== undefined ? { kl: p.kl } : {}),
      ...(fin(p.clipFraction) !== undefined ? { clip_fraction: p.clipFraction } : {}),
      ...(p.flowSteps?.length ? { flow_steps: p.flowSteps.map((f) => ({ step: f.step, clip_fraction: f.clipFraction, kl: f.kl })) } : {}),
      samples_per_second: p.samplesPerSecond,
    };
    this.o.appendEvent?.({ type: 'progress', ...point });
    if (p.seq % this.stride === 0) {
      this.points.push(point);
      if (this.points.length > MAX_POINTS) {
        // Keep every other point and record half as often from now on: the whole run stays visible.
        this.stride *= 2;
        const kept = this.points.filter((q) => q.seq % this.stride === 0);
        this.points.splice(0, this.points.length, ...kept);
      }
    }
    this.o.evaluator?.maybeRun(p.version);
  }

  /** The periodic evaluator's result (wire it as PeriodicEvaluator's onResult). */
  evaluated(r: PeriodicEvalResult): void {
    const e: EvalPoint = {
      version: r.version,
      t: r.t,
      seconds: r.seconds,
      samples: r.samples,
      policy: overall(r.policy),
      identity: overall(r.identity),
      ...(r.reference ? { reference: { ...overall(r.reference), version: r.reference.version } } : {}),
    };
    this.evals.push(e);
    if (this.evals.length > MAX_EVALS) this.evals.splice(0, this.evals.length - MAX_EVALS);
    this.o.appendEvent?.({ type: 'eval', ...e, by_type: Object.fromEntries(Object.entries(r.policy.byType).map(([k, v]) => [k, overall(v)])) });
  }

  history(): Record<string, unknown> {
    const s = this.o.state();
    const latest = this.o.evaluator?.latest;
    return {
      run_id: this.o.config.run.id,
      started: this.started,
      now: Date.now(),
      state: { phase: s.phase, batch: s.ackedBatch, total_batches: s.totalBatches, version: s.version, sft_steps: this.o.config.sft.steps, grpo_steps: this.o.config.grpo.steps },
      workers: s.workers.map((w) => ({ role: w.role.toLowerCase(), worker_id: w.workerId, device: w.device })),
      eval_every: this.o.config.eval.everyVersions,
      stride: this.stride,
      points: this.points,
      evals: this.evals,
      grid: latest ? { version: latest.version, columns: latest.gridColumns } : null,
    };
  }

  /** The page's own paths: served without the metrics token (it holds nothing of the run; its data comes from /api/*). */
  static readonly PAGE_PATHS: readonly string[] = ['/', '/index.html'];

  routes(): Record<string, RouteHandler> {
    return {
      '/': () => ({ contentType: 'text/html; charset=utf-8', body: PAGE }),
      '/index.html': () => ({ contentType: 'text/html; charset=utf-8', body: PAGE }),
      '/api/history': () => ({ contentType: 'application/json', body: JSON.stringify(this.history()) }),
      '/api/eval-grid.png': () => {
        const latest = this.o.evaluator?.latest;
        if (!latest) return { status: 404, contentType: 'text/plain', body: 'no evaluation yet (eval.everyVersions)\n' };
        return { contentType: 'image/png', body: latest.gridPng };
      },
    };
  }
}

/**
 * The orchestrator's monitor: history, web routes and (eval.everyVersions > 0) the periodic evaluator on the run's
 * CheckpointStore. `coordinator` is read lazily (the monitor is made before it, to receive its progress).
 */
export async function createRunMonitor(o: {
  config: RunConfig;
  metrics: Metrics;
  nc: NatsConnection;
  coordinator: () => Coordinator | undefined;
  totalBatches: number;
  /** The run's event log (--events), written by the orchestrator. */
  events?: EventLog;
  log: (line: string) => void;
}): Promise<RunMonitor & { close(): Promise<void> }> {
  let monitor: RunMonitor | undefined;
  const evaluator = o.config.eval.everyVersions > 0
    ? new PeriodicEvaluator({
      config: o.config,
      store: await CheckpointStore.open(o.nc, { runId: o.config.run.id, readOnly: true }),
      metrics: o.metrics,
      log: o.log,
      onResult: (r) => {
        o.log(`evaluation of version ${r.version}: reward ${r.policy.reward.toFixed(4)} (identity ${r.identity.reward.toFixed(4)}${r.reference ? `, reference ${r.reference.reward.toFixed(4)}` : ''}) in ${r.seconds.toFixed(1)} s`);
        monitor?.evaluated(r);
      },
    })
    : undefined;
  monitor = new RunMonitor({
    config: o.config,
    evaluator,
    appendEvent: o.events ? (e) => o.events!.append(e) : undefined,
    state: () => {
      const c = o.coordinator();
      return {
        phase: c?.phase ?? 'starting',
        ackedBatch: c?.state.ackedSeq ?? 0,
        totalBatches: o.totalBatches,
        version: c?.state.learnerVersion ?? 0,
        workers: c?.workers ?? [],
      };
    },
  });
  return Object.assign(monitor, { close: async () => evaluator?.close() });
}

// ---------------------------------------------------------------------------------------------------------
// The page: plain HTML, CSS and JS; polls /api/history every 2 s and draws the curves as inline SVG.

export const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>recovery-grpo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:sans-serif;margin:16px 24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 6px}
#state span{display:inline-block;margin-right:18px;font-size:14px}#state b{font-size:16px}
.charts{display:flex;flex-wrap:wrap;gap:12px}.card{background:#fff;border:1px solid #ddd;border-radius:4px;padding:6px}
table{border-collapse:collapse;font-size:13px;background:#fff}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
#grid{image-rendering:pixelated;max-width:100%;border:1px solid #ddd}.muted{color:#888;font-size:12px}
</style></head><body>
<h1>recovery-grpo <span id="run" class="muted"></span></h1>
<div id="state"><span>phase <b id="phase">-</b></span><span>batch <b id="batch">-</b></span><span>policy version <b id="version">-</b></span><span>workers <b id="nworkers">-</b></span><span class="muted" id="updated"></span></div>
<h2>Training</h2>
<div class="charts">
<div class="card"><svg id="chart-reward" width="520" height="260"></svg></div>
<div class="card"><svg id="chart-components" width="520" height="260"></svg></div>
<div class="card"><svg id="chart-loss" width="520" height="260"></svg></div>
<div class="card"><svg id="chart-eval" width="520" height="260"></svg></div>
<div class="card" id="flow-clip-card" hidden><svg id="chart-flow-clip" width="520" height="260"></svg></div>
<div class="card" id="flow-kl-card" hidden><svg id="chart-flow-kl" width="520" height="260"></svg></div>
</div>
<h2>Latest evaluation <span id="evalinfo" class="muted"></span></h2>
<table id="evaltable"><thead><tr><th>policy</th><th>reward</th><th>SSIM</th><th>embedding cos</th><th>PSNR (dB)</th></tr></thead><tbody></tbody></table>
<p id="gridcols" class="muted"></p><img id="grid" alt="evaluation grid: none yet" hidden>
<h2>Workers connected</h2>
<table id="workers"><thead><tr><th>role</th><th>worker</th><th>device</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
// The metrics token, where the orchestrator takes one (--metrics-token-file): open the page as /#token=TOKEN. The
// fragment never reaches the server or its logs; the page keeps it for this tab (sessionStorage), takes it out of the
// address bar, and sends it as Authorization: Bearer with each request of its own.
const TOKEN = (() => {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) { sessionStorage.setItem("recovery-grpo-metrics-token", decodeURIComponent(m[1])); history.replaceState(null, "", location.pathname + location.search); }
  return sessionStorage.getItem("recovery-grpo-metrics-token");
})();
const AUTH = TOKEN ? {authorization: "Bearer " + TOKEN} : {};
const NS = "http://www.w3.org/2000/svg";
const COLORS = ["#4e79a7","#e15759","#59a14f","#f28e2b","#8c8c8c","#b07aa1"];
function el(name, attrs, parent) { const e = document.createElementNS(NS, name); for (const k in attrs) e.setAttribute(k, attrs[k]); if (parent) parent.appendChild(e); return e; }
function ticks(lo, hi) { if (!(hi > lo)) return [lo]; const raw = (hi - lo) / 5, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1,2,2.5,5,10].map(m => m * mag).find(s => s >= raw); const out = []; for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(10)); return out; }
function fmt(v) { const a = Math.abs(v); return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(1) : String(+v.toPrecision(4)); }
// series: [{name, points: [[x, y], ...], dash?}]
function plot(svg, title, series, xLabel) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = +svg.getAttribute("width"), H = +svg.getAttribute("height"), L = 56, R = 10, T = 36, B = 30;
  el("text", {x: L, y: 14, "font-size": 13, "font-weight": "bold"}, svg).textContent = title;
  const pts = series.flatMap(s => s.points).filter(p => isFinite(p[0]) && isFinite(p[1]));
  series.forEach((s, i) => { const g = el("g", {transform: "translate(" + (L + i * 120) + ",20)"}, svg);
    el("rect", {width: 10, height: 10, fill: COLORS[i % COLORS.length]}, g); el("text", {x: 14, y: 9, "font-size": 11}, g).textContent = s.name; });
  if (pts.length === 0) { el("text", {x: W / 2, y: H / 2, "text-anchor": "middle", "font-size": 12, fill: "#888"}, svg).textContent = "no data yet"; return; }
  let x0 = Math.min(...pts.map(p => p[0])), x1 = Math.max(...pts.map(p => p[0])); if (x1 === x0) x1 = x0 + 1;
  let lo = Math.min(...pts.map(p => p[1])), hi = Math.max(...pts.map(p => p[1])); if (hi === lo) { lo -= Math.abs(lo) * 0.05 || 0.5; hi += Math.abs(hi) * 0.05 || 0.5; }
  const pad = (hi - lo) * 0.06; lo -= pad; hi += pad;
  const px = v => L + (W - L - R) * (v - x0) / (x1 - x0), py = v => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  for (const t of ticks(lo, hi)) { el("line", {x1: L, x2: W - R, y1: py(t), y2: py(t), stroke: "#eee"}, svg);
    el("text", {x: L - 4, y: py(t) + 4, "font-size": 10, "text-anchor": "end"}, svg).textContent = fmt(t); }
  for (const t of ticks(x0, x1)) el("text", {x: px(t), y: H - B + 13, "font-size": 10, "text-anchor": "middle"}, svg).textContent = fmt(t);
  el("text", {x: (L + W - R) / 2, y: H - 3, "font-size": 11, "text-anchor": "middle"}, svg).textContent = xLabel;
  series.forEach((s, i) => {
    const p = s.points.filter(q => isFinite(q[0]) && isFinite(q[1])); if (!p.length) return;
    const d = p.map((q, j) => (j ? "L" : "M") + px(q[0]).toFixed(1) + "," + py(q[1]).toFixed(1)).join("");
    el("path", {d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.5, "stroke-dasharray": s.dash || "", class: "series", "data-points": p.length}, svg);
    if (p.length < 40) for (const q of p) el("circle", {cx: px(q[0]), cy: py(q[1]), r: 2.5, fill: COLORS[i % COLORS.length]}, svg);
  });
  el("line", {x1: L, x2: L, y1: T, y2: H - B, stroke: "#333"}, svg); el("line", {x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#333"}, svg);
}
function smooth(points, w) { const out = []; let s = 0; for (let i = 0; i < points.length; i++) { s += points[i][1]; if (i >= w) s -= points[i - w][1]; out.push([points[i][0], s / Math.min(i + 1, w)]); } return out; }
function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); }
let gridVersion = -1;
function render(h) {
  document.getElementById("run").textContent = "run " + h.run_id;
  document.getElementById("phase").textContent = h.state.phase;
  document.getElementById("batch").textContent = h.state.batch + " / " + h.state.total_batches;
  document.getElementById("version").textContent = h.state.version;
  document.getElementById("nworkers").textContent = h.workers.length;
  document.getElementById("updated").textContent = "updated " + new Date(h.now).toLocaleTimeString();
  const g = h.points.filter(p => p.phase === "grpo" && p.reward !== undefined);
  const w = Math.max(1, Math.round(g.length / 50));
  const reward = g.map(p => [p.seq, p.reward]);
  plot(document.getElementById("chart-reward"), "GRPO reward per batch", [{name: "reward", points: reward}, {name: "moving avg", points: smooth(reward, w)}], "batch");
  const comps = [...new Set(g.flatMap(p => Object.keys(p.components || {})))];
  plot(document.getElementById("chart-components"), "reward components per batch (moving avg)", comps.map(c => ({name: c, points: smooth(g.filter(p => p.components && isFinite(p.components[c])).map(p => [p.seq, p.components[c]]), w)})), "batch");
  const loss = ph => h.points.filter(p => p.phase === ph && p.loss !== null).map(p => [p.seq, p.loss]);
  plot(document.getElementById("chart-loss"), "loss", [{name: "SFT", points: loss("sft")}, {name: "GRPO", points: loss("grpo")}], "batch");
  // The flow family's per-step diagnostics: one series per trained step index of the sampler.
  const fs = g.filter(p => p.flow_steps && p.flow_steps.length);
  if (fs.length) {
    const steps = [...new Set(fs.flatMap(p => p.flow_steps.map(f => f.step)))].sort((a, b) => a - b);
    const perStep = key => steps.map(k => ({name: "step " + k, points: fs.flatMap(p => p.flow_steps.filter(f => f.step === k).map(f => [p.seq, f[key]]))}));
    document.getElementById("flow-clip-card").hidden = false; document.getElementById("flow-kl-card").hidden = false;
    plot(document.getElementById("chart-flow-clip"), "clip fraction per trained step", perStep("clip_fraction"), "batch");
    plot(document.getElementById("chart-flow-kl"), "KL per trained step (beta excluded)", perStep("kl"), "batch");
  }
  const ev = h.evals;
  const evSeries = [{name: "policy", points: ev.map(e => [e.version, e.policy.reward])}];
  if (ev.some(e => e.reference)) evSeries.push({name: "reference (SFT)", points: ev.filter(e => e.reference).map(e => [e.version, e.reference.reward]), dash: "4 3"});
  evSeries.push({name: "identity", points: ev.map(e => [e.version, e.identity.reward]), dash: "2 3"});
  plot(document.getElementById("chart-eval"), "evaluation reward (every " + h.eval_every + " versions)", evSeries, "policy version");
  const tb = document.querySelector("#evaltable tbody"); tb.innerHTML = "";
  const last = ev[ev.length - 1];
  if (last) {
    document.getElementById("evalinfo").textContent = "version " + last.version + ", " + last.samples + " held-out images, " + last.seconds.toFixed(1) + " s";
    for (const [name, r] of [["policy", last.policy], ["reference (SFT)", last.reference], ["identity", last.identity]]) {
      if (!r) continue; const tr = document.createElement("tr"); cell(tr, name);
      cell(tr, r.reward.toFixed(4)); cell(tr, r.ssim.toFixed(4)); cell(tr, r.clip_cos.toFixed(4)); cell(tr, r.psnr.toFixed(2)); tb.appendChild(tr);
    }
  }
  if (h.grid && h.grid.version !== gridVersion) {
    gridVersion = h.grid.version; const img = document.getElementById("grid");
    const src = "/api/eval-grid.png?v=" + gridVersion;
    img.alt = "evaluation grid, version " + gridVersion;
    if (!TOKEN) { img.src = src; img.hidden = false; }
    else fetch(src, {headers: AUTH, cache: "no-store"}).then((r) => r.ok ? r.blob() : Promise.reject(new Error("HTTP " + r.status))).then((b) => {
      if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
      img.src = URL.createObjectURL(b); img.hidden = false;
    }, (e) => { gridVersion = -1; document.getElementById("gridcols").textContent = "evaluation grid: " + e.message; });
    document.getElementById("gridcols").textContent = h.grid.columns.join(" | ") + " (version " + gridVersion + ")";
  }
  const wb = document.querySelector("#workers tbody"); wb.innerHTML = "";
  for (const x of h.workers) { const tr = document.createElement("tr"); cell(tr, x.role); cell(tr, x.worker_id); cell(tr, x.device); wb.appendChild(tr); }
  document.body.dataset.updates = String(+(document.body.dataset.updates || 0) + 1);
}
async function tick() {
  try {
    const r = await fetch("/api/history", {cache: "no-store", headers: AUTH});
    if (r.ok) render(await r.json());
    else if (r.status === 401) document.getElementById("updated").textContent = "this orchestrator takes a metrics token: open this page as /#token=TOKEN";
  }
  catch (e) { document.getElementById("updated").textContent = "orchestrator unreachable: " + e; }
  setTimeout(tick, 2000);
}
tick();
</script></body></html>
`;
