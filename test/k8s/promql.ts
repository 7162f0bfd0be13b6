// What a PromQL expression refers to: metric names, the label names of its matchers, the label names it groups or
// matches on, and the functions it calls. A small lexer, not a full parser: enough to check references against the
// metric catalogue (syntax itself is checked by promtool in test/k8s/monitoring.test.ts).
import { CATALOGUE, METRIC_PREFIX } from '../../lib/metrics/catalogue.ts';
import { TASK_ERROR_CODES } from '../../orchestrator/task-board.ts';

export interface Selector {
  metric: string;
  matchers: { label: string; op: string; value: string }[];
}
export interface PromqlRefs {
  selectors: Selector[];
  /** Label names after by / without / on / ignoring / group_left / group_right. */
  grouping: string[];
  functions: string[];
}

type Tok = { t: 'id' | 'str' | 'num' | 'dur' | 'punct'; v: string };

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'atan2', 'inf', 'nan']);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
/** PromQL functions and aggregations (Prometheus 2.x), plus Grafana's label_values for template variables. */
export const PROMQL_FUNCTIONS = new Set([
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile',
  'abs', 'absent', 'absent_over_time', 'ceil', 'changes', 'clamp', 'clamp_max', 'clamp_min', 'day_of_month', 'day_of_week',
  'day_of_year', 'days_in_month', 'delta', 'deriv', 'exp', 'floor', 'histogram_quantile', 'histogram_count', 'histogram_sum',
  'histogram_fraction', 'holt_winters', 'hour', 'idelta', 'increase', 'irate', 'label_join', 'label_replace', 'ln', 'log2',
  'log10', 'minute', 'month', 'predict_linear', 'rate', 'resets', 'round', 'scalar', 'sgn', 'sort', 'sort_desc', 'sqrt',
  'time', 'timestamp', 'vector', 'year', 'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time',
  'count_over_time', 'quantile_over_time', 'stddev_over_time', 'stdvar_over_time', 'last_over_time', 'present_over_time',
  'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh', 'cos', 'cosh', 'sin', 'sinh', 'tan', 'tanh', 'deg', 'rad', 'pi',
  'label_values',
]);

function lex(expr: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < expr.length && expr[i] !== '\n') i++;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      let v = '';
      while (j < expr.length && expr[j] !== c) {
        if (expr[j] === '\\' && c !== '`') {
          v += expr[j + 1];
          j += 2;
        } else v += expr[j++];
      }
      if (j >= expr.length) throw new Error(`unterminated string in ${expr}`);
      out.push({ t: 'str', v });
      i = j + 1;
      continue;
    }
    const num = /^(?:0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)((?:[0-9]+(?:ms|[smhdwy]))*)/.exec(expr.slice(i));
    if (/[0-9.]/.test(c) && num && num[0].length > 0) {
      const m = /^[0-9]+(?:ms|[smhdwy])(?:[0-9]+(?:ms|[smhdwy]))*/.exec(expr.slice(i));
      if (m) {
        out.push({ t: 'dur', v: m[0] });
        i += m[0].length;
      } else {
        out.push({ t: 'num', v: num[0] });
        i += num[0].length;
      }
      continue;
    }
    const id = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i));
    if (id) {
      out.push({ t: 'id', v: id[0] });
      i += id[0].length;
      continue;
    }
    const p = /^(?:!=|=~|!~|==|<=|>=|[-+*/%^<>=(){}[\],@])/.exec(expr.slice(i));
    if (p) {
      out.push({ t: 'punct', v: p[0] });
      i += p[0].length;
      continue;
    }
    if (c === '$') throw new Error(`unsubstituted variable at "${expr.slice(i, i + 20)}" in ${expr}`);
    throw new Error(`unexpected character ${JSON.stringify(c)} in ${expr}`);
  }
  return out;
}

/** Metric names, matchers, grouping labels and functions of one PromQL expression (variables substituted). */
export function promqlRefs(expr: string): PromqlRefs {
  const toks = lex(expr);
  const refs: PromqlRefs = { selectors: [], grouping: [], functions: [] };
  let depthBracket = 0; // inside [...] (range / subquery durations)
  for (let i = 0; i < toks.length; i++) {
    const tk = toks[i]!;
    if (tk.t === 'punct' && tk.v === '[') depthBracket++;
    if (tk.t === 'punct' && tk.v === ']') depthBracket--;
    if (tk.t !== 'id' || depthBracket > 0) continue;
    const lower = tk.v.toLowerCase();
    const next = toks[i + 1];
    if (GROUPING.has(lower)) {
      if (next?.v === '(') {
        let j = i + 2;
        while (j < toks.length && toks[j]!.v !== ')') {
          if (toks[j]!.t === 'id') refs.grouping.push(toks[j]!.v);
          j++;
        }
        i = j;
      }
      continue;
    }
    if (KEYWORDS.has(lower)) continue;
    const aggregationFirst = next?.t === 'id' && (next.v === 'by' || next.v === 'without'); // sum by (x) (...)
    if ((next?.t === 'punct' && next.v === '(') || aggregationFirst) {
      refs.functions.push(tk.v);
      if (tk.v === 'label_values') {
        // label_values(metric, label): the metric is a selector, the label a reference on it.
        const metric = toks[i + 2];
        const label = toks[i + 4];
        if (metric?.t === 'id' && label?.t === 'id') {
          refs.selectors.push({ metric: metric.v, matchers: [{ label: label.v, op: '(label_values)', value: '' }] });
          i += 5;
        }
      }
      continue;
    }
    const sel: Selector = { metric: tk.v, matchers: [] };
    if (next?.t === 'punct' && next.v === '{') {
      let j = i + 2;
      while (j < toks.length && toks[j]!.v !== '}') {
        const l = toks[j]!;
        const op = toks[j + 1];
        const v = toks[j + 2];
        if (l.t !== 'id' || op?.t !== 'punct' || v?.t !== 'str') throw new Error(`cannot read the label matchers of ${tk.v} in ${expr}`);
        sel.matchers.push({ label: l.v, op: op.v, value: v.v });
        j += 3;
        if (toks[j]?.v === ',') j++;
      }
      i = j;
    }
    refs.selectors.push(sel);
  }
  return refs;
}

/** Labels Prometheus adds to every series it scrapes through the PodMonitor (target labels). */
export const TARGET_LABELS = ['job', 'instance', 'namespace', 'pod', 'container', 'endpoint'] as const;
/** Series that come from Prometheus itself, not from the project. */
export const PROMETHEUS_SERIES: Record<string, readonly string[]> = { up: [] };
/** Label values by convention (lib/metrics/catalogue.ts header; lib/metrics ProcessRole). */
export const LABEL_VALUES: Record<string, readonly string[]> = {
  role: ['orchestrator', 'rollout', 'reward', 'learner'],
  worker_role: ['rollout', 'reward', 'learner'],
  kind: ['sft', 'grpo'],
  component: ['ssim', 'clip_cos', 'clip_term'],
  queue: ['rollout', 'score', 'train'],
};
/**
 * Label values one metric takes, where the label name alone says too little (`reason` means something else on
 * each metric). samples_dropped_total: orchestrator/grpo-groups.ts dropGroup ('task_failed', and the advantage
 * outcome's reason of lib/grpo/algorithm.ts); task_errors_total: orchestrator/task-board.ts errorCodeLabel.
 */
export const METRIC_LABEL_VALUES: Record<string, Record<string, readonly string[]>> = {
  samples_dropped_total: { reason: ['task_failed', 'zero_variance', 'unencodable'] },
  task_errors_total: { code: [...TASK_ERROR_CODES, 'other'] },
};

/** The values a matcher names: its value for `=`, each alternative of a plain `a|b` regex for `=~`. */
function matchedValues(op: string, value: string): string[] {
  if (op === '=') return [value];
  if (op === '=~' && /^[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*$/.test(value)) return value.split('|');
  return [];
}

export interface MetricInfo {
  /** Label names a series of this name can carry. */
  labels: Set<string>;
  /** For a histogram _bucket series: its bucket bounds as Prometheus writes them in `le`. */
  buckets?: Set<string>;
}

/** What the catalogue exports under `name` (with the histogram suffixes), or undefined if nothing. */
export function exportedMetric(name: string): MetricInfo | undefined {
  if (name in PROMETHEUS_SERIES) return { labels: new Set([...PROMETHEUS_SERIES[name]!, ...TARGET_LABELS]) };
  if (!name.startsWith(METRIC_PREFIX)) return undefined;
  const bare = name.slice(METRIC_PREFIX.length);
  const base = (labels: readonly string[]) => new Set([...labels, 'run_id', 'role', ...TARGET_LABELS]);
  const spec = (CATALOGUE as Record<string, { type: string; labels: readonly string[]; buckets?: readonly number[] }>)[bare];
  if (spec && spec.type !== 'histogram') return { labels: base(spec.labels) };
  const m = /^(.*)_(bucket|sum|count)$/.exec(bare);
  if (!m) return undefined;
  const h = (CATALOGUE as Record<string, { type: string; labels: readonly string[]; buckets?: readonly number[] }>)[m[1]!];
  if (!h || h.type !== 'histogram') return undefined;
  if (m[2] !== 'bucket') return { labels: base(h.labels) };
  return { labels: new Set([...base(h.labels), 'le']), buckets: new Set([...(h.buckets ?? []).map((b) => String(b)), '+Inf']) };
}

/**
 * Problems with what `expr` refers to: unknown metrics, labels a metric does not carry, unknown label values,
 * grouping labels none of its metrics carry, `le` values that are no bucket bound, unknown functions. Empty when fine.
 * `legendLabels`: labels a Grafana legend ({{label}}) uses; they must be grouping labels or labels of a metric.
 */
export function checkPromql(expr: string, legendLabels: string[] = []): string[] {
  const problems: string[] = [];
  const variable = /\$\{?[A-Za-z_]+\}?/.exec(expr);
  if (variable) return [`unsubstituted variable ${variable[0]} in ${expr}`];
  let refs: PromqlRefs;
  try {
    refs = promqlRefs(expr);
  } catch (e) {
    return [(e as Error).message];
  }
  const allLabels = new Set<string>();
  for (const f of refs.functions) if (!PROMQL_FUNCTIONS.has(f)) problems.push(`unknown function ${f}()`);
  if (refs.selectors.length === 0) problems.push('refers to no metric');
  for (const s of refs.selectors) {
    const info = exportedMetric(s.metric);
    if (!info) {
      problems.push(`metric ${s.metric} is not exported (lib/metrics/catalogue.ts, histogram suffixes _bucket/_sum/_count)`);
      continue;
    }
    for (const l of info.labels) allLabels.add(l);
    const perMetric = METRIC_LABEL_VALUES[s.metric.slice(METRIC_PREFIX.length)] ?? {};
    for (const m of s.matchers) {
      const allowed = perMetric[m.label] ?? LABEL_VALUES[m.label];
      const unknown = allowed ? matchedValues(m.op, m.value).filter((v) => !allowed.includes(v)) : [];
      if (!info.labels.has(m.label)) problems.push(`${s.metric} has no label ${m.label} (it has ${[...info.labels].sort().join(', ')})`);
      else if (unknown.length > 0) problems.push(`${s.metric}{${m.label}${m.op}"${m.value}"}: ${m.label} is one of ${allowed!.join(', ')}`);
      else if (m.label === 'le' && m.op === '=' && !info.buckets?.has(m.value)) problems.push(`${s.metric}{le="${m.value}"}: not a bucket bound (${[...(info.buckets ?? [])].join(', ')})`);
    }
  }
  for (const g of refs.grouping) if (!allLabels.has(g)) problems.push(`groups or matches on ${g}, which none of its metrics carries`);
  for (const l of legendLabels) if (!allLabels.has(l)) problems.push(`legend uses {{${l}}}, which none of its metrics carries`);
  return problems;
}
