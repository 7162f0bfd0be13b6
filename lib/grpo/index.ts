// The algorithm (lib/grpo/algorithm.ts) and the pure functions it is made of: reward, advantages, staleness,
// what a batch contains, batch assembly. See docs/grpo.md. (update.ts, which drives the training graphs, is
// imported directly.)
export * from './reward-expression.ts';
export * from './advantages.ts';
export * from './staleness.ts';
export * from './algorithm.ts';
export * from './sampling.ts';
export * from './batch.ts';
