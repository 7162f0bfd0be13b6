// One line per acknowledged batch, for people watching a run.
import type { Progress } from './coordinator.ts';

const f = (x: number | undefined, digits = 4) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits));

export function formatProgress(p: Progress): string {
  const head = `[${p.phase === 'done' ? 'grpo' : p.phase}] batch ${p.seq}/${p.totalSeq} v${p.version} loss ${f(p.loss, 5)}`;
  if (p.reward === undefined) return `${head} | ${p.samplesPerSecond.toFixed(1)} samples/s`;
  const comps = Object.entries(p.components ?? {}).map(([k, v]) => `${k} ${f(v)}`).join(' ');
  return `${head} reward ${f(p.reward)} (${comps}) kl ${f(p.kl, 6)} clip ${f(p.clipFraction, 3)} | ${p.samplesPerSecond.toFixed(1)} actions/s`;
}
