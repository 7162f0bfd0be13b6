// The shared worker runtime (see runtime.ts) and what the roles build on it.
export * from './options.ts';
export * from './runtime.ts';
export * from './checkpoints.ts';
export * from './learner-state.ts';
