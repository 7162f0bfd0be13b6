// Conversions between parameter maps and graph feeds/fetches.
import type { TensorMap } from '../checkpoint/tensors.ts';
import type { Feeds, Fetches } from '../graph/runtime.ts';
import { DISTINCT_ROWS, repeatedRows, ROW_SOURCE } from '../graph/shared-rows.ts';

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

/** The row feeds of a graph built with `sharedRows` for `n` images [n,3,H,W] (graph/shared-rows.ts). */
export function sharedRowFeeds(images: Float32Array, n: number): Feeds {
  const { distinct, source } = repeatedRows(images, n);
  return { [DISTINCT_ROWS]: { data: distinct, dims: [distinct.length] }, [ROW_SOURCE]: { data: source, dims: [n] } };
}
