import { parseConfig } from '../lib/config/index.ts';
import { initialParamsOf } from '../lib/models/bundle.ts';
import { PolicyRunner } from '../lib/models/runner.ts';
const config = parseConfig({ run: { id: 'x', seed: 0 } }, { overrides: [], source: 'b' });
const H = config.data.size as number; const n = 32; const per = 3 * H * H;
const params = initialParamsOf(config);
const runner = await PolicyRunner.create(config);
const images = new Float32Array(n * per);
for (let g = 0; g < 4; g++) { const img = Float32Array.from({ length: per }, (_, i) => 0.5 + 0.3 * Math.sin(i * 0.01 * (g + 1))); for (let k = 0; k < 8; k++) images.set(img, (g * 8 + k) * per); }
const a = (await runner.run(params, images, new Float32Array(images.length), n)).mean;
const b = await runner.mean(params, images, n);
console.log('same bytes', Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer)) === 0);
for (let r = 0; r < 3; r++) for (const [name, f] of [['run', async () => (await runner.run(params, images, new Float32Array(images.length), n)).mean], ['mean', () => runner.mean(params, images, n)]] as const) {
  for (let i = 0; i < 10; i++) await f();
  const c = process.cpuUsage(); for (let i = 0; i < 100; i++) await f(); const d = process.cpuUsage(c);
  console.log(name, ((d.user + d.system) / 1000 / 100).toFixed(3), 'ms CPU per call');
}
process.exit(0);
