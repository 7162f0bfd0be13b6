// Conversions between parameter maps and graph feeds/fetches.
import type { TensorMap } from '../checkpoint/tensors.ts';
import type { Feeds, Fetches } from '../graph/runtime.ts';
import { DISTINCT_ROWS, equalRuns, repeatedRows, ROW_SOURCE } from '../graph/shared-rows.ts';
import { PAIR_ROWS, REFERENCE_ROWS } from './encoder.ts';
import { DUAL_CLIP_DEFAULT } from '../grpo/algorithm.ts';

/** `param.<name>` feeds for every parameter. */
export function paramFeeds(params: TensorMap): Feeds {
  const feeds: Feeds = {};
  for (const [name, t] of params) feeds[`param.${name}`] = { data: t.data, dims: t.shape };
  return feeds;
}

/** The `grad.<name>` outputs of a training graph as a TensorMap. */
export function gradientsFrom(fetches: Fetches): TensorMap {
  const grads: TensorMap = new Map();
  for (const [key, f] of Object.entries(fetches)) {
    if (key.startsWith('grad.')) grads.set(key.slice(5), { shape: [...f.dims], data: f.data });
  }
  return grads;
}

/** A scalar feed (hyper-parameters such as clip_low). */
export function scalarFeed(x: number): { data: Float32Array; dims: number[] } {
  return { data: Float32Array.of(x), dims: [] };
}

/** The loss hyper-parameters both families' GRPO graphs take as inputs (graphs.ts grpoInputs); dualClip absent: the default. */
export function grpoHyperFeeds(h: { clipLow: number; clipHigh: number; beta: number; dualClip?: number }): Feeds {
  return { clip_low: scalarFeed(h.clipLow), clip_high: scalarFeed(h.clipHigh), dual_clip: scalarFeed(h.dualClip ?? DUAL_CLIP_DEFAULT), beta: scalarFeed(h.beta) };
}

/** The row feeds of a graph built with `sharedRows` for `n` images [n,3,H,W] (graph/shared-rows.ts). */
export function sharedRowFeeds(images: Float32Array, n: number): Feeds {
  const { distinct, source } = repeatedRows(images, n);
  return { [DISTINCT_ROWS]: { data: distinct, dims: [distinct.length] }, [ROW_SOURCE]: { data: source, dims: [n] } };
}

/**
 * The row feeds of a reward graph built with `sharedReferences` (encoder.ts, embeddingCosineSharedReference) for
 * `n` references [n,3,H,W]: each run of byte-equal consecutive references is encoded once (the N + R rows the
 * encoder takes are never fewer than two, so no batch of one; see repeatedRows).
 */
export function rewardRowFeeds(references: Float32Array, n: number): Feeds {
  const { firsts, source } = equalRuns(references, n, 'references');
  const pairs = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    pairs[2 * i] = i;
    pairs[2 * i + 1] = n + source[i]!;
  }
  return { [REFERENCE_ROWS]: { data: Float32Array.from(firsts), dims: [firsts.length] }, [PAIR_ROWS]: { data: pairs, dims: [n, 2] } };
}
