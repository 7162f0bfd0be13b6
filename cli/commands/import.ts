// `recovery-grpo import`: checks an ONNX network (for example one exported by torch.onnx.export) for use
// as a policy and writes a report: ops, parameters, contract, forward against onnxruntime, gradients.
import type { CommandModule } from 'yargs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

interface Args {
  onnx: string;
  weights?: string;
  out: string;
  height?: number;
  width?: number;
  image?: string;
  extraInput?: string[];
}

const command: CommandModule<object, Args> = {
  command: 'import',
  describe: 'check an ONNX network for use as a policy and write report.json (ops, parameters, contract, forward vs onnxruntime, gradient check)',
  builder: (y) =>
    y
      .option('onnx', { type: 'string', demandOption: true, describe: 'the ONNX file (weights as initializers)' })
      .option('weights', { type: 'string', describe: 'a safetensors state dict whose tensors replace the initializers' })
      .option('out', { type: 'string', demandOption: true, describe: 'output folder for report.json' })
      .option('height', { type: 'number', describe: 'image height, for graphs with dynamic spatial sizes' })
      .option('width', { type: 'number', describe: 'image width, for graphs with dynamic spatial sizes' })
      .option('image', { type: 'string', describe: "the image input's name (default: the first input)" })
      .option('extra-input', { type: 'string', array: true, describe: 'an input besides the image the policy feeds (repeatable)' }) as never,
  handler: async (args) => {
    const { importReport, reportPassed, summarise } = await import('../../lib/import/report.ts');
    const report = await importReport(args.onnx, {
      weights: args.weights,
      height: args.height,
      width: args.width,
      image: args.image,
      extraInputs: args.extraInput,
    });
    await mkdir(args.out, { recursive: true });
    await writeFile(join(args.out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    console.log(summarise(report));
    if (!reportPassed(report)) process.exitCode = 1;
  },
};
export default command;
