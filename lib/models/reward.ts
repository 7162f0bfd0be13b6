// Choosing the reward's image encoder: a user's ONNX CLIP vision tower given by path, or the built-in
// fixed random-feature encoder. Either way the bytes are spliced into the reward graph the same way.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { decodeModel } from '../graph/onnx.ts';
import { builtinEncoderModel, BUILTIN_ENCODER_NAME } from './encoder.ts';

export interface EncoderModel {
  /** What the encoder is, for logs, metrics and reports (the file name, or the built-in's name). */
  name: string;
  bytes: Uint8Array;
}

export async function loadEncoder(path?: string): Promise<EncoderModel> {
  if (!path) return { name: BUILTIN_ENCODER_NAME, bytes: builtinEncoderModel() };
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new Error(`reward.clipModel: cannot read ${path}: ${(e as Error).message}`);
  }
  const model = decodeModel(bytes, path);
  if (!model.graph?.node?.length) throw new Error(`reward.clipModel: ${path} is not an ONNX model with a graph`);
  return { name: basename(path), bytes };
}
