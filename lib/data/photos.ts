// The built-in photo dataset: photographs that Debian packages ship under free licences, chosen by hand
// (drawings, renders, logos, paintings and already-degraded samples left out; see docs/data.md), and the
// committed manifest (lib/data/photos.jsonl) that records each file's package, licence and SHA-256 digest.
// scripts/ensure-photos.sh installs the packages; `node --import tsx scripts/build-photo-manifest.ts`
// rewrites the manifest from PHOTO_SOURCES; openDataset({kind: 'photos'}) checks the files against it.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { hashSeed, rng } from './random.ts';
import type { Split } from './dataset.ts';

export interface PhotoSource {
  /** The Debian package that installs `file`. */
  package: string;
  /** The licence as the package's debian/copyright names it for this file (a `License:` line there). */
  licence: string;
  /** Absolute installed path. */
  file: string;
  /** Photographs of one scene (stereo pairs, two views of one wall) share a group, so a split keeps them together. */
  group?: string;
  /**
   * Taken into the evaluation split only after every other scene (photographs added after the split was
   * fixed): they go to training, and the evaluation photographs stay the ones earlier figures were measured on.
   */
  evalLast?: boolean;
}

/** The Debian packages the built-in photo dataset comes from (gnome-backgrounds 43 ships no photographs). */
export const PHOTO_PACKAGES = [
  'opencv-doc', 'mate-backgrounds', 'lomiri-wallpapers-16.04', 'lomiri-wallpapers-20.04', 'plasma-workspace-wallpapers',
] as const;

/**
 * Packages whose photographs are read from the unpacked .deb (`apt-get download` + `dpkg -x`, no install)
 * unless the package is installed: python3-skimage would pull in 57 other packages (scipy, matplotlib, ...)
 * for 12 small photographs. scripts/ensure-photos.sh unpacks it into photoCacheDir().
 */
export const PHOTO_EXTRACTED_PACKAGES = ['python3-skimage'] as const;

/** Where unpacked packages live: $RECOVERY_GRPO_PHOTO_CACHE, else ~/.cache/recovery-grpo/debian (one folder per package). */
export function photoCacheDir(): string {
  return process.env.RECOVERY_GRPO_PHOTO_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'recovery-grpo', 'debian');
}

/**
 * The file system root a package's files are read under: `root` when the package is installed there (its
 * copyright file exists) or is not one of PHOTO_EXTRACTED_PACKAGES, else its unpacked copy in the cache.
 */
export function packageRoot(pkg: string, root = '/'): string {
  if (!(PHOTO_EXTRACTED_PACKAGES as readonly string[]).includes(pkg) || existsSync(copyrightPath(pkg, root))) return root;
  return join(photoCacheDir(), pkg);
}

/** Where a manifest entry's file is read from (its `clean` path is the path the package installs). */
export const photoFile = (e: { clean: string; package: string }, root = '/'): string => join(packageRoot(e.package, root), e.clean);

export const PHOTO_SOURCES: readonly PhotoSource[] = [
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/aero1.jpg', group: 'aero' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/aero3.jpg', group: 'aero' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/aloeL.jpg', group: 'aloe' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/aloeR.jpg', group: 'aloe' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/apple.jpg' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/baboon.jpg' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/board.jpg' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/building.jpg' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/butterfly.jpg' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/ela_original.jpg' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/fruits.jpg' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/home.jpg' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/left.jpg', group: 'stereo-lr' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/right.jpg', group: 'stereo-lr' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/leuvenA.jpg', group: 'leuven' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/leuvenB.jpg', group: 'leuven' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/messi5.jpg' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/orange.jpg' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/stuff.jpg' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/graf1.png', group: 'graf' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/graf3.png', group: 'graf' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/rubberwhale1.png', group: 'rubberwhale' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/rubberwhale2.png', group: 'rubberwhale' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/smarties.png' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/box_in_scene.png' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/basketball1.png', group: 'basketball' },
  { package: 'opencv-doc', licence: 'BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/data/basketball2.png', group: 'basketball' },
  { package: 'opencv-doc', licence: 'Apache-2.0 AND BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/hfs/data/000.jpg' },
  { package: 'opencv-doc', licence: 'Apache-2.0 AND BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/hfs/data/001.jpg' },
  { package: 'opencv-doc', licence: 'Apache-2.0 AND BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/hfs/data/002.jpg' },
  { package: 'opencv-doc', licence: 'Apache-2.0 AND BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/text/scenetext01.jpg' },
  { package: 'opencv-doc', licence: 'Apache-2.0 AND BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/text/scenetext02.jpg' },
  { package: 'opencv-doc', licence: 'Apache-2.0 AND BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/text/scenetext03.jpg' },
  { package: 'opencv-doc', licence: 'Apache-2.0 AND BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/text/scenetext04.jpg' },
  { package: 'opencv-doc', licence: 'Apache-2.0 AND BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/text/scenetext05.jpg' },
  { package: 'opencv-doc', licence: 'Apache-2.0 AND BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/text/scenetext06.jpg' },
  { package: 'opencv-doc', licence: 'Apache-2.0 AND BSD-3-Clause', file: '/usr/share/doc/opencv-doc/examples/reg/home.png' },
  { package: 'mate-backgrounds', licence: 'GPL-2+', file: '/usr/share/backgrounds/mate/nature/Aqua.jpg' },
  { package: 'mate-backgrounds', licence: 'GPL-2+', file: '/usr/share/backgrounds/mate/nature/Blinds.jpg' },
  { package: 'mate-backgrounds', licence: 'GPL-2+', file: '/usr/share/backgrounds/mate/nature/Dune.jpg' },
  { package: 'mate-backgrounds', licence: 'GPL-2+', file: '/usr/share/backgrounds/mate/nature/FreshFlower.jpg' },
  { package: 'mate-backgrounds', licence: 'GPL-2+', file: '/usr/share/backgrounds/mate/nature/Garden.jpg' },
  { package: 'mate-backgrounds', licence: 'GPL-2+', file: '/usr/share/backgrounds/mate/nature/GreenMeadow.jpg' },
  { package: 'mate-backgrounds', licence: 'GPL-2+', file: '/usr/share/backgrounds/mate/nature/LadyBird.jpg' },
  { package: 'mate-backgrounds', licence: 'GPL-2+', file: '/usr/share/backgrounds/mate/nature/RainDrops.jpg' },
  { package: 'mate-backgrounds', licence: 'GPL-2+', file: '/usr/share/backgrounds/mate/nature/Storm.jpg' },
  { package: 'mate-backgrounds', licence: 'GPL-2+', file: '/usr/share/backgrounds/mate/nature/TwoWings.jpg' },
  { package: 'mate-backgrounds', licence: 'GPL-2+', file: '/usr/share/backgrounds/mate/nature/Wood.jpg' },
  { package: 'mate-backgrounds', licence: 'GPL-2+', file: '/usr/share/backgrounds/mate/nature/YellowFlower.jpg' },
  { package: 'lomiri-wallpapers-16.04', licence: 'CC-BY-SA-4.0', file: '/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg' },
  { package: 'lomiri-wallpapers-16.04', licence: 'CC-BY-SA-4.0', file: '/usr/share/backgrounds/Dragonfly_by_Bolly.jpg' },
  { package: 'lomiri-wallpapers-16.04', licence: 'CC-BY-4.0', file: '/usr/share/backgrounds/Picture_0B_by_freespace.jpg' },
  { package: 'lomiri-wallpapers-16.04', licence: 'CC-BY-4.0', file: '/usr/share/backgrounds/Picture_1A_by_freespace.jpg' },
  { package: 'lomiri-wallpapers-16.04', licence: 'CC-BY-4.0', file: '/usr/share/backgrounds/Wine_by_Jakkub_Mede.jpg' },
  { package: 'lomiri-wallpapers-16.04', licence: 'CC-BY-4.0', file: '/usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg' },
  { package: 'lomiri-wallpapers-16.04', licence: 'CC-BY-SA-4.0', file: '/usr/share/backgrounds/free_by_Peter_Nerlich.jpg' },
  { package: 'lomiri-wallpapers-16.04', licence: 'CC-BY-4.0', file: '/usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg' },
  { package: 'lomiri-wallpapers-16.04', licence: 'CC-BY-SA-4.0', file: '/usr/share/backgrounds/greentock_by_Peter_Nerlich.jpg' },
  { package: 'lomiri-wallpapers-16.04', licence: 'CC-BY-4.0', file: '/usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg' },
  { package: 'lomiri-wallpapers-16.04', licence: 'CC-BY-4.0', file: '/usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg' },
  { package: 'lomiri-wallpapers-16.04', licence: 'CC0-1.0', file: '/usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg' },
  { package: 'lomiri-wallpapers-16.04', licence: 'CC-BY-4.0', file: '/usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg' },
  { package: 'lomiri-wallpapers-20.04', licence: 'CC-BY-SA-3.0', file: '/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg' },
  { package: 'plasma-workspace-wallpapers', licence: 'GPL-2+', file: '/usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg' },
  { package: 'plasma-workspace-wallpapers', licence: 'GPL-2+', file: '/usr/share/wallpapers/ColdRipple/contents/images/2560x1600.jpg' },
  { package: 'plasma-workspace-wallpapers', licence: 'GPL-2+', file: '/usr/share/wallpapers/ColorfulCups/contents/images/2560x1600.jpg' },
  { package: 'plasma-workspace-wallpapers', licence: 'GPL-2+', file: '/usr/share/wallpapers/DarkestHour/contents/images/2560x1600.jpg' },
  { package: 'plasma-workspace-wallpapers', licence: 'GPL-2+', file: '/usr/share/wallpapers/EveningGlow/contents/images/2560x1600.jpg' },
  { package: 'plasma-workspace-wallpapers', licence: 'GPL-2+', file: '/usr/share/wallpapers/FallenLeaf/contents/images/2560x1600.jpg' },
  { package: 'plasma-workspace-wallpapers', licence: 'GPL-2+', file: '/usr/share/wallpapers/Grey/contents/images/2560x1600.jpg' },
  { package: 'plasma-workspace-wallpapers', licence: 'GPL-2+', file: '/usr/share/wallpapers/Kite/contents/images/2560x1600.jpg' },
  { package: 'plasma-workspace-wallpapers', licence: 'GPL-2+', file: '/usr/share/wallpapers/OneStandsOut/contents/images/2560x1600.jpg' },
  { package: 'plasma-workspace-wallpapers', licence: 'GPL-2+', file: '/usr/share/wallpapers/Path/contents/images/2560x1600.jpg' },
  { package: 'plasma-workspace-wallpapers', licence: 'GPL-2+', file: '/usr/share/wallpapers/summer_1am/contents/images/2560x1600.jpg' },
  // scikit-image's sample photographs (debian/copyright: Files: * BSD-3-Clause; upstream's docstrings call each
  // CC0 or public domain). Left out: its microscopy, retina, Hubble and drawn samples and clock_motion (blurred).
  { package: 'python3-skimage', licence: 'BSD-3-Clause', evalLast: true, file: '/usr/lib/python3/dist-packages/skimage/data/astronaut.png' },
  { package: 'python3-skimage', licence: 'BSD-3-Clause', evalLast: true, file: '/usr/lib/python3/dist-packages/skimage/data/chelsea.png' },
  { package: 'python3-skimage', licence: 'BSD-3-Clause', evalLast: true, file: '/usr/lib/python3/dist-packages/skimage/data/coffee.png' },
  { package: 'python3-skimage', licence: 'BSD-3-Clause', evalLast: true, file: '/usr/lib/python3/dist-packages/skimage/data/rocket.jpg' },
  { package: 'python3-skimage', licence: 'BSD-3-Clause', evalLast: true, file: '/usr/lib/python3/dist-packages/skimage/data/motorcycle_left.png', group: 'motorcycle' },
  { package: 'python3-skimage', licence: 'BSD-3-Clause', evalLast: true, file: '/usr/lib/python3/dist-packages/skimage/data/motorcycle_right.png', group: 'motorcycle' },
  { package: 'python3-skimage', licence: 'BSD-3-Clause', evalLast: true, file: '/usr/lib/python3/dist-packages/skimage/data/camera.png' },
  { package: 'python3-skimage', licence: 'BSD-3-Clause', evalLast: true, file: '/usr/lib/python3/dist-packages/skimage/data/coins.png' },
  { package: 'python3-skimage', licence: 'BSD-3-Clause', evalLast: true, file: '/usr/lib/python3/dist-packages/skimage/data/moon.png' },
  { package: 'python3-skimage', licence: 'BSD-3-Clause', evalLast: true, file: '/usr/lib/python3/dist-packages/skimage/data/brick.png' },
  { package: 'python3-skimage', licence: 'BSD-3-Clause', evalLast: true, file: '/usr/lib/python3/dist-packages/skimage/data/grass.png' },
  { package: 'python3-skimage', licence: 'BSD-3-Clause', evalLast: true, file: '/usr/lib/python3/dist-packages/skimage/data/gravel.png' },
];

/** One line of the photo manifest. */
export const photoEntrySchema = z.strictObject({
  id: z.string().min(1),
  clean: z.string().min(1),
  package: z.string().min(1),
  licence: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  group: z.string().min(1),
  evalLast: z.literal(true).optional(),
});
export type PhotoEntry = z.output<typeof photoEntrySchema>;

/** The committed manifest's path. */
export const PHOTO_MANIFEST = join(dirname(fileURLToPath(import.meta.url)), 'photos.jsonl');

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A readable id: package and file name without extension (made unique by the folder where needed). */
function photoId(s: PhotoSource): string {
  const parts = s.file.split('/');
  const name = parts[parts.length - 1].replace(/\.[^.]+$/, '');
  const where = s.package === 'plasma-workspace-wallpapers' ? parts[parts.length - 4] // <name>/contents/images/<size>.jpg
    : s.package === 'opencv-doc' ? `${parts[parts.length - 2]}-${name}` : name;
  return `${s.package}/${where}`;
}

/** The copyright file of an installed Debian package. */
export const copyrightPath = (pkg: string, root = '/'): string => join(root, 'usr/share/doc', pkg, 'copyright');

const HOW_TO_SUPPLY = 'Run scripts/ensure-photos.sh (installs the Debian packages with apt), or use your own photographs: '
  + "data.source.kind 'folder' (a folder of PNG/JPEG/WebP files) or 'manifest' (a JSONL list), see docs/data.md.";

/** Builds manifest entries from the sources: reads every file (digest) and checks its licence in debian/copyright. */
export async function buildPhotoEntries(sources: readonly PhotoSource[] = PHOTO_SOURCES, root = '/'): Promise<PhotoEntry[]> {
  const copyrights = new Map<string, string>();
  const out: PhotoEntry[] = [];
  for (const s of sources) {
    const pkgRoot = packageRoot(s.package, root);
    let text = copyrights.get(s.package);
    if (text === undefined) {
      try {
        text = await readFile(copyrightPath(s.package, pkgRoot), 'utf8');
      } catch {
        throw new Error(`photo dataset: Debian package ${s.package} is not installed (${copyrightPath(s.package, pkgRoot)} missing). ${HOW_TO_SUPPLY}`);
      }
      copyrights.set(s.package, text);
    }
    if (!new RegExp(`^License:\\s*${s.licence.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`, 'm').test(text)) {
      throw new Error(`photo dataset: ${s.file}: licence '${s.licence}' not found in ${copyrightPath(s.package, pkgRoot)}`);
    }
    let bytes: Uint8Array;
    try {
      bytes = await readFile(join(pkgRoot, s.file));
    } catch {
      throw new Error(`photo dataset: ${s.file} missing (Debian package ${s.package}). ${HOW_TO_SUPPLY}`);
    }
    const id = photoId(s);
    out.push({ id, clean: s.file, package: s.package, licence: s.licence, sha256: sha256(bytes), group: s.group ? `${s.package}/${s.group}` : id, ...(s.evalLast ? { evalLast: true as const } : {}) });
  }
  return out;
}

export function formatPhotoManifest(entries: readonly PhotoEntry[]): string {
  return entries.map((e) => JSON.stringify(e)).join('\n') + '\n';
}

export function parsePhotoManifest(text: string, path: string): PhotoEntry[] {
  const out: PhotoEntry[] = [];
  const ids = new Set<string>();
  text.split(/\r?\n/).forEach((line, n) => {
    if (line.trim() === '') return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      throw new Error(`${path}:${n + 1}: not valid JSON (${(e as Error).message})`);
    }
    const r = photoEntrySchema.safeParse(json);
    if (!r.success) throw new Error(`${path}:${n + 1}: bad photo entry (${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`);
    if (ids.has(r.data.id)) throw new Error(`${path}:${n + 1}: duplicate id '${r.data.id}'`);
    ids.add(r.data.id);
    out.push(r.data);
  });
  if (out.length === 0) throw new Error(`${path}: the photo manifest has no entries`);
  return out;
}

/**
 * Checks every entry's file against its digest. Throws, naming the package and how to supply images
 * otherwise, when files are missing; a file whose digest differs (another package version) is reported.
 */
export async function verifyPhotoEntries(entries: readonly PhotoEntry[], root = '/'): Promise<void> {
  const missing = new Set<string>();
  const changed: string[] = [];
  for (const e of entries) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(photoFile(e, root));
    } catch {
      missing.add(e.package);
      continue;
    }
    if (sha256(bytes) !== e.sha256) changed.push(e.clean);
  }
  if (missing.size > 0) {
    throw new Error(`photo dataset: files of Debian package(s) ${[...missing].join(', ')} are missing. ${HOW_TO_SUPPLY}`);
  }
  if (changed.length > 0) {
    throw new Error(`photo dataset: ${changed.length} file(s) differ from lib/data/photos.jsonl's digests (another package version?): ${changed.slice(0, 3).join(', ')}${changed.length > 3 ? ', ...' : ''}. Regenerate with scripts/build-photo-manifest.ts and re-measure.`);
  }
}

/**
 * A seeded split by group (every photograph of a scene on one side): groups are shuffled with `seed` (the
 * groups of `evalLast` photographs shuffled apart and put after the others) and taken in that order into the
 * eval split until it holds at least `evalImages` photographs, then into the validation split until it holds
 * at least `valImages` (held-out training scenes to choose settings on); the rest is training.
 */
export function splitPhotoGroups(entries: readonly { id: string; group?: string; evalLast?: boolean }[], evalImages: number, seed: number, valImages = 0): Map<string, Split> {
  const groupOf = (e: { id: string; group?: string }) => e.group ?? e.id;
  const size = new Map<string, number>();
  const last = new Set<string>();
  for (const e of entries) {
    size.set(groupOf(e), (size.get(groupOf(e)) ?? 0) + 1);
    if (e.evalLast) last.add(groupOf(e));
  }
  const all = [...size.keys()].sort();
  const first = all.filter((g) => !last.has(g));
  const later = all.filter((g) => last.has(g));
  // The first groups' order is what it was before any evalLast photograph existed (same seed, same draws).
  rng(hashSeed('photo-split', seed)).shuffle(first);
  rng(hashSeed('photo-split-last', seed)).shuffle(later);
  const side = new Map<string, Split>();
  let nEval = 0;
  let nVal = 0;
  for (const g of [...first, ...later]) {
    if (nEval < evalImages) {
      side.set(g, 'eval');
      nEval += size.get(g)!;
    } else if (nVal < valImages) {
      side.set(g, 'val');
      nVal += size.get(g)!;
    }
  }
  return new Map(entries.map((e) => [e.id, side.get(groupOf(e)) ?? 'train']));
}
