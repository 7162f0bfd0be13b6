// Datasets: where clean images come from (procedural scenes, a folder, or a JSONL manifest of pairs), how
// they are brought to the training resolution, which split each belongs to (a stable hash of its id), and
// how each is corrupted (the seeded mix). Every sample is a pure function of (dataset, seed, index, epoch).
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import { cropSquare, decodeImage, dihedral, decodeWhole, imageSize, type CropMode, type RgbImage } from './image.ts';
import { parsePhotoManifest, PHOTO_MANIFEST, photoFile, splitPhotoGroups, verifyPhotoEntries } from './photos.ts';
import { renderScene } from './procedural.ts';
import { hashSeed, hashUnit, rng } from './random.ts';
import {
  CORRUPTION_TYPES, corrupt, corruptionMixSchema, isCorruptionType, sampleCorruption,
  type CorruptionMix, type CorruptionMixInput, type CorruptionType,
} from './corruptions.ts';
import { everyTypeDraws } from './eval-draws.ts';

/** train: seeded crops; eval: whole images, reported; val (photos, data.valImages): whole held-out training scenes to choose settings on. */
export type Split = 'train' | 'val' | 'eval';

const sizeSchema = z.number().int().min(4).max(8192);
const cropSchema = z.enum(['center', 'random']).default('center');
/** Evaluation on whole images, shorter side resized to this; training crops `size` from the same scale. */
const evalSizeSchema = z.number().int().min(11).max(4096);

/** Where the clean images come from. `size` is the side of the square training resolution. */
export const datasetSpecSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('procedural'),
    count: z.number().int().positive(),
    size: sizeSchema,
    /** Picks a different family of scenes. */
    seed: z.number().int().min(0).default(0),
  }).strict(),
  z.object({
    /** The built-in photographs (lib/data/photos.ts): seeded crops for training, whole images for evaluation. */
    kind: z.literal('photos'),
    /** Side of the square training crops. */
    size: sizeSchema,
    evalSize: evalSizeSchema.default(128),
    /** The eval split takes whole scenes, in seeded order, until it holds at least this many photographs. */
    evalImages: z.number().int().min(1).default(64),
    /** Then whole training scenes, in the same order, into a validation split until it holds at least this many. */
    valImages: z.number().int().min(0).default(0),
    /** Each training crop flipped and turned by one of the 8 square symmetries, drawn from (seed, id, epoch). */
    augment: z.boolean().default(false),
    splitSeed: z.number().int().min(0).default(0),
    /** A photo manifest in lib/data/photos.jsonl's format (default: that one). */
    manifest: z.string().min(1).optional(),
  }).strict(),
  z.object({
    kind: z.literal('folder'), path: z.string().min(1), size: sizeSchema, crop: cropSchema, evalSize: evalSizeSchema.optional(),
    /** Use at most this many images (the first in path order). */
    limit: z.number().int().positive().optional(),
  }).strict(),
  z.object({
    kind: z.literal('manifest'), path: z.string().min(1), size: sizeSchema, crop: cropSchema, evalSize: evalSizeSchema.optional(),
    /** Use at most this many entries (the first in file order). */
    limit: z.number().int().positive().optional(),
  }).strict(),
]);
export type DatasetSpecInput = z.input<typeof datasetSpecSchema>;
export type DatasetSpec = z.output<typeof datasetSpecSchema>;

/** The data section of a run configuration: source, corruption mix, split and seed. */
export const dataConfigSchema = z.object({
  dataset: datasetSpecSchema.default({ kind: 'procedural', count: 1024, size: 32, seed: 0 }),
  corruptions: corruptionMixSchema.default({ levels: ['low', 'mid', 'high'], refSize: 256 }),
  /** Fraction of ids (by stable hash) that form the eval split. */
  evalFraction: z.number().min(0).max(1).default(0.1),
  /** Seeds corruption choices, corruption randomness and random crops. */
  seed: z.number().int().min(0).default(0),
}).strict();
export type DataConfigInput = z.input<typeof dataConfigSchema>;
export type DataConfig = z.output<typeof dataConfigSchema>;

/** One manifest line. Paths are relative to the manifest's folder. */
export const manifestEntrySchema = z.object({
  id: z.string().min(1),
  clean: z.string().min(1),
  /** Omitted: the clean image is corrupted with the mix, as for folders. */
  corrupted: z.string().min(1).optional(),
  /** Optional label of a given corrupted image (a corruption type, or any other name). */
  type: z.string().optional(),
  level: z.number().min(0).max(1).optional(),
  /** The scene the line shows: lines of one group are on one side of the train/eval split. Default: `clean`. */
  group: z.string().min(1).optional(),
}).strict().superRefine((e, ctx) => {
  // type and level label the line's own corrupted image; without one the mix corrupts the clean image and a label
  // would be ignored in silence
  for (const key of ['type', 'level'] as const) {
    if (e[key] !== undefined && e.corrupted === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'labels a given corrupted image: set "corrupted" too, or leave it out (the mix corrupts the clean image)' });
  }
});
export type ManifestEntry = z.output<typeof manifestEntrySchema>;

export interface CorruptionLabel {
  /** The corruption applied, or 'external' for a manifest's own corrupted image without a known type. */
  type: CorruptionType | 'external';
  /** Intensity in [0, 1]; null when a manifest gives none. */
  level: number | null;
}

export interface Sample {
  id: string;
  /** Index within the dataset's split. */
  index: number;
  split: Split;
  clean: RgbImage;
  corrupted: RgbImage;
  corruption: CorruptionLabel;
}

export interface OpenOptions {
  /** Which split to serve: 'train', 'eval', or 'all' (default) for every item. */
  split?: Split | 'all';
  /** Fraction of ids in the eval split (default 0.1). */
  evalFraction?: number;
  /** Corruption mix (default: all 16 types equally, levels low/mid/high). */
  mix?: CorruptionMixInput | CorruptionMix;
  /** Seeds corruption choices, their randomness and random crops (default 0). */
  seed?: number;
  /** Called once per unreadable image, which is then skipped. */
  onSkip?: (path: string, reason: string) => void;
  /** Where warnings go (default console.warn). */
  warn?: (message: string) => void;
  /** Decoded clean images kept in memory (LRU entries; default 512; 0 disables). */
  cacheSize?: number;
}

export interface Dataset {
  readonly kind: DatasetSpec['kind'];
  /** Items in the served split. */
  readonly size: number;
  readonly split: Split | 'all';
  /** Side of the square training resolution. */
  readonly resolution: number;
  /** Unreadable images skipped so far. */
  readonly skipped: number;
  /** Sample id of item `index` of the split. */
  id(index: number): string;
  /**
   * Item `index` (0 <= index < size), corrupted as in `epoch` (default 0: fixed, as evaluation wants).
   * Null when its image cannot be read (counted in `skipped`, reported through onSkip and a warning).
   */
  get(index: number, epoch?: number): Promise<Sample | null>;
  /**
   * Item `index` (its epoch-0 clean image) corrupted once per type of the mix, each at a level drawn from
   * (seed, id, type): eval.draws 'every-type' (lib/data/eval-draws.ts). An item with its own corrupted image (a
   * manifest pair) gives that one sample. Null when its image cannot be read, as get().
   */
  getEveryType(index: number): Promise<Sample[] | null>;
  /**
   * An endless deterministic stream for training: cursor c is in epoch floor(c / size), which visits the
   * split in its own seeded order and draws fresh corruptions. An unreadable item is replaced by the next
   * readable one in that order; throws when no item of the split can be read.
   */
  sample(cursor: number): Promise<Sample>;
  /** One pass over the split in index order (epoch 0), unreadable items skipped. */
  [Symbol.asyncIterator](): AsyncIterator<Sample>;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp']);

/** Where each item's pixels come from. */
interface Item {
  id: string;
  clean: string | null; // file path; null for procedural
  corrupted?: string;
  label?: CorruptionLabel;
  proceduralSeed?: number;
  /** The split, where the source decides it (photos: seeded by scene); otherwise a hash of `splitKey`. */
  split?: Split;
  /** What the split hashes (default: the id): a manifest line's scene, so that one scene is never on both sides. */
  splitKey?: string;
}

/** Lists image files under `root` recursively, sorted by their path relative to root (posix separators). */
export async function listImages(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if ((e.isFile() || e.isSymbolicLink()) && IMAGE_EXT.has(extname(e.name).toLowerCase())) out.push(p);
    }
  };
  await walk(root);
  return out.sort((a, b) => (relative(root, a) < relative(root, b) ? -1 : 1));
}

/** Parses a JSONL manifest; errors name the file and line. */
export function parseManifest(text: string, path: string): Array<ManifestEntry & { line: number }> {
  const entries: Array<ManifestEntry & { line: number }> = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n].trim();
    if (raw === '' || raw.startsWith('//')) continue;
    const where = `${path}:${n + 1}`;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (e) {
      throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
    }
    const r = manifestEntrySchema.safeParse(json);
    if (!r.success) {
      const issues = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') + ': ' : ''}${i.message}`).join('; ');
      throw new Error(`${where}: bad manifest entry (${issues}); expected {"id", "clean", "corrupted"}`);
    }
    const prev = seen.get(r.data.id);
    if (prev !== undefined) throw new Error(`${where}: duplicate id '${r.data.id}' (first on line ${prev})`);
    seen.set(r.data.id, n + 1);
    entries.push({ ...r.data, line: n + 1 });
  }
  if (entries.length === 0) throw new Error(`${path}: the manifest has no entries`);
  return entries;
}

/** The source's items, by position: an array, or (procedural) made on demand. */
interface ItemList { count: number; at(k: number): Item }

function arrayList(items: Item[]): ItemList {
  return { count: items.length, at: (k) => items[k] };
}

async function listItems(spec: DatasetSpec): Promise<{ list: ItemList; where: string }> {
  if (spec.kind === 'procedural') {
    const { seed } = spec;
    const list: ItemList = {
      count: spec.count,
      at: (k) => ({ id: `procedural-${seed}-${k}`, clean: null, proceduralSeed: hashSeed('procedural', seed, k) }),
    };
    return { list, where: `procedural dataset (seed ${seed})` };
  }
  if (spec.kind === 'photos') {
    const path = resolve(spec.manifest ?? PHOTO_MANIFEST);
    const entries = parsePhotoManifest(await readFile(path, 'utf8'), path);
    await verifyPhotoEntries(entries);
    const split = splitPhotoGroups(entries, spec.evalImages, spec.splitSeed, spec.valImages);
    if (![...split.values()].includes('train')) {
      throw new Error(`${path}: ${entries.length} photographs leave none for training with evalImages ${spec.evalImages} and valImages ${spec.valImages}`);
    }
    return { list: arrayList(entries.map((e) => ({ id: e.id, clean: photoFile(e), split: split.get(e.id)! }))), where: path };
  }
  if (spec.kind === 'folder') {
    const root = resolve(spec.path);
    let st;
    try {
      st = await stat(root);
    } catch {
      throw new Error(`${spec.path}: dataset folder does not exist`);
    }
    if (!st.isDirectory()) throw new Error(`${spec.path}: not a folder`);
    const files = await listImages(root);
    if (files.length === 0) throw new Error(`${spec.path}: empty dataset, no PNG, JPEG or WebP images found (searched recursively)`);
    const items = files.map((f) => ({ id: relative(root, f).split(sep).join('/'), clean: f }));
    return { list: arrayList(items.slice(0, spec.limit ?? items.length)), where: spec.path };
  }
  const path = resolve(spec.path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${spec.path}: cannot read manifest (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const base = dirname(path);
  const items = parseManifest(text, spec.path).map((e): Item => ({
    id: e.id,
    // split by image, never by line: a paired set holds many corrupted versions of one clean image, one line each
    // (the clean path relative to the manifest, not resolved: the split must not depend on where the dataset is
    // mounted). A line without its own corrupted image is one image, corrupted on the fly: keyed by its id as before
    // round 23, so that such manifests keep their split
    splitKey: e.group ?? (e.corrupted !== undefined ? relative(base, resolve(base, e.clean)).split(sep).join('/') : e.id),
    clean: resolve(base, e.clean),
    corrupted: e.corrupted === undefined ? undefined : resolve(base, e.corrupted),
    label: e.corrupted === undefined ? undefined : {
      type: e.type !== undefined && isCorruptionType(e.type) ? e.type : 'external',
      level: e.level ?? null,
    },
  }));
  return { list: arrayList(items.slice(0, spec.limit ?? items.length)), where: spec.path };
}

/** Which split an item (its id, or a manifest line's scene) belongs to: a stable hash, independent of the run seed. */
export function splitOf(key: string, evalFraction: number): Split {
  return hashUnit('split', key) < evalFraction ? 'eval' : 'train';
}

/** Opens a dataset. Throws for an empty or missing source or a manifest line that does not parse. */
export async function openDataset(specInput: DatasetSpecInput | DatasetSpec, opts: OpenOptions = {}): Promise<Dataset> {
  const parsed = datasetSpecSchema.safeParse(specInput);
  if (!parsed.success) {
    throw new Error(`dataset spec: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const spec = parsed.data;
  const mix = corruptionMixSchema.parse(opts.mix ?? {});
  const seed = opts.seed ?? 0;
  const evalFraction = opts.evalFraction ?? 0.1;
  if (!(evalFraction >= 0 && evalFraction <= 1)) throw new Error(`evalFraction must be in [0, 1], got ${evalFraction}`);
  const which = opts.split ?? 'all';
  const itemSplit = (it: Item): Split => it.split ?? splitOf(it.splitKey ?? it.id, evalFraction);
  const warn = opts.warn ?? ((m: string) => console.warn(m));
  const { list, where } = await listItems(spec);
  // Positions of the split's items in the source (all of them for 'all').
  let sel: Uint32Array | null = null;
  if (which !== 'all') {
    const keep: number[] = [];
    for (let k = 0; k < list.count; k++) if (itemSplit(list.at(k)) === which) keep.push(k);
    sel = Uint32Array.from(keep);
  }
  const count = sel ? sel.length : list.count;
  const itemAt = (index: number): Item => list.at(sel ? sel[index] : index);
  if (count === 0) {
    throw new Error(`${where}: the ${which} split is empty (${list.count} items, evalFraction ${evalFraction})`);
  }
  const size = spec.size;
  const crop: CropMode = spec.kind === 'procedural' ? 'center' : spec.kind === 'photos' ? 'random' : spec.crop;
  // Whole-image evaluation: eval items are whole images at shorter side evalSize; training items are crops of
  // `size` from the same scale, so both see the same pixel statistics.
  const evalSize = spec.kind === 'procedural' ? undefined : spec.evalSize;
  const augment = spec.kind === 'photos' && spec.augment;
  const bad = new Map<string, string>(); // path -> reason
  let skipped = 0;
  const cacheSize = opts.cacheSize ?? 512;
  const cache = new Map<string, RgbImage>();

  const skip = (path: string, reason: string): void => {
    if (bad.has(path)) return;
    bad.set(path, reason);
    skipped++;
    warn(`warning: skipping unreadable image ${path}: ${reason}`);
    opts.onSkip?.(path, reason);
  };

  const cropAt = (id: string, epoch: number): { x: number; y: number } => {
    if (crop === 'center') return { x: 0.5, y: 0.5 };
    const r = rng(hashSeed(seed, 'crop', id, epoch));
    return { x: r.float(), y: r.float() };
  };

  // Evaluation and validation items are whole images; only training items are cropped.
  const isWhole = (it: Item): boolean => evalSize !== undefined && itemSplit(it) !== 'train';
  // With evalSize, each file is decoded once at that scale (whole, long side a multiple of 8 for eval items)
  // and training crops are cut from it in memory: decoding a large photograph per crop would dominate training.
  const scaled = new Map<string, Promise<RgbImage>>();
  const scaledOf = (input: string | Uint8Array, whole: boolean): Promise<RgbImage> => {
    if (typeof input !== 'string') return decodeWhole(input, evalSize!, whole ? 8 : 1);
    const key = `${whole ? 'w' : 'c'}\u0000${input}`;
    let p = scaled.get(key);
    if (!p) {
      p = decodeWhole(input, evalSize!, whole ? 8 : 1);
      p.catch(() => scaled.delete(key));
      scaled.set(key, p);
    }
    return p;
  };
  /** An item's pixels: the whole image (eval, with evalSize) or its crop for `epoch`. */
  const decodeAs = async (it: Item, input: string | Uint8Array, epoch: number): Promise<RgbImage> => {
    const center = { x: 0.5, y: 0.5 };
    const at = itemSplit(it) !== 'train' ? center : cropAt(it.id, epoch);
    if (evalSize === undefined) return decodeImage(input, { size, cropAt: at });
    if (isWhole(it)) return scaledOf(input, true);
    const c = cropSquare(await scaledOf(input, false), Math.min(size, evalSize), at);
    return augment ? dihedral(c, rng(hashSeed(seed, 'augment', it.id, epoch)).int(0, 7)) : c;
  };

  const loadClean = async (it: Item, epoch: number): Promise<RgbImage> => {
    if (it.clean === null) return renderScene(it.proceduralSeed!, size);
    const whole = isWhole(it);
    const key = crop === 'center' || whole ? it.id : `${it.id}\u0000${epoch}`;
    const hit = cache.get(key);
    if (hit) {
      cache.delete(key);
      cache.set(key, hit);
      return hit;
    }
    const img = await decodeAs(it, it.clean, epoch);
    if (cacheSize > 0) {
      cache.set(key, img);
      if (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
    }
    return img;
  };

  const loadCorrupted = async (it: Item, epoch: number): Promise<RgbImage> => {
    const path = it.corrupted!;
    const [cs, ks] = await Promise.all([imageSize(it.clean!), imageSize(path)]);
    if (cs.width === ks.width && cs.height === ks.height) return decodeAs(it, path, epoch);
    // Different pixel size: bring it to the clean image's size first, so both crops cover the same scene.
    const same = await sharp(path, { failOn: 'error' }).autoOrient()
      .resize(cs.width, cs.height, { fit: 'fill' }).png({ compressionLevel: 0 }).toBuffer();
    return decodeAs(it, same, epoch);
  };

  const checkIndex = (index: number): void => {
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new Error(`${where}: index ${index} outside the ${which} split (size ${count})`);
    }
  };

  // A training crop of a photograph scaled to evalSize is corrupted at that photograph's scale (pixel-sized
  // parameters as on the whole evaluation image), not as if the crop were the whole picture.
  const refSizeOf = (it: Item, clean: RgbImage): number => (evalSize !== undefined && !isWhole(it) ? (mix.refSize * clean.width) / evalSize : mix.refSize);

  const get = async (index: number, epoch = 0): Promise<Sample | null> => {
    checkIndex(index);
    const it = itemAt(index);
    if ((it.clean && bad.has(it.clean)) || (it.corrupted && bad.has(it.corrupted))) return null;
    let clean: RgbImage;
    try {
      clean = await loadClean(it, epoch);
    } catch (e) {
      skip(it.clean!, reasonOf(e));
      return null;
    }
    const split = itemSplit(it);
    if (it.corrupted) {
      try {
        const corrupted = await loadCorrupted(it, epoch);
        return { id: it.id, index, split, clean, corrupted, corruption: it.label! };
      } catch (e) {
        // Tell which of the pair failed: the clean one decoded, so unless its size lookup failed it is this one.
        skip(it.corrupted, reasonOf(e));
        return null;
      }
    }
    const choice = sampleCorruption(mix, hashSeed(seed, 'choice', it.id, epoch));
    const corrupted = await corrupt(clean, choice.type, choice.level, hashSeed(seed, 'corrupt', it.id, epoch), { refSize: refSizeOf(it, clean) });
    return { id: it.id, index, split, clean, corrupted, corruption: { type: choice.type, level: choice.level } };
  };

  const getEveryType = async (index: number): Promise<Sample[] | null> => {
    checkIndex(index);
    const it = itemAt(index);
    if (it.corrupted) {
      const s = await get(index);
      return s ? [s] : null;
    }
    if (it.clean && bad.has(it.clean)) return null;
    let clean: RgbImage;
    try {
      clean = await loadClean(it, 0);
    } catch (e) {
      skip(it.clean!, reasonOf(e));
      return null;
    }
    const split = itemSplit(it);
    const refSize = refSizeOf(it, clean);
    const out: Sample[] = [];
    // One clean image shared by every draw (read-only): 16 draws of a whole photograph cost one decode.
    for (const d of everyTypeDraws(mix, seed, it.id)) {
      const corrupted = await corrupt(clean, d.type, d.level, d.seed, { refSize });
      out.push({ id: it.id, index, split, clean, corrupted, corruption: { type: d.type, level: d.level } });
    }
    return out;
  };

  const orders = new Map<number, Uint32Array>();
  const orderOf = (epoch: number): Uint32Array => {
    let o = orders.get(epoch);
    if (!o) {
      o = new Uint32Array(count);
      for (let k = 0; k < count; k++) o[k] = k;
      rng(hashSeed(seed, 'order', epoch)).shuffle(o);
      if (orders.size > 4) orders.delete(orders.keys().next().value!);
      orders.set(epoch, o);
    }
    return o;
  };

  const sample = async (cursor: number): Promise<Sample> => {
    if (!Number.isInteger(cursor) || cursor < 0) throw new Error(`sample cursor must be a non-negative integer, got ${cursor}`);
    const n = count;
    for (let tries = 0; tries < n; tries++) {
      const c = cursor + tries;
      const epoch = Math.floor(c / n);
      const s = await get(orderOf(epoch)[c % n], epoch);
      if (s) return s;
    }
    throw new Error(`${where}: no readable image in the ${which} split (${skipped} skipped)`);
  };

  return {
    kind: spec.kind,
    size: count,
    split: which,
    resolution: size,
    get skipped() { return skipped; },
    id: (index) => {
      if (!Number.isInteger(index) || index < 0 || index >= count) throw new Error(`${where}: index ${index} outside the ${which} split (size ${count})`);
      return itemAt(index).id;
    },
    get,
    getEveryType,
    sample,
    async *[Symbol.asyncIterator]() {
      for (let k = 0; k < count; k++) {
        const s = await get(k);
        if (s) yield s;
      }
    },
  };
}

/** Opens the dataset described by a data config section (see dataConfigSchema). */
export function openDataConfig(
  config: DataConfigInput | DataConfig, opts: Omit<OpenOptions, 'mix' | 'seed' | 'evalFraction'> = {},
): Promise<Dataset> {
  const c = dataConfigSchema.parse(config);
  return openDataset(c.dataset, { ...opts, mix: c.corruptions, seed: c.seed, evalFraction: c.evalFraction });
}

function reasonOf(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0];
}

/**
 * A DataConfig from a run configuration's `data` section: either this module's own shape (dataConfigSchema:
 * `{dataset, corruptions, evalFraction, seed}`) or lib/config's interim shape (`{source: {kind, path, count},
 * size, evalFraction, corruptions: {types: 'all' | [...], weights, levels}}`). `seed` is the run seed.
 */
export function dataConfigFrom(section: unknown, seed = 0): DataConfig {
  const d = (section ?? {}) as Record<string, unknown>;
  if (!('source' in d)) return dataConfigSchema.parse({ seed, ...d });
  const src = (d.source ?? {}) as { kind?: string; path?: string; count?: number };
  const size = (d.size as number | undefined) ?? 32;
  const kind = src.kind ?? 'photos';
  const evalSize = d.evalSize as number | undefined;
  const dataset = kind === 'procedural'
    ? { kind, count: src.count ?? 256, size }
    : kind === 'photos'
      ? { kind, size, ...(evalSize !== undefined ? { evalSize } : {}), ...(d.evalImages !== undefined ? { evalImages: d.evalImages } : {}), ...(d.valImages !== undefined ? { valImages: d.valImages } : {}), ...(d.augment !== undefined ? { augment: d.augment } : {}), ...(src.path !== undefined ? { manifest: src.path } : {}) }
      : { kind, path: src.path, size, crop: 'random', ...(evalSize !== undefined ? { evalSize } : {}), ...(src.count !== undefined ? { limit: src.count } : {}) };
  const c = (d.corruptions ?? {}) as { types?: 'all' | string[]; weights?: Record<string, number>; levels?: number[] };
  const listed = c.types === undefined || c.types === 'all' ? undefined : c.types;
  let types: Record<string, number> | undefined;
  if (listed) types = Object.fromEntries(listed.map((t) => [t, c.weights?.[t] ?? 1]));
  else if (c.weights) types = Object.fromEntries(CORRUPTION_TYPES.map((t) => [t, c.weights![t] ?? 1]));
  if (c.weights) for (const t of Object.keys(c.weights)) if (types && !(t in types)) types[t] = c.weights[t];
  return dataConfigSchema.parse({
    dataset,
    corruptions: { ...(types ? { types } : {}), ...(c.levels ? { levels: c.levels } : {}) },
    ...(d.evalFraction !== undefined ? { evalFraction: d.evalFraction } : {}),
    seed,
  });
}
