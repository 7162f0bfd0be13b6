// `npm run faults`: the network-fault suite of issue #16 on namespaced hosts (test/faults/), all five faults:
// a-d injected one after the other into one run, e (the NATS store lost) in a run of its own, since it takes
// the run's whole record with it. Prints the table docs/reliability.md keeps (and writes it to --out FILE);
// exits 1 if a run failed its audit or did not finish, 2 where network namespaces are unavailable.
//
//   npm run faults [-- --only a,c] [--out runs/netfaults.md]
import { writeFileSync } from 'node:fs';
import { netnsUnavailable } from '../../test/faults/netlab.ts';
import { runNetFaultSuite, type SuiteRun } from '../../test/faults/suite.ts';
import { FAULT_IDS, type FaultId } from '../../test/faults/net-faults.ts';
import { faultTable } from '../../test/faults/report.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const only = arg('only')?.split(',').map((x) => x.trim()) ?? [...FAULT_IDS];
for (const id of only) {
  if (!(FAULT_IDS as readonly string[]).includes(id)) {
    console.error(`faults: --only: unknown fault "${id}" (known: ${FAULT_IDS.join(', ')})`);
    process.exit(1);
  }
}
const why = netnsUnavailable();
if (why) {
  console.error(`faults: network namespaces unavailable here: ${why}`);
  process.exit(2);
}
const groups = [only.filter((id) => id !== 'e'), only.filter((id) => id === 'e')].filter((g) => g.length) as FaultId[][];
const runs: SuiteRun[] = [];
for (const faults of groups) {
  console.log(`[netfaults] run with faults ${faults.join(', ')}`);
  const run = await runNetFaultSuite({ faults, progress: (l) => console.log(l) });
  runs.push(run);
  const a = run.audit;
  console.log(`[netfaults] ${run.failure ? `FAILED: ${run.failure}` : 'finished'}; ${run.wallSeconds.toFixed(0)} s; ` +
    `${a ? `batches applied once ${a.appliedOnce}/${a.batches}; GRPO samples trained once ${a.trainedOnce}, dropped ${a.dropped}, lost ${a.lost}; ` : ''}` +
    `latency by ${run.netem ? 'tc netem' : 'relay + nftables (no netem)'}; leftovers: ${run.leftovers.length ? run.leftovers.join(', ') : 'none'}; log ${run.logFile}`);
}
const table = faultTable(runs);
console.log(`\n${table}`);
const out = arg('out');
if (out) writeFileSync(out, `${table}\n`);
process.exit(runs.some((r) => r.failure || r.leftovers.length) ? 1 : 0);
