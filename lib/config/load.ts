// Loading the run configuration: read YAML or JSON, apply dotted-key overrides, validate with the schema.
// Errors name the field path, the problem, the offending value and where it came from:
//   config error: grpo.clipLow: must be > 0 (got -1) in run.yaml

import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import { configSchema, FAMILY_DEFAULTS, type RunConfig } from './schema.ts';
import { kind, objectShape, renderType, schemaAt } from './introspect.ts';
import { SetupError } from './setup-error.ts';

export interface ConfigIssue {
  /** Dotted field path ('' for the whole file). */
  path: string;
  message: string;
  /** Where the offending value came from: the file, `override k=v`, or 'defaults'. */
  source: string;
}

/** A refused run configuration: a SetupError (a role exits CONFIG_EXIT_CODE on it, and is not restarted as it is). */
export class ConfigError extends SetupError {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(issues.map((i) => `config error: ${i.path ? `${i.path}: ` : ''}${i.message} in ${i.source}`).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export type Overrides = Record<string, string> | readonly string[];

interface ParsedOverride {
  key: string;
  path: string[];
  raw: string;
  label: string;
}

/** Keys that name an object's prototype machinery, never a configuration field. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function parseOverrides(overrides: Overrides | undefined): ParsedOverride[] {
  if (!overrides) return [];
  const pairs: [string, string][] = [];
  if (Array.isArray(overrides)) {
    for (const o of overrides as readonly string[]) {
      const eq = o.indexOf('=');
      if (eq <= 0) throw new ConfigError([{ path: '', message: `override ${JSON.stringify(o)} must look like key.path=value`, source: 'overrides' }]);
      pairs.push([o.slice(0, eq).trim(), o.slice(eq + 1)]);
    }
  } else {
    for (const [k, v] of Object.entries(overrides as Record<string, string>)) pairs.push([k.trim(), String(v)]);
  }
  return pairs.map(([key, raw]) => {
    const path = key.split('.');
    if (path.some((p) => p === '')) throw new ConfigError([{ path: key, message: 'empty segment in override key', source: `override ${key}=${raw}` }]);
    // `__proto__.x=1` would walk into Object.prototype and set x on every object in the process.
    const bad = path.find((p) => PROTOTYPE_KEYS.has(p));
    if (bad !== undefined) throw new ConfigError([{ path: key, message: `"${bad}" is not a configuration key (prototype keys are refused)`, source: `override ${key}=${raw}` }]);
    return { key, path, raw, label: `override ${key}=${raw}` };
  });
}

/**
 * The value of an override: JSON when it parses as JSON; else, for a list or map written as in a YAML run file
 * (`[gaussian_noise, motion_blur]`, `{scan_lines: 4}`: a YAML flow collection), that; else the raw string. Where the
 * schema expects a string (or a string enum) the raw text is kept, so `run.id=007` or `run.id=123` stay strings.
 */
function overrideValue(o: ParsedOverride): unknown {
  const target = schemaAt(configSchema, o.path);
  const k = target ? kind(target) : undefined;
  if (k === 'string' || k === 'enum') {
    // A JSON string literal ("x") still unquotes.
    if (/^".*"$/s.test(o.raw)) {
      try {
        const v = JSON.parse(o.raw);
        if (typeof v === 'string') return v;
      } catch { /* keep raw */ }
    }
    return o.raw;
  }
  try {
    return JSON.parse(o.raw);
  } catch { /* not JSON */ }
  // the run file's YAML accepts unquoted names in a flow list or map; so does --set (round 29: `--set
  // data.corruptions.types=[scan_lines]` was taken as the string "[scan_lines]" and refused as not a list)
  if (/^\s*[[{]/.test(o.raw)) {
    try {
      return YAML.parse(o.raw) as unknown;
    } catch { /* neither: the raw string, which the schema then refuses naming the override */ }
  }
  return o.raw;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Apply dotted-key overrides to a (parsed, unvalidated) config object. Returns a new object. */
export function applyOverrides(input: unknown, overrides: Overrides | undefined): Record<string, unknown> {
  return applyParsed(input, parseOverrides(overrides));
}

function applyParsed(input: unknown, overrides: ParsedOverride[]): Record<string, unknown> {
  const root: Record<string, unknown> = isPlainObject(input) ? structuredClone(input) : {};
  for (const o of overrides) {
    let node: Record<string, unknown> | unknown[] = root;
    for (let i = 0; i < o.path.length; i++) {
      const seg = o.path[i]!;
      const last = i === o.path.length - 1;
      const where = o.path.slice(0, i).join('.') || '(root)';
      if (Array.isArray(node)) {
        if (!/^\d+$/.test(seg)) throw new ConfigError([{ path: o.key, message: `${where} is a list; "${seg}" is not an index`, source: o.label }]);
        const idx = Number(seg);
        if (last) node[idx] = overrideValue(o);
        else {
          if (!isPlainObject(node[idx]) && !Array.isArray(node[idx])) node[idx] = {};
          node = node[idx] as Record<string, unknown> | unknown[];
        }
        continue;
      }
      if (last) {
        node[seg] = overrideValue(o);
        break;
      }
      let next = node[seg];
      if (next === undefined || next === null) {
        // Create the container the schema expects there, starting from its default: `optim.betas.1=0.99`
        // changes one item of the default pair, `reward.weights.clip=0.5` one entry of the default weights.
        const sub = schemaAt(configSchema, o.path.slice(0, i + 1));
        const d = sub ? defaultOf(sub) : undefined;
        if (Array.isArray(d) || isPlainObject(d)) next = structuredClone(d);
        else next = sub && (kind(sub) === 'array' || kind(sub) === 'tuple') ? [] : {};
        node[seg] = next;
      } else if (!isPlainObject(next) && !Array.isArray(next)) {
        throw new ConfigError([{ path: o.key, message: `${o.path.slice(0, i + 1).join('.')} is ${JSON.stringify(next)}, not an object`, source: o.label }]);
      }
      node = next as Record<string, unknown> | unknown[];
    }
  }
  return root;
}

function defaultOf(s: z.ZodType): unknown {
  const r = s.safeParse(undefined);
  return r.success ? r.data : undefined;
}

function got(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (typeof input === 'number' && !Number.isFinite(input)) return String(input); // YAML's .nan and .inf (JSON says null)
  let s: string;
  try {
    s = JSON.stringify(input);
  } catch {
    s = String(input);
  }
  if (s === undefined) s = String(input);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function describeIssue(issue: z.core.$ZodIssue): { path: (string | number)[]; message: string }[] {
  const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p)) as (string | number)[];
  const input = (issue as { input?: unknown }).input;
  const target = schemaAt(configSchema, path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const shape = objectShape(schemaAt(configSchema, path) ?? configSchema);
      const allowed = shape ? ` (known: ${Object.keys(shape).join(', ')})` : '';
      return issue.keys.map((k) => ({ path: [...path, k], message: `unknown key${allowed}` }));
    }
    case 'invalid_type':
      if (input === undefined) return [{ path, message: 'is required' }];
      return [{ path, message: `expected ${target ? renderType(target) : issue.expected} (got ${got(input)})` }];
    case 'invalid_union':
      return [{ path, message: `expected ${target ? renderType(target) : 'another type'} (got ${got(input)})` }];
    case 'invalid_value':
      return [{ path, message: `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')} (got ${got(input)})` }];
    case 'too_small': {
      const inc = issue.inclusive !== false;
      if (issue.origin === 'array' || issue.origin === 'set') {
        return [{ path, message: `must have at least ${issue.minimum} item${Number(issue.minimum) === 1 ? '' : 's'} (got ${got(input)})` }];
      }
      if (issue.origin === 'string') return [{ path, message: `must be at least ${issue.minimum} character${Number(issue.minimum) === 1 ? '' : 's'} long (got ${got(input)})` }];
      return [{ path, message: `must be ${inc ? '>=' : '>'} ${issue.minimum} (got ${got(input)})` }];
    }
    case 'too_big': {
      const inc = issue.inclusive !== false;
      if (issue.origin === 'array' || issue.origin === 'set') return [{ path, message: `must have at most ${issue.maximum} items (got ${got(input)})` }];
      if (issue.origin === 'string') return [{ path, message: `must be at most ${issue.maximum} characters long (got ${got(input)})` }];
      return [{ path, message: `must be ${inc ? '<=' : '<'} ${issue.maximum} (got ${got(input)})` }];
    }
    case 'invalid_format':
      return [{ path, message: `${issue.message} (got ${got(input)})` }];
    case 'invalid_key':
      return [{ path, message: `key ${issue.issues.map((i) => i.message).join('; ')}` }];
    default: {
      const msg = issue.message;
      return [{ path, message: input !== undefined && !msg.includes('(got') && issue.code !== 'custom' ? `${msg} (got ${got(input)})` : msg }];
    }
  }
}

function sourceFor(path: string, overrides: ParsedOverride[], fileLabel: string): string {
  // The last override that set this field, a parent of it, or a child of it.
  for (let i = overrides.length - 1; i >= 0; i--) {
    const k = overrides[i]!.key;
    if (path === k || path.startsWith(`${k}.`) || k.startsWith(`${path}.`)) return overrides[i]!.label;
  }
  // A cross-field check on a sibling of an overridden field (data.source.kind=folder -> data.source.path).
  const parent = path.split('.').slice(0, -1).join('.');
  for (let i = overrides.length - 1; i >= 0; i--) {
    if (parent !== '' && overrides[i]!.path.slice(0, -1).join('.') === parent) return `${fileLabel} with ${overrides[i]!.label}`;
  }
  return fileLabel;
}

function validate(data: unknown, overrides: ParsedOverride[], fileLabel: string): RunConfig {
  const r = configSchema.safeParse(data, { reportInput: true });
  if (r.success) return r.data;
  const issues: ConfigIssue[] = [];
  for (const issue of r.error.issues) {
    for (const d of describeIssue(issue)) {
      const path = d.path.join('.');
      issues.push({ path, message: d.message, source: sourceFor(path, overrides, fileLabel) });
    }
  }
  throw new ConfigError(issues);
}

/** The JSON string literal that starts at `at` in `text` (a key the parser points at). */
function jsonStringAt(text: string, at: number): string {
  const re = /"(?:[^"\\]|\\.)*"/y;
  re.lastIndex = at;
  return re.exec(text)?.[0] ?? `at offset ${at}`;
}

/** Parse config text (YAML, which includes JSON; `format: 'json'` for strict JSON). `label` names it in errors. */
export function parseConfigText(text: string, label: string, format: 'yaml' | 'json' = 'yaml'): unknown {
  if (format === 'json') {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new ConfigError([{ path: '', message: `invalid JSON: ${(e as Error).message}`, source: label }]);
    }
    // JSON.parse keeps the last of two equal keys; refused, as in YAML (the yaml parser reads JSON too)
    const duplicates = YAML.parseDocument(text, { uniqueKeys: true, schema: 'json' }).errors.filter((e) => e.code === 'DUPLICATE_KEY');
    if (duplicates.length > 0) {
      throw new ConfigError(duplicates.map((e) => ({
        path: '', message: `invalid JSON: duplicate key ${jsonStringAt(text, e.pos[0])} at line ${e.linePos?.[0].line ?? '?'}`, source: label,
      })));
    }
    return data;
  }
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => ({ path: '', message: `invalid YAML: ${e.message.split('\n')[0]!.replace(/:$/, '')}`, source: label })));
  }
  return doc.toJS();
}

/** `under` with `over` laid on it: objects merge key by key, anything else `over` sets replaces what `under` has. */
function layer(under: unknown, over: unknown): unknown {
  if (!isPlainObject(under) || !isPlainObject(over)) return over === undefined ? under : over;
  const out: Record<string, unknown> = { ...under };
  for (const [k, v] of Object.entries(over)) out[k] = layer(under[k], v);
  return out;
}

/**
 * Validate an already-parsed config object (after applying overrides). `defaults`: dotted-key settings laid
 * underneath `data`, so they apply only where it leaves a field unset (a program's own defaults, such as the
 * demo's: lib/local/demo-defaults.ts); `overrides` still win over both.
 */
export function parseConfig(data: unknown, options: { overrides?: Overrides; defaults?: Overrides; source?: string } = {}): RunConfig {
  const parsed = parseOverrides(options.overrides);
  const label = options.source ?? 'config';
  if (data !== undefined && data !== null && !isPlainObject(data)) {
    throw new ConfigError([{ path: '', message: `the configuration must be a mapping of sections (got ${got(data)})`, source: label }]);
  }
  const programDefaults = parseOverrides(options.defaults);
  const base = options.defaults ? layer(applyParsed({}, programDefaults), data ?? {}) : data ?? {};
  const merged = applyParsed(base, parsed);
  // A field is unset when neither the file nor a setting names it: the merged object cannot tell, since a setting
  // inside a missing section creates the section from the schema's defaults (`grpo.beta=0.04` writes the default
  // grpo.advantageMode beside it).
  const isSet = (path: readonly string[]) => valueAt(data, path) !== undefined || [...programDefaults, ...parsed].some((o) => setsPath(o, path));
  return validate(withFamilyDefaults(merged, isSet), parsed, label);
}

/** The value at `path` inside `x` (undefined where a step is missing). */
function valueAt(x: unknown, path: readonly string[]): unknown {
  let node = x;
  for (const seg of path) {
    if (!isPlainObject(node)) return undefined;
    node = node[seg];
  }
  return node;
}

/** Whether setting `o` sets `path`: its key is the path, or a parent of it whose value holds the rest. */
function setsPath(o: ParsedOverride, path: readonly string[]): boolean {
  if (o.path.length > path.length || o.path.some((seg, i) => seg !== path[i])) return false;
  return o.path.length === path.length || valueAt(overrideValue(o), path.slice(o.path.length)) !== undefined;
}

/** `merged` with its model.family's FAMILY_DEFAULTS (schema.ts) in the fields no source set. */
function withFamilyDefaults(merged: Record<string, unknown>, isSet: (path: readonly string[]) => boolean): Record<string, unknown> {
  const family = valueAt(merged, ['model', 'family']);
  const defaults = family === 'flow' || family === 'gaussian' ? parseOverrides(FAMILY_DEFAULTS[family]) : [];
  return applyParsed(merged, defaults.filter((d) => !isSet(d.path)));
}

/**
 * Load the run configuration. `path`: a .yaml/.yml/.json file (other extensions are read as YAML); absent:
 * every default. `overrides`: dotted keys, `{ 'reward.weights.clip': '0.5' }` or `['reward.weights.clip=0.5']`,
 * applied before validation; values are JSON where they parse as JSON (numbers, booleans, arrays, objects),
 * else strings. `defaults`: settings in the same form laid underneath the file (they apply only where the file
 * leaves a field unset; overrides win over both). Throws ConfigError naming each bad field, the problem and its source.
 */
export function loadConfig(path?: string, overrides?: Overrides, defaults?: Overrides): RunConfig {
  if (path === undefined) return parseConfig({}, { overrides: overrides ?? [], ...(defaults ? { defaults } : {}), source: 'defaults' });
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([{ path: '', message: `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, source: path }]);
  }
  const data = parseConfigText(text, path, extname(path).toLowerCase() === '.json' ? 'json' : 'yaml');
  return parseConfig(data, { overrides: overrides ?? [], ...(defaults ? { defaults } : {}), source: path });
}
