// Shared by the data tests: small image fixtures written to a temporary folder, and SSIM via ssim.js.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { ssim } from 'ssim.js';
import type { RgbImage } from '../../lib/data/image.ts';
import { renderScene } from '../../lib/data/procedural.ts';

export function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'recovery-grpo-data-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `img` under dir/rel in a format chosen by extension; options pick grey, alpha or 16-bit PNG. */
export async function writeFixture(
  dir: string, rel: string, img: RgbImage, opts: { grey?: boolean; alpha?: boolean; sixteen?: boolean } = {},
): Promise<string> {
  const path = join(dir, rel);
  mkdirSync(dirname(path), { recursive: true });
  let s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  if (opts.grey) s = s.greyscale();
  if (opts.alpha) s = s.ensureAlpha(0.5);
  if (opts.sixteen) s = s.toColourspace('rgb16');
  const lower = rel.toLowerCase();
  if (lower.endsWith('.jpg') || lower.endsWith('.jpeg')) s = s.jpeg({ quality: 90 });
  else if (lower.endsWith('.webp')) s = s.webp({ lossless: true });
  else s = s.png();
  writeFileSync(path, await s.toBuffer());
  return path;
}

/** A scene of the given size (not necessarily square). */
export function scene(seed: number, width: number, height = width): RgbImage {
  return renderScene(seed, width, height);
}

function rgba(img: RgbImage): { data: Uint8ClampedArray; width: number; height: number } {
  const d = new Uint8ClampedArray(img.width * img.height * 4);
  for (let p = 0; p < img.width * img.height; p++) {
    d[p * 4] = img.data[p * 3];
    d[p * 4 + 1] = img.data[p * 3 + 1];
    d[p * 4 + 2] = img.data[p * 3 + 2];
    d[p * 4 + 3] = 255;
  }
  return { data: d, width: img.width, height: img.height };
}

/** Mean SSIM (ssim.js, luma) between two images. */
export function ssimOf(a: RgbImage, b: RgbImage): number {
  return ssim(rgba(a), rgba(b)).mssim;
}

export function sameBytes(a: RgbImage, b: RgbImage): boolean {
  return a.width === b.width && a.height === b.height && Buffer.compare(Buffer.from(a.data), Buffer.from(b.data)) === 0;
}
