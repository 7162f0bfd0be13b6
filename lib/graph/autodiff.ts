// Reverse-mode differentiation over a Graph: one reverse walk over the nodes (already in topological
// order), asking each op's rule in the table of gradient.ts for the gradients of its inputs and summing contributions.

import type { Node, Value } from './graph.ts';
import { add } from './ops.ts';
import { rules } from './gradient.ts';

/**
 * Gradients of the scalar `loss` with respect to each of `wrt`, as new values in the same graph.
 * A parameter the loss does not depend on gets a zero gradient of its own shape.
 */
export function gradients(loss: Value, wrt: Value[]): Value[] {
  const g = loss.graph;
  if (loss.rank !== 0) throw new Error(`gradients: loss must be a scalar, got shape [${loss.shape}]`);

  // Values that depend on some `wrt`: only their producers need a rule, only they need a gradient.
  const dependsOnWrt = new Set<Value>(wrt);
  for (const node of g.nodes) {
    if (node.inputs.some((v) => dependsOnWrt.has(v))) for (const o of node.outputs) dependsOnWrt.add(o);
  }
  if (!dependsOnWrt.has(loss)) throw new Error('gradients: the loss does not depend on any requested value');

  const grads = new Map<Value, Value>([[loss, g.scalar(1)]]);
  const accumulate = (v: Value, dv: Value): void => {
    const prev = grads.get(v);
    grads.set(v, prev ? add(prev, dv) : dv);
  };

  // Snapshot: rules append nodes while we walk backwards.
  const forward: Node[] = g.nodes.slice(0, g.nodes.indexOf(loss.producer!) + 1);
  for (let i = forward.length - 1; i >= 0; i--) {
    const node = forward[i];
    const dOut = node.outputs.map((o) => grads.get(o) ?? null);
    if (dOut.every((d) => d === null)) continue;
    const needs = node.inputs.map((v) => dependsOnWrt.has(v));
    if (!needs.some(Boolean)) continue;
    const rule = rules[node.op];
    if (!rule) throw new Error(`gradients: no differentiation rule for op ${node.op}`);
    const dIn = rule(node, dOut, needs);
    node.inputs.forEach((v, j) => {
      const d = dIn[j];
      if (needs[j] && d) accumulate(v, d);
    });
  }

  return wrt.map((w) => {
    const d = grads.get(w);
    if (d) return d;
    const zero = g.constant(new Float32Array(w.shape.reduce<number>((a, b) => a * (b as number), 1)), w.shape as number[]);
    return zero;
  });
}
