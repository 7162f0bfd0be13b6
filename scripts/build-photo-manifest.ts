// Rewrites lib/data/photos.jsonl from PHOTO_SOURCES: digests of the installed files, licences checked against
// each package's debian/copyright. Run after scripts/ensure-photos.sh: node --import tsx scripts/build-photo-manifest.ts
import { writeFile } from 'node:fs/promises';
import { buildPhotoEntries, formatPhotoManifest, PHOTO_MANIFEST } from '../lib/data/photos.ts';

const entries = await buildPhotoEntries();
await writeFile(PHOTO_MANIFEST, formatPhotoManifest(entries));
console.log(`${PHOTO_MANIFEST}: ${entries.length} photographs from ${new Set(entries.map((e) => e.package)).size} packages, ${new Set(entries.map((e) => e.group)).size} scenes`);
