// The semantic reward: cosine similarity of image embeddings. The embedding comes from any ONNX image
// encoder with the CLIP vision tower contract (`pixel_values` [N,3,224,224] -> embedding), spliced into
// the reward graph after CLIP's preprocessing, which is done in the graph too. Without a user model the
// built-in encoder is a fixed, randomly initialised convolutional feature extractor ("random-conv-features"):
// a stand-in with the same contract, not CLIP, and named so wherever it shows.

import { Graph, type Value } from '../graph/graph.ts';
import { add, avgPool, cast, clip, concat, conv, div, matmul, mul, reduceSum, relu, reshape, slice, sqrt, sub, transpose } from '../graph/ops.ts';
import { decodeModel, serialize, spliceModel } from '../graph/onnx.ts';
import { fillStandardNormal, hashSeed } from '../data/random.ts';

export const CLIP_SIZE = 224;
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];
export const BUILTIN_ENCODER_NAME = 'random-conv-features-v1';

/** PIL's bicubic kernel (a = -0.5). */
function bicubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/**
 * The [outSize, inSize] matrix of PIL's bicubic resampling (with its antialiasing support when
 * shrinking), restricted to the output rows [cropStart, cropStart + cropSize).
 */
export function resizeMatrix(inSize: number, outSize: number, cropStart = 0, cropSize = outSize): Float32Array {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const m = new Float32Array(cropSize * inSize);
  for (let row = 0; row < cropSize; row++) {
    const center = (row + cropStart + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    let total = 0;
    const w: number[] = [];
    for (let x = lo; x < hi; x++) {
      const v = bicubic((x - center + 0.5) / filterScale);
      w.push(v);
      total += v;
    }
    for (let x = lo; x < hi; x++) m[row * inSize + x] = total ? w[x - lo] / total : 0;
  }
  return m;
}

/**
 * The size an h x w image is resized to before CLIP's centre crop: the shorter side to 224, the longer one
 * `int(224 * long / short)`, truncated as torchvision's Resize(224) and HF's CLIPImageProcessor compute it (in
 * that order, so that an exact quotient stays exact). Rounding gave 299 columns for 48x64 where CLIP sees 298.
 */
export function clipResizedSize(h: number, w: number): [number, number] {
  return h <= w ? [CLIP_SIZE, Math.trunc((CLIP_SIZE * w) / h)] : [Math.trunc((CLIP_SIZE * h) / w), CLIP_SIZE];
}

/**
 * CLIP's preprocessing on [N,3,H,W] images in [0,1]: bicubic resize of the shorter side to 224, centre
 * crop to 224x224, normalisation by CLIP's mean and std. The resize is two matrix products, so it is
 * differentiable like everything else.
 *
 * As PIL resizes (OpenAI's clip.py and HF's CLIPImageProcessor both hand it a uint8 image): the horizontal pass
 * first, each pass's output clipped to [0,1] (Pillow's Resample.c clip8s each pass into a uint8 image), so the
 * bicubic overshoot at edges (up to 7% of the step when upsampling 32 -> 224) never reaches the encoder. Not
 * modelled: PIL's rounding to 1/255 after each pass. The crop takes floor((size - 224) / 2) as HF's
 * CLIPImageProcessor does (torchvision's CenterCrop rounds: one pixel further for an odd excess).
 */
export function clipPreprocess(x: Value): Value {
  const g = x.graph;
  const h = x.shape[2] as number;
  const w = x.shape[3] as number;
  const [nh, nw] = clipResizedSize(h, w);
  const rows = g.constant(resizeMatrix(h, nh, Math.floor((nh - CLIP_SIZE) / 2), CLIP_SIZE), [CLIP_SIZE, h]);
  const colsT = g.constant(resizeMatrix(w, nw, Math.floor((nw - CLIP_SIZE) / 2), CLIP_SIZE), [CLIP_SIZE, w]);
  const across = clip(matmul(x, transpose(colsT, [1, 0])), 0, 1);
  const resized = clip(matmul(rows, across), 0, 1);
  const mean = g.constant(CLIP_MEAN, [1, 3, 1, 1]);
  const std = g.constant(CLIP_STD, [1, 3, 1, 1]);
  return div(sub(resized, mean), std);
}

function randomWeight(g: Graph, name: string, shape: number[]): Value {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = fillStandardNormal(new Float32Array(n), hashSeed(BUILTIN_ENCODER_NAME, name));
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const scale = Math.sqrt(2 / fanIn);
  for (let i = 0; i < n; i++) data[i] *= scale;
  return g.constant(data, shape, 'float32', name);
}

/**
 * The built-in encoder, as graph ops on `pixel_values` [N,3,224,224]: three fixed random convolutions
 * (224 -> 56 -> 28 -> 14), pooled to 7x7x64 and flattened to a 3136-dim embedding. The last layer has no
 * ReLU, so embeddings have both signs and the cosine is informative. Built natively (not spliced), it is
 * differentiable, which direct reward backprop needs.
 */
export function builtinEncoder(x: Value): Value {
  const g = x.graph;
  let h = relu(conv(x, randomWeight(g, 'conv1', [16, 3, 7, 7]), undefined, { strides: [4, 4], pads: [3, 3, 3, 3] }));
  h = relu(conv(h, randomWeight(g, 'conv2', [32, 16, 3, 3]), undefined, { strides: [2, 2], pads: [1, 1, 1, 1] }));
  h = conv(h, randomWeight(g, 'conv3', [64, 32, 3, 3]), undefined, { strides: [2, 2], pads: [1, 1, 1, 1] });
  return reshape(avgPool(h, 2), [x.shape[0], 64 * 7 * 7]);
}

/** The built-in encoder as a standalone ONNX model with the CLIP vision contract. */
export function builtinEncoderModel(): Uint8Array {
  const g = new Graph(17);
  g.output('image_embeds', builtinEncoder(g.input('pixel_values', ['N', 3, CLIP_SIZE, CLIP_SIZE])));
  return serialize(g, { docString: `${BUILTIN_ENCODER_NAME}: fixed random convolutional features (not CLIP)` });
}

/** The output names a model's embedding may have, in order of preference (HF CLIPVisionModelWithProjection, CLIPVisionModel). */
export const EMBEDDING_OUTPUT_NAMES = ['image_embeds', 'pooler_output'] as const;

/**
 * Which of an encoder model's outputs is its embedding (docs/encoders.md, "Which output is the embedding"): its only
 * output; else the one named image_embeds, else pooler_output; else its only output of rank 2 ([N,D]). Anything
 * else is ambiguous and refused, naming `what` (the model file), its outputs and their shapes: an HF vision tower
 * lists last_hidden_state [N,50,768] first, and its flattened tokens are no image embedding.
 */
export function embeddingOutputIndex(bytes: Uint8Array, what: string): number {
  const outputs = decodeModel(bytes, what).graph?.output ?? [];
  if (outputs.length === 1) return 0;
  const dimsOf = (o: (typeof outputs)[number]) => o.type?.tensorType?.shape?.dim;
  const shown = outputs.map((o) => {
    const dims = dimsOf(o);
    return `${o.name} ${dims ? `[${dims.map((d) => (d.dimValue != null ? String(d.dimValue) : d.dimParam || '?')).join(',')}]` : '(shape not declared)'}`;
  });
  if (outputs.length === 0) throw new Error(`${what}: has no outputs; an image encoder needs one embedding output [N,D]`);
  for (const name of EMBEDDING_OUTPUT_NAMES) {
    const i = outputs.findIndex((o) => o.name === name);
    if (i >= 0) return i;
  }
  const rank2 = outputs.flatMap((o, i) => (dimsOf(o)?.length === 2 ? [i] : []));
  if (rank2.length === 1) return rank2[0]!;
  throw new Error(
    `${what}: has ${outputs.length} outputs (${shown.join(', ')}) and none is the embedding by the rule: an output named ` +
      `${EMBEDDING_OUTPUT_NAMES.join(' or ')}, else the only one of rank 2 [N,D] (${rank2.length} here); export the model with ` +
      'its embedding as its only output, or name that output image_embeds',
  );
}

/**
 * An encoder given as ONNX bytes, spliced into the graph (forward only: spliced ops are not differentiated); its
 * embedding is the output embeddingOutputIndex picks. `name` names the model in errors.
 */
export function splicedEncoder(bytes: Uint8Array, name: string): (pixels: Value) => Value {
  const index = embeddingOutputIndex(bytes, name);
  return (pixels) => spliceModel(pixels.graph, bytes, pixels, 'encoder/', name)[index]!;
}

function l2normalize(e: Value): Value {
  return div(e, sqrt(add(reduceSum(mul(e, e), [1], true), 1e-12)));
}

/**
 * An image encoder as graph ops: its own preprocessing of [N,3,H,W] images in [0,1] into the network's
 * input, and the network itself (input -> embedding [M, ...]).
 */
export interface ImageEncoder {
  name: string;
  preprocess: (x: Value) => Value;
  encode: (pixels: Value) => Value;
}

/**
 * Cosine similarity [N] between the embeddings of `candidate` and `reference`, both through one copy
 * of the encoder: each pair is stacked along the batch axis ([N,2,...] -> [M=2N,...]) and split after.
 * `encode` alone (a function) means an encoder with the CLIP contract and CLIP's preprocessing.
 */
export function embeddingCosine(candidate: Value, reference: Value, encoder: ImageEncoder | ((pixels: Value) => Value), encoderName?: string): Value {
  const enc: ImageEncoder = typeof encoder === 'function' ? { name: encoderName ?? 'encoder', preprocess: clipPreprocess, encode: encoder } : encoder;
  const [n, c, h, w] = candidate.shape;
  const pair = concat([reshape(candidate, [n, 1, c, h, w]), reshape(reference, [n, 1, c, h, w])], 1);
  const { normed, d } = normalizedEmbeddings(enc, reshape(pair, ['M', c, h, w]), 'M');
  return pairCosine(reshape(normed, [n, 2, d]), n, d);
}

/** The encoder's embeddings of `images` [rows,...], flattened to [rows, d] and L2-normalised. */
function normalizedEmbeddings(enc: ImageEncoder, images: Value, rows: string): { normed: Value; d: number } {
  const embeds = enc.encode(enc.preprocess(images));
  const dims = embeds.shape.slice(1);
  if (!dims.every((d) => typeof d === 'number')) throw new Error(`${enc.name}: its output must have static non-batch dimensions, got [${embeds.shape}]`);
  const d = (dims as number[]).reduce((a, b) => a * b, 1);
  return { normed: l2normalize(reshape(embeds, [rows, d])), d };
}

/** Cosine [n] of each pair of normalised embeddings in `e` [n,2,d]. */
function pairCosine(e: Value, n: number | string, d: number): Value {
  const half = (i: number) => reshape(slice(e, [i], [i + 1], [1]), [n, d]);
  return reduceSum(mul(half(0), half(1)), [1]);
}

/** Input [R] of embeddingCosineSharedReference: the reference rows to encode (float32 row indices). */
export const REFERENCE_ROWS = 'reference_rows';
/** Input [N,2]: for candidate i, the rows of its own and its reference's embedding among the N + R encoded. */
export const PAIR_ROWS = 'pair_rows';

/**
 * embeddingCosine with each distinct reference encoded once: a GRPO group's G candidates share one reference, so
 * the encoder (most of the reward graph at small sizes) runs on N + R rows instead of 2N. The encoder takes the
 * candidates and the references' rows REFERENCE_ROWS stacked ([N+R,...]), and PAIR_ROWS gathers each candidate's
 * pair of normalised embeddings into embeddingCosine's [N,2,d], after which the ops are the same. Each image is
 * encoded on its own (a batch of two or more rows; test/models/reward.test.ts compares the bytes with
 * embeddingCosine's), so the cosines are the same bytes. Feeds: rewardRowFeeds (lib/models/feeds.ts).
 */
export function embeddingCosineSharedReference(candidate: Value, reference: Value, encoder: ImageEncoder): Value {
  const g = candidate.graph;
  const [n, c, h, w] = candidate.shape;
  const rows = cast(g.input(REFERENCE_ROWS, ['R']), 'int64');
  const pairs = cast(g.input(PAIR_ROWS, [n, 2]), 'int64');
  const distinct = g.emit('Gather', [reference, rows], { axis: 0 }, [{ dtype: 'float32', shape: ['R', c, h, w] }])[0];
  const stacked = g.emit('Concat', [candidate, distinct], { axis: 0 }, [{ dtype: 'float32', shape: ['K', c, h, w] }])[0];
  const { normed, d } = normalizedEmbeddings(encoder, stacked, 'K');
  const e = g.emit('Gather', [normed, pairs], { axis: 0 }, [{ dtype: 'float32', shape: [n, 2, d] }])[0];
  return pairCosine(e, n, d);
}
