// Walking zod (v4) schemas: used to render the reference table, phrase error messages and type overrides.

import type { z } from 'zod';

type AnyDef = { type: string; [k: string]: unknown };
type Schema = z.ZodType;

function def(s: Schema): AnyDef {
  return (s as unknown as { def: AnyDef }).def;
}

export interface Unwrapped {
  /** The schema under default/prefault/optional/nullable/readonly wrappers. */
  inner: Schema;
  hasDefault: boolean;
  defaultValue?: unknown;
  optional: boolean;
  /** The first description found, outermost first. */
  description?: string;
}

export function unwrap(schema: Schema): Unwrapped {
  let s = schema;
  const out: Unwrapped = { inner: schema, hasDefault: false, optional: false };
  for (;;) {
    if (out.description === undefined && s.description !== undefined) out.description = s.description;
    const d = def(s);
    if (d.type === 'default' || d.type === 'prefault') {
      if (!out.hasDefault) {
        out.hasDefault = true;
        out.defaultValue = d.defaultValue;
      }
      s = d.innerType as Schema;
    } else if (d.type === 'optional' || d.type === 'nullable' || d.type === 'readonly') {
      if (d.type === 'optional') out.optional = true;
      s = d.innerType as Schema;
    } else if (d.type === 'pipe') {
      s = d.in as Schema;
    } else break;
  }
  out.inner = s;
  return out;
}

export function kind(schema: Schema): string {
  return def(unwrap(schema).inner).type;
}

/** The fields of an object schema (after unwrapping), or undefined. */
export function objectShape(schema: Schema): Record<string, Schema> | undefined {
  const inner = unwrap(schema).inner;
  const d = def(inner);
  return d.type === 'object' ? (d.shape as Record<string, Schema>) : undefined;
}

/** The schema at a path (object keys, record values, array elements, tuple items), or undefined. */
export function schemaAt(root: Schema, path: readonly (string | number)[]): Schema | undefined {
  let s: Schema | undefined = root;
  for (const seg of path) {
    if (!s) return undefined;
    const d = def(unwrap(s).inner);
    if (d.type === 'object') s = (d.shape as Record<string, Schema>)[String(seg)];
    else if (d.type === 'record') s = d.valueType as Schema;
    else if (d.type === 'array') s = d.element as Schema;
    else if (d.type === 'tuple') s = (d.items as Schema[])[Number(seg)];
    else if (d.type === 'union') {
      // First option that can be walked into.
      s = (d.options as Schema[]).map((o) => schemaAt(o, [seg])).find((x) => x !== undefined);
    } else return undefined;
  }
  return s;
}

function fmtNum(n: unknown): string {
  return typeof n === 'number' ? String(n) : String(n);
}

function numberType(d: AnyDef): string {
  let isInt = false;
  let lo: { v: number; inc: boolean } | undefined;
  let hi: { v: number; inc: boolean } | undefined;
  for (const c of (d.checks as { _zod: { def: Record<string, unknown> } }[] | undefined) ?? []) {
    const cd = c._zod.def;
    if (cd.check === 'number_format' && String(cd.format).includes('int')) isInt = true;
    if (cd.check === 'greater_than') lo = { v: cd.value as number, inc: cd.inclusive as boolean };
    if (cd.check === 'less_than') hi = { v: cd.value as number, inc: cd.inclusive as boolean };
  }
  const base = isInt ? 'integer' : 'number';
  if (lo && hi) return `${base} in ${lo.inc ? '[' : '('}${fmtNum(lo.v)}, ${fmtNum(hi.v)}${hi.inc ? ']' : ')'}`;
  if (lo) return `${base} ${lo.inc ? '>=' : '>'} ${fmtNum(lo.v)}`;
  if (hi) return `${base} ${hi.inc ? '<=' : '<'} ${fmtNum(hi.v)}`;
  return base;
}

/** A short human type: `integer >= 0`, `'cpu' | 'cuda'`, `number[]`, `[number, number]`, `record<string, number>`. */
export function renderType(schema: Schema): string {
  const d = def(unwrap(schema).inner);
  switch (d.type) {
    case 'string': return 'string';
    case 'boolean': return 'boolean';
    case 'number': return numberType(d);
    case 'enum': return Object.values(d.entries as Record<string, string>).map((v) => `'${v}'`).join(' | ');
    case 'literal': return (d.values as unknown[]).map((v) => (typeof v === 'string' ? `'${v}'` : String(v))).join(' | ');
    case 'array': {
      const el = renderType(d.element as Schema);
      return /[ |]/.test(el) ? `(${el})[]` : `${el}[]`;
    }
    case 'tuple': return `[${(d.items as Schema[]).map(renderType).join(', ')}]`;
    case 'record': return `record<string, ${renderType(d.valueType as Schema)}>`;
    case 'union': return (d.options as Schema[]).map(renderType).join(' | ');
    case 'object': return 'object';
    default: return d.type;
  }
}

export interface FieldInfo {
  /** Dotted path, e.g. `grpo.clipLow`. */
  path: string;
  type: string;
  hasDefault: boolean;
  defaultValue?: unknown;
  optional: boolean;
  description?: string;
}

export interface SectionInfo {
  path: string;
  description?: string;
  fields: FieldInfo[];
}

/**
 * Every leaf field of an object schema, grouped by the object that holds it (nested objects give their own
 * section, e.g. `data.source`). Records, arrays and tuples are leaves.
 */
export function listSections(root: Schema, prefix = ''): SectionInfo[] {
  const shape = objectShape(root);
  if (!shape) return [];
  const here: SectionInfo = { path: prefix, fields: [] };
  const u = unwrap(root);
  if (u.description !== undefined) here.description = u.description;
  const nested: SectionInfo[] = [];
  for (const [key, s] of Object.entries(shape)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (objectShape(s)) {
      nested.push(...listSections(s, path));
      continue;
    }
    const w = unwrap(s);
    const f: FieldInfo = { path, type: renderType(s), hasDefault: w.hasDefault, optional: w.optional };
    if (w.hasDefault) f.defaultValue = w.defaultValue;
    if (w.description !== undefined) f.description = w.description;
    here.fields.push(f);
  }
  return here.fields.length > 0 ? [here, ...nested] : nested;
}
