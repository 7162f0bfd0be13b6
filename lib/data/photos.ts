// The built-in photo dataset: photographs that Debian packages ship under free licences, chosen by hand
// (drawings, renders, logos, paintings and already-degraded samples left out; see docs/data.md), and the
// committed manifest (lib/data/photos.jsonl) that records each file's package, licence and SHA-256 digest.
// scripts/ensure-photos.sh installs the packages; `node --import tsx scripts/build-photo-manifest.ts`
// rewrites the manifest from PHOTO_SOURCES; openDataset({kind: 'photos'}) checks the files against it.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
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
}

/** The Debian packages the built-in photo dataset comes from (gnome-backgrounds 43 ships no photographs). */
export const PHOTO_PACKAGES = [
  'opencv-doc', 'mate-backgrounds', 'lomiri-wallpapers-16.04', 'lomiri-wallpapers-20.04', 'plasma-workspace-wallpapers',
] as const;

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
];

/** One line of the photo manifest. */
export const photoEntrySchema = z.strictObject({
  id: z.string().min(1),
  clean: z.string().min(1),
  package: z.string().min(1),
  licence: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  group: z.string().min(1),
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
    let text = copyrights.get(s.package);
    if (text === undefined) {
      try {
        text = await readFile(copyrightPath(s.package, root), 'utf8');
      } catch {
        throw new Error(`photo dataset: Debian package ${s.package} is not installed (${copyrightPath(s.package, root)} missing). ${HOW_TO_SUPPLY}`);
      }
      copyrights.set(s.package, text);
    }
    if (!new RegExp(`^License:\\s*${s.licence.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`, 'm').test(text)) {
      throw new Error(`photo dataset: ${s.file}: licence '${s.licence}' not found in ${copyrightPath(s.package, root)}`);
    }
    let bytes: Uint8Array;
    try {
      bytes = await readFile(join(root, s.file));
    } catch {
      throw new Error(`photo dataset: ${s.file} missing (Debian package ${s.package}). ${HOW_TO_SUPPLY}`);
    }
    const id = photoId(s);
    out.push({ id, clean: s.file, package: s.package, licence: s.licence, sha256: sha256(bytes), group: s.group ? `${s.package}/${s.group}` : id });
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
      bytes = await readFile(join(root, e.clean));
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
 * A seeded split by group (every photograph of a scene on one side): groups are shuffled with `seed` and
 * taken into the eval split until it holds at least `evalImages` photographs.
 */
export function splitPhotoGroups(entries: readonly { id: string; group?: string }[], evalImages: number, seed: number): Map<string, Split> {
  const groups = [...new Set(entries.map((e) => e.group ?? e.id))].sort();
  const size = new Map<string, number>();
  for (const e of entries) size.set(e.group ?? e.id, (size.get(e.group ?? e.id) ?? 0) + 1);
  rng(hashSeed('photo-split', seed)).shuffle(groups);
  const evalGroups = new Set<string>();
  let n = 0;
  for (const g of groups) {
    if (n >= evalImages) break;
    evalGroups.add(g);
    n += size.get(g)!;
  }
  return new Map(entries.map((e) => [e.id, evalGroups.has(e.group ?? e.id) ? 'eval' : 'train']));
}
