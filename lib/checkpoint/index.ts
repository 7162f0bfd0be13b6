export * from './tensors.ts';
export * from './safetensors.ts';
export * from './digest.ts';
export * from './checkpoint.ts';
