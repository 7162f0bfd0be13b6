// The scalar reward: a user-configured mathjs expression over the reward components.
//
// Robust-U1's default (`restoration: 1.0, tinyclip: 0.2`, alpha 5):
//
//     reward = 1.0 * ssim + 0.2 * exp(-5 * (1 - clamp(clip_cos, 0, 1)))
//
// The expression is configuration written by users, so it is never handed to mathjs's evaluator.
// mathjs only parses it (and differentiates it for `decomposeForDense`); the parsed tree is walked once
// against a whitelist (numbers, known names, + - * / ^, comparisons inside `c ? a : b`, and the functions
// in FUNCTIONS), and compiled into plain JavaScript closures. Anything else (assignments, function
// definitions, indexing, matrices, objects, ranges, strings, unknown names or functions) is refused with
// an error naming the expression and the offending part.
//
// Constants (weights, alpha, ...) are named numbers folded in at compile time. Both config styles work:
// `{ 'weights.ssim': 1 }` or `{ weights: { ssim: 1 } }` for `weights.ssim * ssim`, or `{ w_ssim: 1 }`.

import { createRequire } from 'node:module';
import type {
  AccessorNode, ConditionalNode, ConstantNode, FunctionNode, MathNode,
  OperatorNode, ParenthesisNode, SymbolNode,
} from 'mathjs';
// mathjs's own single-file build of the same version (its package exports it): loading it costs a
// fraction of the ~1,300 ES modules behind `import 'mathjs'`, which every process that reads a config
// paid at start-up (about 2 s of CPU plain, more through tsx's loader; see docs/testing.md).
const { all, create } = createRequire(import.meta.url)('mathjs/lib/browser/math.js') as typeof import('mathjs');

/** Components the reward workers compute (one number each per action). */
export const DEFAULT_COMPONENTS = ['ssim', 'clip_cos'] as const;
export const MAX_EXPRESSION_LENGTH = 1000;
export const MAX_EXPRESSION_DEPTH = 64;

export type Components = Readonly<Record<string, number>>;
export type Constants = Readonly<Record<string, number | Readonly<Record<string, number>>>>;

export interface RewardFunction {
  /** The reward for one action; throws if a component is missing/non-finite or the result is not finite. */
  evaluate(components: Components): number;
  /** The components the expression reads (sorted). */
  variables: string[];
  /** The constants the expression reads (sorted). */
  constantsUsed: string[];
  /** The numbers it holds, its literals and the values of the constants it reads (sorted): its likely thresholds. */
  literals: number[];
  expression: string;
}

export interface CompileOptions {
  /** Names of the per-action components (default: ssim, clip_cos). */
  components?: readonly string[];
}

// ---------------------------------------------------------------------------------------------------
// A restricted mathjs instance. Only `parse` and `derivative` are used, captured before the namespace
// is locked; the lock (functions that throw) is defence in depth should anyone evaluate through it.

const math = create(all);
const { parse, derivative } = math;
const NodeCtors = { ConstantNode: math.ConstantNode, SymbolNode: math.SymbolNode };
const disabled = (name: string) => () => { throw new Error(`${name} is disabled in reward expressions`); };
math.import(Object.fromEntries(
  ['import', 'createUnit', 'evaluate', 'parse', 'simplify', 'derivative', 'compile', 'resolve', 'reviver', 'chain']
    .map((n) => [n, disabled(n)])), { override: true });

// ---------------------------------------------------------------------------------------------------
// The whitelist.

const FUNCTIONS: Record<string, { arity: [number, number]; fn: (...a: number[]) => number }> = {
  exp: { arity: [1, 1], fn: Math.exp },
  log: { arity: [1, 1], fn: Math.log },
  sqrt: { arity: [1, 1], fn: Math.sqrt },
  abs: { arity: [1, 1], fn: Math.abs },
  tanh: { arity: [1, 1], fn: Math.tanh },
  sigmoid: { arity: [1, 1], fn: (x) => 1 / (1 + Math.exp(-x)) },
  pow: { arity: [2, 2], fn: Math.pow },
  min: { arity: [1, 16], fn: Math.min },
  max: { arity: [1, 16], fn: Math.max },
  clamp: { arity: [3, 3], fn: (x, lo, hi) => Math.min(Math.max(x, lo), hi) },
};

const OPERATORS: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  subtract: (a, b) => a - b,
  multiply: (a, b) => a * b,
  divide: (a, b) => a / b,
  pow: (a, b) => Math.pow(a, b),
  // Comparisons give 1 or 0; they are only accepted inside the condition of `c ? a : b`.
  smaller: (a, b) => Number(a < b),
  smallerEq: (a, b) => Number(a <= b),
  larger: (a, b) => Number(a > b),
  largerEq: (a, b) => Number(a >= b),
  equal: (a, b) => Number(a === b),
  unequal: (a, b) => Number(a !== b),
};
const COMPARISONS = new Set(['smaller', 'smallerEq', 'larger', 'largerEq', 'equal', 'unequal']);

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

// ---------------------------------------------------------------------------------------------------
// Compilation: validated mathjs tree -> closure over the components.

type Closure = (c: Components) => number;
interface Compiled {
  fn: Closure;
  /** Components this subtree reads. */
  deps: Set<string>;
  /** Set when the subtree reads no component: its value, folded at compile time. */
  value?: number;
}

interface Context {
  expr: string;
  constants: Map<string, number>;
  components: Set<string>;
  constantsUsed: Set<string>;
  literals: Set<number>;
}

function fail(expr: string, problem: string): never {
  const shown = expr.length > 120 ? `${expr.slice(0, 117)}...` : expr;
  throw new Error(`reward expression "${shown}": ${problem}`);
}

function constant(value: number): Compiled {
  return { fn: () => value, deps: new Set(), value };
}

function combine(parts: Compiled[], apply: (v: number[]) => number): Compiled {
  const deps = new Set(parts.flatMap((p) => [...p.deps]));
  if (deps.size === 0) return constant(apply(parts.map((p) => p.value!)));
  const fns = parts.map((p) => p.fn);
  if (fns.length === 1) { const [a] = fns as [Closure]; return { fn: (c) => apply([a(c)]), deps }; }
  if (fns.length === 2) { const [a, b] = fns as [Closure, Closure]; return { fn: (c) => apply([a(c), b(c)]), deps }; }
  return { fn: (c) => apply(fns.map((f) => f(c))), deps };
}

/** `a.b.c` written with dot notation -> "a.b.c"; anything else (x[1], a["b"], f(x).y) -> null. */
function dottedName(node: MathNode): string | null {
  if (node.type === 'SymbolNode') return (node as SymbolNode).name;
  if (node.type !== 'AccessorNode') return null;
  const acc = node as AccessorNode;
  const index = acc.index;
  if (!index.dotNotation || index.dimensions.length !== 1) return null;
  const prop = index.dimensions[0] as MathNode;
  if (prop.type !== 'ConstantNode' || typeof (prop as ConstantNode).value !== 'string') return null;
  const head = dottedName(acc.object);
  return head === null ? null : `${head}.${String((prop as ConstantNode).value)}`;
}

function compileNode(node: MathNode, ctx: Context, depth: number, inCondition = false): Compiled {
  if (depth > MAX_EXPRESSION_DEPTH) fail(ctx.expr, `nested deeper than ${MAX_EXPRESSION_DEPTH} levels`);
  const part = () => { const s = node.toString(); return s.length > 60 ? `${s.slice(0, 57)}...` : s; };
  switch (node.type) {
    case 'ConstantNode': {
      const v = (node as ConstantNode).value;
      if (typeof v !== 'number') fail(ctx.expr, `only numbers are allowed as literals, got ${typeof v} ${part()}`);
      if (!Number.isFinite(v)) fail(ctx.expr, `the number ${part()} is not finite`);
      ctx.literals.add(v);
      return constant(v);
    }
    case 'ParenthesisNode':
      return compileNode((node as ParenthesisNode).content, ctx, depth + 1, inCondition);
    case 'SymbolNode':
    case 'AccessorNode': {
      const name = dottedName(node);
      if (name === null) fail(ctx.expr, `indexing or property access is not allowed: ${part()}`);
      if (ctx.constants.has(name)) { ctx.constantsUsed.add(name); ctx.literals.add(ctx.constants.get(name)!); return constant(ctx.constants.get(name)!); }
      if (ctx.components.has(name)) return { fn: (c) => c[name] as number, deps: new Set([name]) };
      if (Object.hasOwn(FUNCTIONS, name)) fail(ctx.expr, `'${name}' is a function and must be called, e.g. ${name}(x)`);
      fail(ctx.expr, `unknown name '${name}' (components: ${[...ctx.components].join(', ')}; constants: ${[...ctx.constants.keys()].join(', ') || 'none'})`);
    }
    case 'OperatorNode': {
      const op = node as OperatorNode;
      const args = op.args.map((a) => compileNode(a, ctx, depth + 1));
      if (op.fn === 'unaryMinus' && args.length === 1) return combine(args, ([a]) => -a!);
      if (op.fn === 'unaryPlus' && args.length === 1) return args[0]!;
      const f = Object.hasOwn(OPERATORS, op.fn) ? OPERATORS[op.fn] : undefined;
      if (!f || args.length !== 2) fail(ctx.expr, `operator '${op.op}' is not allowed in ${part()}`);
      if (COMPARISONS.has(op.fn) && !inCondition) fail(ctx.expr, `comparison '${op.op}' is only allowed as the condition of 'c ? a : b': ${part()}`);
      return combine(args, ([a, b]) => f(a!, b!));
    }
    case 'FunctionNode': {
      const call = node as FunctionNode;
      const name = call.fn.type === 'SymbolNode' ? (call.fn as unknown as SymbolNode).name : null;
      const spec = name !== null && Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
      if (!spec) fail(ctx.expr, `function '${name ?? call.fn.toString()}' is not allowed (allowed: ${Object.keys(FUNCTIONS).join(', ')})`);
      const [lo, hi] = spec.arity;
      if (call.args.length < lo || call.args.length > hi) {
        fail(ctx.expr, `${name}() takes ${lo === hi ? lo : `${lo} to ${hi}`} argument(s), got ${call.args.length} in ${part()}`);
      }
      const args = call.args.map((a) => compileNode(a, ctx, depth + 1));
      return combine(args, (v) => spec.fn(...v));
    }
    case 'ConditionalNode': {
      const cond = node as ConditionalNode;
      const parts = [
        compileNode(cond.condition, ctx, depth + 1, true),
        compileNode(cond.trueExpr, ctx, depth + 1),
        compileNode(cond.falseExpr, ctx, depth + 1),
      ];
      return combine(parts, ([c, a, b]) => (c !== 0 ? a! : b!));
    }
    default: {
      const what: Record<string, string> = {
        AssignmentNode: 'assignment', FunctionAssignmentNode: 'function definition', IndexNode: 'indexing',
        ObjectNode: 'object literal', ArrayNode: 'matrix/array literal', RangeNode: 'range', BlockNode: 'several statements',
        RelationalNode: 'chained comparison',
      };
      fail(ctx.expr, `${what[node.type] ?? node.type} is not allowed: ${part()}`);
    }
  }
}

function flattenConstants(constants: Constants, components: Set<string>): Map<string, number> {
  const out = new Map<string, number>();
  const put = (name: string, v: unknown) => {
    if (!name.split('.').every((s) => IDENT.test(s))) throw new Error(`reward constant '${name}': not an identifier`);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`reward constant '${name}': must be a finite number, got ${String(v)}`);
    if (components.has(name)) throw new Error(`reward constant '${name}' has the name of a component`);
    if (Object.hasOwn(FUNCTIONS, name)) throw new Error(`reward constant '${name}' has the name of a function`);
    out.set(name, v);
  };
  for (const [k, v] of Object.entries(constants)) {
    if (v !== null && typeof v === 'object') for (const [k2, v2] of Object.entries(v)) put(`${k}.${k2}`, v2);
    else put(k, v);
  }
  return out;
}

interface Parsed { tree: MathNode; ctx: Context; compiled: Compiled }

function parseAndCompile(expr: string, constants: Constants, opts: CompileOptions): Parsed {
  if (typeof expr !== 'string') throw new Error(`reward expression must be a string, got ${typeof expr}`);
  if (expr.length > MAX_EXPRESSION_LENGTH) fail(expr, `longer than ${MAX_EXPRESSION_LENGTH} characters (${expr.length})`);
  if (expr.trim() === '') fail(expr, 'is empty');
  const components = new Set<string>(opts.components ?? DEFAULT_COMPONENTS);
  for (const c of components) if (!IDENT.test(c)) throw new Error(`reward component '${c}': not an identifier`);
  const ctx: Context = { expr, constants: flattenConstants(constants, components), components, constantsUsed: new Set(), literals: new Set() };
  let tree: MathNode;
  try {
    tree = parse(expr);
  } catch (e) {
    fail(expr, `does not parse: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { tree, ctx, compiled: compileNode(tree, ctx, 0) };
}

function checkedEvaluator(expr: string, fn: Closure, deps: Set<string>): (c: Components) => number {
  const needed = [...deps];
  return (c) => {
    for (const name of needed) {
      const v = c[name];
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(expr, `component '${name}' must be a finite number, got ${String(v)}`);
    }
    const r = fn(c);
    if (typeof r !== 'number' || !Number.isFinite(r)) {
      fail(expr, `evaluated to ${String(r)} (not a finite real number) for ${JSON.stringify(Object.fromEntries(needed.map((n) => [n, c[n]])))}`);
    }
    return r;
  };
}

/** The named constants a run configuration gives its reward expression: `weights.*` and `alpha`. */
export function rewardConstants(reward: { weights: Readonly<Record<string, number>>; alpha: number }): Constants {
  return { weights: reward.weights, alpha: reward.alpha };
}

/** Parses, validates and compiles a reward expression. Throws an Error naming the expression and the problem. */
export function compileRewardExpression(expr: string, constants: Constants = {}, opts: CompileOptions = {}): RewardFunction {
  const { ctx, compiled } = parseAndCompile(expr, constants, opts);
  if (compiled.value !== undefined && !Number.isFinite(compiled.value)) fail(expr, `is the constant ${compiled.value}`);
  return {
    evaluate: checkedEvaluator(expr, compiled.fn, compiled.deps),
    variables: [...compiled.deps].sort(),
    constantsUsed: [...ctx.constantsUsed].sort(),
    literals: [...ctx.literals].sort((a, b) => a - b),
    expression: expr,
  };
}

// ---------------------------------------------------------------------------------------------------
// A reward that cannot train: the same value whatever the components.

/** Where constantReward samples each component it reads, whatever the expression: its range [-1, 1], ends, zero and irregular points. */
const COMPONENT_SAMPLES = [-1, -0.61, -0.2, 0, 0.13, 0.37, 0.5, 0.71, 0.89, 0.97, 1];
/** How far either side of a literal constantReward looks: a threshold `ssim > 0.6` is crossed between 0.6 ± this. */
const LITERAL_EPSILON = 1e-6;
/** The most evaluations constantReward makes: the full grid for up to 3 components of about 27 points each, a part of it beyond. */
const MAX_SAMPLES = 20_000;

/**
 * Where constantReward samples a component of `reward`: COMPONENT_SAMPLES, and for each of the expression's numbers
 * (`literals`) and their negatives, the number itself, the number ± LITERAL_EPSILON, and the midpoints between
 * neighbouring ones, all within [-1, 1]. So a band narrower than the fixed grid's spacing, `ssim > 0.6 ? (ssim <
 * 0.7 ? 1 : 0) : 0`, is sampled inside (0.65) as well as outside.
 */
function componentSamples(reward: RewardFunction): number[] {
  const marks = [...new Set(reward.literals.flatMap((x) => [x, -x]))].filter((x) => x >= -1 && x <= 1).sort((a, b) => a - b);
  const points = [...COMPONENT_SAMPLES, ...marks.flatMap((x) => [x - LITERAL_EPSILON, x, x + LITERAL_EPSILON])];
  for (let i = 1; i < marks.length; i++) points.push((marks[i - 1]! + marks[i]!) / 2);
  return [...new Set(points.filter((x) => x >= -1 && x <= 1))].sort((a, b) => a - b);
}

/** The confirming sweep's step along one component: a band of computed bounds (`ssim > 0.5 + 0.05`) wider than this is found. */
const SWEEP_STEP = 1 / 2048;
/** The most evaluations of the confirming sweep (run only for a reward the grid found constant, so rarely). */
const MAX_SWEEP = 200_000;

/**
 * The reward's value if it is the same at every sampled point of the components' range [-1, 1], else undefined.
 * Such a reward gives every group zero variance, so nothing trains: the default expression with weights.ssim
 * and weights.clip both 0, say. First a grid of componentSamples over the components it reads; a reward the grid
 * finds constant is then swept along each component in steps of SWEEP_STEP (the others at grid points), so that a
 * band between the grid's points whose bounds the expression computes is not taken for a constant. Points where it
 * is not finite are skipped. Still a sampled check: a reward that differs only inside a band narrower than the
 * sweep's step is taken as constant (the error says "at every sampled point").
 */
export function constantReward(reward: RewardFunction): number | undefined {
  const names = reward.variables;
  const samples = componentSamples(reward);
  const m = samples.length;
  const total = Math.min(m ** names.length, MAX_SAMPLES);
  let first: number | undefined;
  const differs = (c: Record<string, number>): boolean => {
    let v: number;
    try {
      v = reward.evaluate(c);
    } catch {
      return false;
    }
    if (first === undefined) first = v;
    return v !== first;
  };
  // point t's digits in base m, component j shifted by j * t: the whole grid when total = m^k (a triangular,
  // invertible map of the digits), points spread over every axis when it is cut short.
  const gridPoint = (t: number) => Object.fromEntries(names.map((name, j) => [name, samples[(Math.floor(t / m ** j) + j * t) % m]!]));
  for (let t = 0; t < total; t++) if (differs(gridPoint(t))) return undefined;
  if (first === undefined || names.length === 0) return first;
  const steps = Math.round(2 / SWEEP_STEP);
  const settings = Math.max(1, Math.min(total, Math.floor(MAX_SWEEP / (names.length * (steps + 1)))));
  for (const name of names) {
    for (let s = 0; s < settings; s++) {
      const c = gridPoint(Math.floor((s * total) / settings));
      for (let i = 0; i <= steps; i++) if (differs({ ...c, [name]: -1 + i * SWEEP_STEP })) return undefined;
    }
  }
  return first;
}

// ---------------------------------------------------------------------------------------------------
// Dense advantages need reward = w * ssim + rest(other components).

export interface DenseDecomposition {
  /** d reward / d ssim, a constant. */
  ssimWeight: number;
  /** reward - ssimWeight * ssim: the part carried by one scalar advantage per action. */
  rest: RewardFunction;
}

/**
 * Splits the reward into `ssimWeight * ssim + rest(other components)`, or throws saying why it cannot.
 * Method: every subtree that does not read `ssim` becomes a number (if it reads no component) or an
 * opaque placeholder; mathjs differentiates what is left with respect to `ssim`; the derivative must be a
 * number. The split is then checked numerically at a few points.
 */
/** The most times the dense variable may appear in a reward expression (bounds the decomposition's work). */
export const MAX_DENSE_OCCURRENCES = 16;

export function decomposeForDense(expr: string, constants: Constants = {}, opts: CompileOptions & { variable?: string } = {}): DenseDecomposition {
  const variable = opts.variable ?? 'ssim';
  const { tree, ctx, compiled } = parseAndCompile(expr, constants, opts);
  const why: (reason: string) => never = (reason) => fail(expr, `cannot be decomposed as w * ${variable} + rest(other components) for dense advantages: ${reason}`);
  if (!compiled.deps.has(variable)) why(`it does not use '${variable}'`);

  const placeholders = new Map<string, string>();
  const skeleton = tree.transform((node: MathNode, path: string) => {
    if (path === 'fn') return node; // the name of a called function
    const c = compileNode(node, ctx, 0, true);
    if (c.deps.has(variable)) return node;
    if (c.value !== undefined) return new NodeCtors.ConstantNode(c.value);
    const name = `rest${placeholders.size}`;
    placeholders.set(name, node.toString());
    return new NodeCtors.SymbolNode(name);
  });

  // Bounded work before mathjs differentiates (its derivative of a product of n ssim factors grows
  // exponentially: 12 factors took 16 s): an affine expression never multiplies two ssim-dependent factors,
  // divides by one or raises one to a power, and names ssim a bounded number of times.
  const readsVariable = (n: MathNode): boolean => {
    let found = false;
    n.traverse((m: MathNode, path: string) => {
      if (!found && path !== 'fn' && m.type === 'SymbolNode' && (m as SymbolNode).name === variable) found = true;
    });
    return found;
  };
  let occurrences = 0;
  skeleton.traverse((n: MathNode, path: string) => {
    if (n.type === 'ConditionalNode') why(`${variable} appears in a conditional: ${n.toString()}`);
    if (n.type === 'SymbolNode' && path !== 'fn' && (n as SymbolNode).name === variable) occurrences++;
    if (n.type === 'OperatorNode') {
      const op = n as MathNode & { fn: string; args: MathNode[] };
      const dependent = op.args.filter(readsVariable).length;
      if (op.fn === 'multiply' && dependent > 1) why(`${variable} is multiplied by a factor that also depends on it: ${n.toString()}`);
      if (op.fn === 'divide' && op.args[1] && readsVariable(op.args[1])) why(`${variable} appears in a denominator: ${n.toString()}`);
      if (op.fn === 'pow' && dependent > 0) why(`${variable} appears in a power: ${n.toString()}`);
    }
  });
  if (occurrences > MAX_DENSE_OCCURRENCES) why(`${variable} appears ${occurrences} times; at most ${MAX_DENSE_OCCURRENCES} are allowed (write the sum once, e.g. 2 * ${variable})`);
  let d: MathNode;
  try {
    d = derivative(skeleton, variable);
  } catch (e) {
    why(`${variable} enters a non-affine construct (${e instanceof Error ? e.message : String(e)})`);
  }
  const dependsOn = new Set<string>();
  d.traverse((n: MathNode, path: string) => {
    if (n.type !== 'SymbolNode' || path === 'fn') return;
    const name = (n as SymbolNode).name;
    dependsOn.add(placeholders.get(name) ?? name);
  });
  const shown = d.toString().replace(/\brest(\d+)\b/g, (m) => `[${placeholders.get(m) ?? m}]`);
  if (dependsOn.size > 0) why(`d reward / d ${variable} = ${shown} is not constant (it depends on ${[...dependsOn].join(', ')})`);
  let w: number;
  try {
    w = compileRewardExpression(d.toString(), {}, { components: [] }).evaluate({});
  } catch (e) {
    why(`its derivative ${d.toString()} is not a finite number (${e instanceof Error ? e.message : String(e)})`);
  }

  const full = checkedEvaluator(expr, compiled.fn, compiled.deps);
  const restDeps = new Set([...compiled.deps].filter((n) => n !== variable));
  const restFn: Closure = (c) => compiled.fn({ ...c, [variable]: 0 });
  const rest: RewardFunction = {
    evaluate: checkedEvaluator(`${expr} - (${w}) * ${variable}`, restFn, restDeps),
    variables: [...restDeps].sort(),
    constantsUsed: [...ctx.constantsUsed].sort(),
    literals: [...ctx.literals].sort((a, b) => a - b),
    expression: `${expr} - (${w}) * ${variable}`,
  };

  // Belt and braces: reward(c) = w * c.ssim + rest(c) at a few points.
  for (const s of [-0.5, 0.31, 0.97]) {
    for (const o of [0.07, 0.63, 0.99]) {
      const c: Record<string, number> = Object.fromEntries([...restDeps].map((n) => [n, o]));
      c[variable] = s;
      let lhs: number; let rhs: number;
      try { lhs = full(c); rhs = w * s + restFn(c); } catch { continue; }
      if (Math.abs(lhs - rhs) > 1e-9 * (1 + Math.abs(lhs))) why(`numerical check failed at ${JSON.stringify(c)}: ${lhs} vs ${rhs}`);
    }
  }
  return { ssimWeight: w, rest };
}

// ---------------------------------------------------------------------------------------------------
// GDPO (normalize-then-sum) needs the reward as a weighted sum of terms: reward = sum_k w_k * term_k + offset.

export interface RewardTerm {
  /** The term's source text without its constant weight, e.g. `exp(-alpha * (1 - clamp(clip_cos, 0, 1)))`. */
  label: string;
  /** The product of the constant factors in front of the term (signs included). */
  weight: number;
  evaluate(components: Components): number;
  variables: string[];
}

export interface RewardTerms {
  terms: RewardTerm[];
  /** Sum of the terms that read no component (they carry no group-relative signal). */
  offset: number;
}

/**
 * Splits the expression at its top-level + and - into terms, and each term into constant factors (the
 * weight) and the rest: `weights.ssim * ssim + weights.clip * exp(...)` -> [(1, ssim), (0.2, exp(...))].
 */
export function rewardTerms(expr: string, constants: Constants = {}, opts: CompileOptions = {}): RewardTerms {
  const { tree, ctx } = parseAndCompile(expr, constants, opts);
  const strip = (n: MathNode): MathNode => (n.type === 'ParenthesisNode' ? strip((n as ParenthesisNode).content) : n);
  const compile = (n: MathNode) => compileNode(n, ctx, 0);

  const signed: Array<{ node: MathNode; sign: number }> = [];
  const split = (n: MathNode, sign: number): void => {
    n = strip(n);
    const op = n.type === 'OperatorNode' ? (n as OperatorNode) : null;
    if (op?.fn === 'add' && op.args.length === 2) { split(op.args[0]!, sign); split(op.args[1]!, sign); }
    else if (op?.fn === 'subtract' && op.args.length === 2) { split(op.args[0]!, sign); split(op.args[1]!, -sign); }
    else if (op?.fn === 'unaryMinus') split(op.args[0]!, -sign);
    else if (op?.fn === 'unaryPlus') split(op.args[0]!, sign);
    else signed.push({ node: n, sign });
  };
  split(tree, 1);

  const terms: RewardTerm[] = [];
  let offset = 0;
  for (const { node, sign } of signed) {
    let weight = sign;
    const factors: MathNode[] = [];
    const collect = (n: MathNode): void => {
      n = strip(n);
      const op = n.type === 'OperatorNode' ? (n as OperatorNode) : null;
      const c = compile(n);
      if (c.value !== undefined) { weight *= c.value; return; }
      if (op?.fn === 'multiply' && op.args.length === 2) { collect(op.args[0]!); collect(op.args[1]!); return; }
      if (op?.fn === 'unaryMinus') { weight = -weight; collect(op.args[0]!); return; }
      if (op?.fn === 'divide' && compile(op.args[1]!).value !== undefined) {
        weight /= compile(op.args[1]!).value!; collect(op.args[0]!); return;
      }
      factors.push(n);
    };
    collect(node);
    if (factors.length === 0) { offset += weight; continue; }
    const parts = factors.map(compile);
    const deps = new Set(parts.flatMap((p) => [...p.deps]));
    const label = factors.map((f) => (factors.length > 1 && f.type === 'OperatorNode' ? `(${f.toString()})` : f.toString())).join(' * ');
    terms.push({
      label,
      weight,
      evaluate: checkedEvaluator(`${expr}' term '${label}`, (c) => parts.reduce((acc, p) => acc * p.fn(c), 1), deps),
      variables: [...deps].sort(),
    });
  }
  if (!Number.isFinite(offset)) fail(expr, `its constant terms sum to ${offset}`);
  return { terms, offset };
}

// ---------------------------------------------------------------------------------------------------
// Direct reward backprop (a reference, lib/models/graphs.ts) needs d reward / d component at each action.

/**
 * The reward's partial derivatives with respect to `names` at `c`, by central differences of step h
 * (error O(h^2): the expressions are smooth except at clamp/min/max kinks, where this gives the mean of
 * the one-sided slopes).
 */
export function rewardPartials(reward: RewardFunction, c: Components, names: readonly string[], h = 1e-4): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of names) {
    if (!reward.variables.includes(name)) {
      out[name] = 0;
      continue;
    }
    const at = (x: number) => reward.evaluate({ ...c, [name]: x });
    out[name] = (at(c[name]! + h) - at(c[name]! - h)) / (2 * h);
  }
  return out;
}
