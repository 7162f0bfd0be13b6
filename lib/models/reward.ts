// Choosing the reward's image encoder (reward.encoder): the built-in fixed random features, the pretrained
// MobileNetV2 that the npm package nsfwjs ships (converted from TensorFlow.js, cached by the digest of
// the package's files), or a user's ONNX CLIP vision tower given by path (reward.clipModel). Each comes
// as ONNX bytes spliced into the reward graph, with the preprocessing that encoder expects; the ones
// built from graph ops also come as a differentiable builder for direct reward backprop.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { SetupError } from '../config/setup-error.ts';
import { Graph } from '../graph/graph.ts';
import { decodeModel, serialize } from '../graph/onnx.ts';
import { builtinEncoder, builtinEncoderModel, clipPreprocess, embeddingOutputIndex, splicedEncoder, BUILTIN_ENCODER_NAME, type ImageEncoder } from './encoder.ts';
import { loadNsfwjsModel, nsfwjsFeatures, nsfwjsPreprocess, sourceLabel, NSFWJS_INPUT_SIZE, type EncoderSource } from '../encoders/nsfwjs.ts';

export const ENCODER_KINDS = ['random-features', 'mobilenet-v2', 'onnx'] as const;
export type EncoderKind = (typeof ENCODER_KINDS)[number];
/** The encoder when reward.encoder is absent and no reward.clipModel is given (docs/encoders.md). */
export const DEFAULT_ENCODER: EncoderKind = 'random-features';
/** Bumped whenever the converter's output for the same package files changes (part of the cache key). */
const CONVERTER_VERSION = 1;

/** The reward config's encoder fields (a whole `config.reward` will do). */
export interface EncoderChoice {
  encoder?: EncoderKind;
  clipModel?: string;
}

export type Preprocessing = 'clip' | 'nsfwjs';

export interface EncoderModel {
  /** What the encoder is, for logs, metrics and reports: its name, and for a packaged one its source and licence. */
  name: string;
  kind: EncoderKind;
  bytes: Uint8Array;
  preprocess: Preprocessing;
  source?: EncoderSource;
}

export const PREPROCESS: Record<Preprocessing, ImageEncoder['preprocess']> = { clip: clipPreprocess, nsfwjs: nsfwjsPreprocess };

/**
 * Which encoder a config asks for; an inconsistent pair of fields is an error naming both, a SetupError (a worker
 * exits CONFIG_EXIT_CODE on it: no restart cures it). lib/config/schema.ts refuses the same pairs at load.
 */
export function encoderKindOf(choice: EncoderChoice | string | undefined): EncoderKind {
  const c: EncoderChoice = typeof choice === 'string' ? { encoder: 'onnx', clipModel: choice } : (choice ?? {});
  const kind = c.encoder ?? (c.clipModel ? 'onnx' : DEFAULT_ENCODER);
  if (!ENCODER_KINDS.includes(kind)) throw new SetupError(`reward.encoder: '${kind}' is not one of ${ENCODER_KINDS.join(', ')}`);
  if (kind === 'onnx' && !c.clipModel) throw new SetupError('reward.encoder: onnx needs reward.clipModel (the path of the ONNX vision tower)');
  if (kind !== 'onnx' && c.clipModel) throw new SetupError(`reward.encoder: ${kind} and reward.clipModel (${c.clipModel}) conflict; set reward.encoder=onnx to use the file`);
  return kind;
}

export function mobilenetEncoderName(source: EncoderSource): string {
  return `mobilenet-v2-1.4-pooled (${sourceLabel(source)})`;
}

/** The pretrained encoder's converted ONNX model (input pixel_values [N,3,224,224] in [0,1]), built once per package digest. */
function mobilenetModel(): EncoderModel {
  const files = loadNsfwjsModel();
  const name = mobilenetEncoderName(files.source);
  const dir = join(process.env.RECOVERY_GRPO_CACHE_DIR || join(homedir(), '.cache', 'recovery-grpo'), 'encoders');
  const file = join(dir, `${files.source.package}-${files.source.model}-${files.digest.slice(0, 16)}-c${CONVERTER_VERSION}.onnx`);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch {
    const g = new Graph(17);
    g.output('image_embeds', nsfwjsFeatures(files)(g.input('pixel_values', ['N', 3, NSFWJS_INPUT_SIZE, NSFWJS_INPUT_SIZE])));
    bytes = serialize(g, { docString: `${name}: converted from TensorFlow.js, package digest sha256:${files.digest}` });
    try {
      mkdirSync(dir, { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, bytes);
      renameSync(tmp, file); // atomic: concurrent workers never read half a file
    } catch {
      // A read-only home only costs the conversion again next time.
    }
  }
  return { name, kind: 'mobilenet-v2', bytes, preprocess: 'nsfwjs', source: files.source };
}

/** The encoder a config asks for, as ONNX bytes to splice (a bare string is a clipModel path). */
export async function loadEncoder(choice?: EncoderChoice | string): Promise<EncoderModel> {
  const kind = encoderKindOf(choice);
  if (kind === 'random-features') return { name: BUILTIN_ENCODER_NAME, kind, bytes: builtinEncoderModel(), preprocess: 'clip' };
  if (kind === 'mobilenet-v2') return mobilenetModel();
  const path = typeof choice === 'string' ? choice : choice!.clipModel!;
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new SetupError(`reward.clipModel: cannot read ${path}: ${(e as Error).message}`);
  }
  // (a SetupError, as is a file that is not a model: the same file fails a restart the same way)
  let model: ReturnType<typeof decodeModel>;
  try {
    model = decodeModel(bytes, path);
  } catch (e) {
    throw new SetupError(`reward.clipModel: ${(e as Error).message}`, { cause: e });
  }
  if (!model.graph?.node?.length) throw new SetupError(`reward.clipModel: ${path} is not an ONNX model with a graph`);
  // Which output is the embedding is settled here, at load, so an ambiguous model ends the role by name.
  try {
    embeddingOutputIndex(bytes, path);
  } catch (e) {
    throw new SetupError(`reward.clipModel: ${(e as Error).message}`, { cause: e });
  }
  return { name: basename(path), kind, bytes, preprocess: 'clip' };
}

/** A loaded encoder as graph ops that splice its ONNX bytes (forward only). */
export function splicedImageEncoder(m: EncoderModel): ImageEncoder {
  return {
    name: m.name,
    preprocess: PREPROCESS[m.preprocess],
    encode: splicedEncoder(m.bytes, m.name),
  };
}

/**
 * The encoder a config asks for, built from differentiable graph ops (direct reward backprop needs
 * gradients through it). A user's ONNX file is spliced, forward only, so it is refused by name.
 */
export function differentiableEncoder(choice: EncoderChoice | string | undefined): ImageEncoder {
  const kind = encoderKindOf(choice);
  if (kind === 'random-features') return { name: BUILTIN_ENCODER_NAME, preprocess: clipPreprocess, encode: builtinEncoder };
  if (kind === 'mobilenet-v2') {
    const files = loadNsfwjsModel();
    return { name: mobilenetEncoderName(files.source), preprocess: nsfwjsPreprocess, encode: nsfwjsFeatures(files) };
  }
  const path = typeof choice === 'string' ? choice : choice!.clipModel!;
  throw new Error(`direct reward backprop differentiates the encoder, and ${basename(path)} is spliced from ONNX and forward-only; use reward.encoder=random-features or mobilenet-v2`);
}

