// The data domain in one import: images, seeded randomness, corruptions, procedural scenes, photographs, datasets.
export * from './image.ts';
export * from './random.ts';
export * from './corruptions.ts';
export * from './procedural.ts';
export * from './dataset.ts';
export * from './photos.ts';
