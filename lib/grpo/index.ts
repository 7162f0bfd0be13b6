// The algorithm's math (pure functions, no I/O): reward, advantages, staleness. See docs/grpo.md.
export * from './reward-expression.ts';
export * from './advantages.ts';
export * from './staleness.ts';
export * from './algorithm.ts';
export * from './sampling.ts';
export * from './batch.ts';
