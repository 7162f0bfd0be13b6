// One line per reach.ts output: the spread, the reach after the trained steps (each step's mean R/G/B uniform reach,
// weighted by how many of the groups trained it) and the last step's gain (mean R/G/B): results.md's seed table.
//
//   node --import tsx docs/results/flow34/summarize-reach.ts diagnosis/reach-*.txt
import { readFileSync } from 'node:fs';

for (const file of process.argv.slice(2)) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const spread = Number(lines.find((l) => l.startsWith('spread'))!.split(':')[1]);
  let num = 0;
  let den = 0;
  let lastGain = Number.NaN;
  for (const line of lines.filter((l) => /^\d\s/.test(l))) {
    const [left, right] = [line.slice(0, line.indexOf('|')), line.slice(line.indexOf('|') + 1)];
    const tokens = left.replaceAll('/', ' ').split(/\s+/).filter(Boolean);
    // index t t_next r trained-count groups gainR gainG gainB element
    const trained = Number(tokens[4]);
    const gain = (Number(tokens[6]) + Number(tokens[7]) + Number(tokens[8])) / 3;
    if (right.includes('the last step')) { lastGain = gain; continue; }
    const reach = right.split('|')[0]!.replaceAll('/', ' ').split(/\s+/).filter(Boolean).map(Number);
    num += trained * reach[3]!;
    den += trained;
  }
  console.log(`${file}: spread ${spread.toFixed(4)}, reach after the trained steps ${(num / den).toFixed(3)}, last step's gain ${lastGain.toFixed(3)}`);
}
