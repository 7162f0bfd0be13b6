// Options shared by the commands that read the run configuration.
import type { Argv } from 'yargs';
import { loadConfig, type RunConfig } from '../lib/config/index.ts';

export interface ConfigArgs {
  config?: string;
  set?: string[];
}

export function withConfig<T>(y: Argv<T>): Argv<T & ConfigArgs> {
  return y
    .option('config', { type: 'string', describe: 'run configuration file (YAML or JSON); defaults apply where absent' })
    .option('set', { type: 'string', array: true, describe: 'override a field: --set reward.weights.clip=0.5 (repeatable)' }) as Argv<T & ConfigArgs>;
}

export function runConfigFrom(args: ConfigArgs, extra: string[] = []): RunConfig {
  return loadConfig(args.config, [...(args.set ?? []), ...extra]);
}
