// How a sweep's values are written on the command line (`key=v1,v2,[a,b]`) and how a value appears in a run id:
// shared by `recovery-grpo sweep` and the Kubernetes ablation renderer (scripts/k8s-ablation.ts).

/** Splits `a,b,[c,d],"e,f"` on commas outside brackets and quotes. */
export function splitValues(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let cur = '';
  for (const c of s) {
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 0) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out.map((v) => v.trim());
}

/** A value as it may appear in a run id / namespace: 0.1 -> 0p1, -2 -> m2, [0.9,0.99] -> 0p9-0p99. */
export function slug(v: string): string {
  return v
    .toLowerCase()
    .replace(/\./g, 'p')
    .replace(/^-|(?<=[^a-z0-9])-/g, 'm')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}
