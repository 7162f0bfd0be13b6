// The pretrained image network the npm package `nsfwjs` (MIT) ships as a TensorFlow.js graph model:
// MobileNetV2 (width 1.4, 224x224, ImageNet features fine-tuned for a 5-way classifier), uint8-quantised.
// Its files are browserify bundles (model.json as a JS object, weight shards as base64 strings), read
// here from the installed package. The encoder is its pooled penultimate layer (1792 features), with
// the preprocessing nsfwjs itself applies: pixels in [0,1], resized to 224x224 (bilinear, corners
// aligned, no crop); the graph's own first ops map [0,1] to [-1,1].

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { Value } from '../graph/graph.ts';
import { matmul, transpose } from '../graph/ops.ts';
import { asModelJson, convertTfjsGraph, penultimateNode, readTfjsGraphModel, type TfjsGraphModel, type TfjsModelJson } from './tfjs-graph.ts';

export const NSFWJS_MODEL = 'mobilenet_v2_mid';
export const NSFWJS_INPUT_SIZE = 224;

export interface EncoderSource {
  package: string;
  version: string;
  license: string;
  /** The model inside the package. */
  model: string;
}

export interface TfjsEncoderFiles {
  source: EncoderSource;
  json: TfjsModelJson;
  /** sha256 over model.json and the shards as the package ships them: the conversion cache key. */
  digest: string;
  /** The weight shards as bytes, by manifest path (what TensorFlow.js itself loads). */
  shards: Map<string, Uint8Array>;
  model: TfjsGraphModel;
}

const require = createRequire(import.meta.url);

function packageRoot(): string {
  let main: string;
  try {
    main = require.resolve('nsfwjs');
  } catch (e) {
    throw new Error(`reward.encoder: the pretrained encoder needs the npm package nsfwjs (npm ci installs it): ${(e as Error).message}`);
  }
  return resolve(dirname(main), '..', '..'); // dist/cjs/index.js -> package root
}

const loaded = new Map<string, TfjsEncoderFiles>();

/** Reads and decodes one of nsfwjs's graph models (once per process). */
export function loadNsfwjsModel(model = NSFWJS_MODEL): TfjsEncoderFiles {
  const hit = loaded.get(model);
  if (hit) return hit;
  const root = packageRoot();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; license: string };
  const dir = join(root, 'dist', 'models', model);
  const what = `nsfwjs@${pkg.version} ${model}`;
  const hash = createHash('sha256');
  const modelFile = join(dir, 'model.min.js');
  hash.update(readFileSync(modelFile));
  const json = asModelJson(require(modelFile), what);
  if (json.format !== 'graph-model') throw new Error(`${what}: format ${json.format ?? '(none)'} is not a TensorFlow.js graph model`);
  const shards = new Map<string, Uint8Array>();
  for (const p of json.weightsManifest.flatMap((gr) => gr.paths)) {
    const file = join(dir, `${p}.min.js`);
    hash.update(readFileSync(file));
    const b64: unknown = require(file);
    if (typeof b64 !== 'string') throw new Error(`${what}: shard ${file} does not hold a base64 string`);
    shards.set(p, new Uint8Array(Buffer.from(b64, 'base64')));
  }
  const files: TfjsEncoderFiles = {
    source: { package: 'nsfwjs', version: pkg.version, license: pkg.license, model },
    json,
    digest: hash.digest('hex'),
    shards,
    model: readTfjsGraphModel(json, shards, what),
  };
  loaded.set(model, files);
  return files;
}

/**
 * The [outSize, inSize] matrix of bilinear resampling with corners aligned, as tf.image.resizeBilinear
 * (alignCorners = true) computes it: output i samples input position i * (in - 1) / (out - 1).
 */
export function bilinearAlignCornersMatrix(inSize: number, outSize: number): Float32Array {
  const m = new Float32Array(outSize * inSize);
  const scale = outSize > 1 ? (inSize - 1) / (outSize - 1) : 0;
  for (let i = 0; i < outSize; i++) {
    const src = i * scale;
    const lo = Math.floor(src);
    const hi = Math.min(Math.ceil(src), inSize - 1);
    const f = src - lo;
    m[i * inSize + lo] += 1 - f;
    m[i * inSize + hi] += f;
  }
  return m;
}

/** nsfwjs's preprocessing on [N,3,H,W] in [0,1]: bilinear (corners aligned) resize to 224x224, no crop. */
export function nsfwjsPreprocess(x: Value): Value {
  const g = x.graph;
  const h = x.shape[2] as number;
  const w = x.shape[3] as number;
  const S = NSFWJS_INPUT_SIZE;
  if (h === S && w === S) return x;
  const rows = g.constant(bilinearAlignCornersMatrix(h, S), [S, h]);
  const cols = g.constant(bilinearAlignCornersMatrix(w, S), [S, w]);
  return matmul(matmul(rows, x), transpose(cols, [1, 0]));
}

/** The network up to its pooled penultimate features: [N,3,224,224] in [0,1] -> [N,1792]. */
export function nsfwjsFeatures(files: TfjsEncoderFiles): (pixels: Value) => Value {
  const what = `nsfwjs@${files.source.version} ${files.source.model}`;
  const node = penultimateNode(files.model, what);
  return (pixels) => convertTfjsGraph(files.model, pixels, [node], what).get(node)!;
}

export function sourceLabel(s: EncoderSource): string {
  return `${s.package}@${s.version} ${s.model}, ${s.license}`;
}
