// The cost of eval.draws (docs/evaluation.md): the demo's final evaluation (identity, the warm start and the final
// policy, i.e. two policy means) on the built-in photographs' evaluation split, with one draw per photograph and
// with every type, in CPU seconds of this process (user + system, onnxruntime's threads included) and wall
// seconds: preparing the samples (decode, corrupt) and evaluating them. The policies are the initial parameters
// (the cost does not depend on them); no reward is printed.
//   npm run bench -- eval-draws          (EVAL_DRAWS_IMAGES=16 for a shorter run; EVAL_DRAWS_MODES=one for one mode)
import { loadConfig } from '../lib/config/index.ts';
import { configEvalSamples, evaluate, gridIndices } from '../lib/eval/evaluate.ts';
import { DEMO_OVERRIDES } from '../lib/local/demo-defaults.ts';
import { initialParamsOf } from '../lib/models/bundle.ts';
import type { EvalDraws } from '../lib/data/eval-draws.ts';

export async function run(): Promise<void> {
  const images = Number(process.env.EVAL_DRAWS_IMAGES ?? 64);
  const config = loadConfig(undefined, [...DEMO_OVERRIDES, `eval.samples=${images}`]);
  const params = initialParamsOf(config);
  const cpu = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1e6;
  console.log(`| eval.draws | images | draws | prepare CPU s | evaluate CPU s (3 policies) | CPU ms per draw | wall s |`);
  console.log('|---|---|---|---|---|---|---|');
  // EVAL_DRAWS_MODES=one (or every-type) runs one mode alone, e.g. to read its peak memory from /usr/bin/time -v.
  const modes = (process.env.EVAL_DRAWS_MODES?.split(',') ?? ['one', 'every-type', 'one']) as EvalDraws[];
  for (const mode of modes) {
    const w0 = performance.now();
    const c0 = process.cpuUsage();
    // A fresh dataset each time: no decoded image is reused between modes.
    const samples = await configEvalSamples(config, { count: images, draws: mode });
    const prep = cpu(process.cpuUsage(c0));
    const c1 = process.cpuUsage();
    await evaluate(config, samples, {
      identity: { kind: 'identity' },
      before: { kind: 'mean', params },
      after: { kind: 'mean', params },
    }, { keep: gridIndices(samples, 6) });
    const ev = cpu(process.cpuUsage(c1));
    const wall = (performance.now() - w0) / 1000;
    console.log(`| ${mode} | ${images} | ${samples.length} | ${prep.toFixed(1)} | ${ev.toFixed(1)} | ${((1000 * (prep + ev)) / samples.length).toFixed(1)} | ${wall.toFixed(1)} |`);
  }
}
