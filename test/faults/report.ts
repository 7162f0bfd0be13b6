// The network-fault suite's table (markdown), one row per fault: what was done, its measured stall and
// recovery, and the run's exactly-once and no-loss counts from the audit.
import type { SuiteRun } from './suite.ts';

const s = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

export function faultTable(runs: SuiteRun[]): string {
  const head = ['fault', 'how', 'batches during', 'longest without a batch', 'next batch after it ended', 'cut worker back (first rollout after)', 'run finished', 'batches applied exactly once', 'GRPO samples trained once / dropped / lost'];
  const rows: string[][] = [];
  for (const r of runs) {
    const a = r.audit;
    for (const f of r.faults) {
      rows.push([
        `${f.id}. ${f.title}`,
        f.note,
        String(f.batchesDuring),
        s(f.stallMs),
        s(f.recoveryMs),
        f.cutWorker ? `${f.cutWorker}: ${s(f.rejoinMs)}` : '',
        r.failure ? `**no**: ${r.failure}` : 'yes',
        a ? `${a.appliedOnce}/${a.batches}` : '-',
        a ? `${a.trainedOnce} / ${a.dropped} / ${a.lost}` : '-',
      ]);
    }
  }
  const line = (c: string[]) => `| ${c.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}
