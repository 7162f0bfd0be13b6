// What handing the scorer distinct references and a row index would save (round 17, fix17): the reward worker and the
// single-process loop repeat a group's one reference G times, and the scorer's one-lane graph finds the repeats again
// (rewardRowFeeds -> equalRuns, a byte compare of the rows). Measured in one process, per group of G = 8: that compare
// and the repeat copy, against the scorer call they serve (one lane, the shared-reference graph). The graph still needs
// the N reference rows for SSIM, so an index would drop only the compare; the copy would move into the scorer.
//   nice -n 10 node --import tsx bench/reward-equal-runs.ts [sizes, default 32,64,128]
import { RewardScorer } from '../lib/models/scorer.ts';
import { equalRuns } from '../lib/graph/shared-rows.ts';
import { rng } from '../lib/data/random.ts';

const sizes = (process.argv[2] ?? '32,64,128').split(',').map(Number);
const G = 8;
const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;
const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)]!;
for (const S of sizes) {
  const per = 3 * S * S;
  const r = rng(1);
  const candidates = new Float32Array(G * per).map(() => r.float());
  const reference = new Float32Array(per).map(() => r.float());
  const references = new Float32Array(G * per);
  const repeat = () => {
    for (let a = 0; a < G; a++) references.set(reference, a * per);
  };
  repeat();
  const scorer = new RewardScorer(undefined, 'cpu', { lanes: 1 });
  const batch = { candidates, references, n: G, height: S, width: S };
  await scorer.score(batch); // the session, and its first run
  const perCall = (f: () => unknown, reps: number) => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < reps; i++) f();
    return cpuMs(process.cpuUsage(c0)) / reps;
  };
  const [copy, compare, score]: number[][] = [[], [], []];
  for (let rep = 0; rep < 5; rep++) {
    copy.push(perCall(repeat, 200));
    compare.push(perCall(() => equalRuns(references, G, 'references'), 200));
    const c0 = process.cpuUsage();
    for (let i = 0; i < 10; i++) await scorer.score(batch);
    score.push(cpuMs(process.cpuUsage(c0)) / 10);
  }
  const [cp, eq, sc] = [median(copy), median(compare), median(score)];
  console.log(`${S} px, G = ${G}: equalRuns ${(eq * 1000).toFixed(1)} us (${((100 * eq) / sc).toFixed(2)}% of the call), repeat copy ${(cp * 1000).toFixed(1)} us, scorer call ${sc.toFixed(2)} ms CPU (medians of 5)`);
  await scorer.close();
}
