// The whole GRPO step (PolicyTrainer.grpoStep: the graph and AdamW) of this tree against another tree's
// (GRPO_STEP_AB_BASE), and both against this tree's policy forward, interleaved in one process (the arms take turns
// going first), on bench/grpo-setup.ts's case (bench models' `RESULT grpo` figure). Each trainer steps its own copy of
// the parameters. Medians of wall and process CPU time.
//
//   GRPO_STEP_AB_BASE=/work/main [GRPO_STEP_AB_SIZES=64,128] [GRPO_STEP_AB_MODES=scalar,dense] [GRPO_STEP_AB_REPS=5]
//   node --import tsx bench/grpo-step-ab.ts
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { grpoBenchCase, interleaved } from './grpo-setup.ts';
import type { RunConfig } from '../lib/config/index.ts';
import type { TensorMap } from '../lib/checkpoint/tensors.ts';
import type { GrpoInputs } from '../lib/models/trainer.ts';

interface Trainer { grpoStep(b: GrpoInputs): Promise<unknown>; release(): Promise<void> }
interface TrainerModule { PolicyTrainer: { create(config: RunConfig, params: TensorMap): Trainer } }

const base = process.env.GRPO_STEP_AB_BASE;
if (!base) throw new Error('GRPO_STEP_AB_BASE: the other tree (e.g. /work/main) is required');
const baseTrainer = (await import(resolve(base, 'lib/models/trainer.ts'))) as TrainerModule;
const sizes = (process.env.GRPO_STEP_AB_SIZES ?? '64,128').split(',').map(Number);
const modes = (process.env.GRPO_STEP_AB_MODES ?? 'scalar,dense').split(',') as Array<'scalar' | 'dense'>;
const reps = Number(process.env.GRPO_STEP_AB_REPS ?? 5);
const N = 32;

console.log(`base ${base}; load average at the start ${loadavg().map((v) => v.toFixed(1)).join(' ')}`);
for (const size of sizes) for (const mode of modes) {
  const { config, params, runner, trainer, images, noise, batch } = await grpoBenchCase(size, mode, N);
  const copy: TensorMap = new Map([...params].map(([k, t]) => [k, { shape: [...t.shape], data: t.data.slice() }]));
  const other = baseTrainer.PolicyTrainer.create(config, copy);
  const arms: Array<[string, () => Promise<unknown>]> = [
    ['policy forward (this tree)', () => runner.run(params, images, noise, N)],
    [`GRPO step, base (${base})`, () => other.grpoStep(batch)],
    ['GRPO step, this tree', () => trainer.grpoStep(batch)],
  ];
  const [fwd, b, t] = await interleaved(reps, arms);
  console.log(`GRPO ${size} px ${mode}, batch ${N} (medians of ${reps}, interleaved):`);
  arms.forEach(([label], i) => {
    const x = [fwd, b, t][i]!;
    console.log(`  ${label.padEnd(40)} ${x.wall.toFixed(1).padStart(8)} ms wall ${x.cpu.toFixed(1).padStart(8)} ms CPU   ${(x.wall / fwd!.wall).toFixed(2)}x wall ${(x.cpu / fwd!.cpu).toFixed(2)}x CPU the forward`);
  });
  console.log(`  RESULT grpo-step-ab ${size}px ${mode}: base ${(b!.wall / fwd!.wall).toFixed(2)}x, this tree ${(t!.wall / fwd!.wall).toFixed(2)}x the forward's wall (CPU ${(b!.cpu / fwd!.cpu).toFixed(2)}x, ${(t!.cpu / fwd!.cpu).toFixed(2)}x); load average ${loadavg().map((v) => v.toFixed(1)).join(' ')}`);
  await Promise.all([runner.release(), trainer.release(), other.release()]);
}
