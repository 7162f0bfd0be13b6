// Process logs: one JSON object per line (pino) when the output is not a terminal -- what a cluster's log collector
// reads -- and today's readable lines at a terminal. Every line carries the process's context: role, worker id,
// run id and policy version (the last two change while a process runs, so they are read when a line is written).
//
//   JSON:  {"level":"info","time":"2026-12-02T05:41:00.000Z","role":"rollout","worker_id":"rollout-0",
//           "run_id":"recovery-grpo","policy_version":12,"msg":"joined run recovery-grpo", ...fields}
//   text:  2026-12-02T05:41:00.000Z info [rollout rollout-0] joined run recovery-grpo {"policy_version":12}
//
// RECOVERY_GRPO_LOG_FORMAT=json|text overrides the choice (a terminal that wants JSON, a file that wants lines).
import { pino, type DestinationStream } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text';
export type LogFields = Record<string, unknown>;

export const LOG_FORMAT_ENV = 'RECOVERY_GRPO_LOG_FORMAT';

/** What every line says about the process. Getters for what changes while it runs. */
export interface LogContext {
  role: string;
  workerId?: string;
  runId?: string | (() => string | undefined);
  policyVersion?: () => number | undefined;
}

export interface ProcessLogger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Adds to (or replaces parts of) the context: the run id once known, the policy version's source. */
  setContext(ctx: Partial<LogContext>): void;
  readonly format: LogFormat;
}

export interface ProcessLoggerOptions {
  /** Default: RECOVERY_GRPO_LOG_FORMAT, else json unless `fd` is a terminal. */
  format?: LogFormat;
  /** File descriptor written to (default 2, stderr). */
  fd?: number;
  /** Written to instead of `fd` (tests). */
  stream?: { write(line: string): unknown };
  env?: NodeJS.ProcessEnv;
}

/** json or text for output `fd`, per the environment override or whether it is a terminal. */
export function logFormat(fd: number, env: NodeJS.ProcessEnv = process.env, isTty: (fd: number) => boolean = defaultIsTty): LogFormat {
  const v = env[LOG_FORMAT_ENV];
  if (v !== undefined && v !== '') {
    if (v !== 'json' && v !== 'text') throw new Error(`${LOG_FORMAT_ENV} must be json or text, not ${JSON.stringify(v)}`);
    return v;
  }
  return isTty(fd) ? 'text' : 'json';
}

function defaultIsTty(fd: number): boolean {
  if (fd === 1) return !!process.stdout.isTTY;
  if (fd === 2) return !!process.stderr.isTTY;
  return false;
}

function contextFields(ctx: LogContext): LogFields {
  const runId = typeof ctx.runId === 'function' ? ctx.runId() : ctx.runId;
  const version = ctx.policyVersion?.();
  return {
    role: ctx.role,
    ...(ctx.workerId !== undefined ? { worker_id: ctx.workerId } : {}),
    ...(runId !== undefined ? { run_id: runId } : {}),
    ...(version !== undefined ? { policy_version: version } : {}),
  };
}

/** A logger for one process (a role). Writes synchronously, so nothing is lost when the process exits right after. */
export function createProcessLogger(initial: LogContext, o: ProcessLoggerOptions = {}): ProcessLogger {
  const fd = o.fd ?? 2;
  const format = o.format ?? logFormat(fd, o.env);
  const ctx: LogContext = { ...initial };
  if (format === 'text') {
    const out = o.stream ?? { write: (s: string) => (fd === 1 ? process.stdout : process.stderr).write(s) };
    const prefix = () => [ctx.role, ctx.workerId].filter((x) => x !== undefined).join(' ');
    const line = (level: LogLevel) => (msg: string, fields?: LogFields) =>
      void out.write(`${new Date().toISOString()} ${level} [${prefix()}] ${msg}${fields && Object.keys(fields).length ? ' ' + JSON.stringify(fields) : ''}\n`);
    return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error'), setContext: (c) => Object.assign(ctx, c), format };
  }
  const dest: DestinationStream = o.stream
    ? { write: (s: string) => void o.stream!.write(s) }
    : pino.destination({ dest: fd, sync: true });
  const p = pino(
    {
      base: undefined,
      level: 'debug',
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: () => contextFields(ctx),
    },
    dest,
  );
  // pino takes (fields, message); fields given here win over the context fields of the same name.
  const at = (level: LogLevel) => (msg: string, fields?: LogFields) => p[level](fields ?? {}, msg);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), setContext: (c) => Object.assign(ctx, c), format };
}

/** Parses one JSON log line as written above; throws naming what is missing. */
export function parseLogLine(line: string): { level: LogLevel; time: string; role: string; msg: string } & LogFields {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error(`log line is not JSON: ${line.slice(0, 200)}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`log line is not a JSON object: ${line.slice(0, 200)}`);
  const o = v as LogFields;
  for (const k of ['level', 'time', 'role', 'msg'] as const) {
    if (typeof o[k] !== 'string') throw new Error(`log line has no string "${k}": ${line.slice(0, 200)}`);
  }
  if (!['debug', 'info', 'warn', 'error', 'fatal', 'trace'].includes(o.level as string)) throw new Error(`log line has an unknown level ${JSON.stringify(o.level)}`);
  return o as { level: LogLevel; time: string; role: string; msg: string } & LogFields;
}
