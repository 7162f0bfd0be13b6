// The load bench's offer timer on its own: CPU per second of a process whose only work is an empty 1 ms
// setInterval (what bench/load.bench.ts's orchestrator process pays for its load generator's wake-ups).
//   taskset -c 0 node --import tsx bench/offer-timer.ts [seconds]
const seconds = Number(process.argv[2] ?? 5);
if (!(seconds > 0)) throw new Error(`offer-timer: seconds must be positive, got ${process.argv[2]}`);
const c0 = process.cpuUsage();
const t0 = performance.now();
let ticks = 0;
const tick = setInterval(() => void ticks++, 1);
setTimeout(() => {
  clearInterval(tick);
  const c = process.cpuUsage(c0);
  const s = (performance.now() - t0) / 1000;
  console.log(`${(ticks / s).toFixed(0)} ticks/s; CPU ${((c.user + c.system) / 1000 / s).toFixed(1)} ms/s (user ${(c.user / 1000 / s).toFixed(1)}, system ${(c.system / 1000 / s).toFixed(1)}), ${((c.user + c.system) / Math.max(1, ticks)).toFixed(1)} us per tick`);
}, seconds * 1000);
