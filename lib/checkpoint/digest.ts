import { createHash } from 'node:crypto';

/** Lower-case hex sha256 of some bytes. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Canonical JSON (RFC 8785 style): object keys sorted by UTF-16 code units at every level, no whitespace,
 * numbers as ECMAScript prints them, keys whose value is undefined dropped. Throws on values JSON cannot carry
 * faithfully (NaN, Infinity, bigint, functions, symbols, undefined array items, class instances such as Map).
 */
export function canonicalJson(value: unknown): string {
  return canon(value, '$');
}

function canon(v: unknown, path: string): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'string':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) throw new Error(`canonicalJson: non-finite number ${v} at ${path}`);
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) {
        return `[${v.map((x, i) => {
          if (x === undefined) throw new Error(`canonicalJson: undefined array item at ${path}[${i}]`);
          return canon(x, `${path}[${i}]`);
        }).join(',')}]`;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        throw new Error(`canonicalJson: cannot encode ${(v as object).constructor?.name ?? 'object'} at ${path}`);
      }
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canon(obj[k], `${path}.${k}`)}`).join(',')}}`;
    }
    default:
      throw new Error(`canonicalJson: cannot encode ${typeof v} at ${path}`);
  }
}

/**
 * Run-configuration fields that cannot change what is trained: where outputs go, where services listen, and how
 * the orchestrator routes tasks to workers (dispatch policy and coalescing: which worker runs a task, and when;
 * grpo.quarantineAfter and grpo.quarantineWindow: which workers it stops sending tasks to, a batch's content being a
 * function of its number).
 * configHash() leaves them out, so the same training under another output folder or on other ports has the
 * same hash (and, the run id and seed being equal, byte-identical checkpoints).
 */
export const CONFIG_HASH_IGNORES = ['run.outDir', 'orchestrator.listen', 'nats.url', 'metrics.port', 'orchestrator.dispatch', 'orchestrator.coalesceMs', 'orchestrator.bundleMs', 'grpo.quarantineAfter', 'grpo.quarantineWindow'] as const;

function withoutIgnored(config: unknown): unknown {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return config;
  let copy: Record<string, unknown> | undefined;
  for (const path of CONFIG_HASH_IGNORES) {
    const [section, field] = path.split('.') as [string, string];
    const sec = (config as Record<string, unknown>)[section];
    if (sec === null || typeof sec !== 'object' || !(field in sec)) continue;
    copy ??= { ...(config as Record<string, unknown>) };
    const { [field]: _dropped, ...rest } = copy[section] as Record<string, unknown>;
    copy[section] = rest;
  }
  return copy ?? config;
}

/**
 * sha256 (hex) of the canonical JSON of a configuration object: equal configs hash equal whatever key order.
 * The fields in CONFIG_HASH_IGNORES are left out.
 */
export function configHash(config: unknown): string {
  return sha256Hex(canonicalJson(withoutIgnored(config)));
}
