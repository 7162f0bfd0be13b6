// Labelled image grids (rows of samples, columns of named images), for people to look at.
import { newImage, type RgbImage } from '../data/image.ts';
import { drawText, textWidth } from '../data/draw.ts';

export interface GridRow {
  label: string;
  /** One image per column, all of one size within a row (rows may differ: whole photographs). */
  images: RgbImage[];
}

/** The smallest cell side a grid shows (images are scaled up by a whole factor to reach it). */
export const MIN_GRID_CELL = 128;

/** The whole scale factor that brings an image's shorter side to at least `minCell` pixels. */
export function gridScale(images: readonly RgbImage[], minCell = MIN_GRID_CELL): number {
  const side = Math.min(...images.map((i) => Math.min(i.width, i.height)));
  return Math.max(1, Math.ceil(minCell / side));
}

/**
 * Renders rows of images under column headers, each image scaled up by `scale` (nearest neighbour; default:
 * the smallest whole factor that makes every cell at least MIN_GRID_CELL pixels on its shorter side).
 */
export function renderGrid(columns: string[], rows: GridRow[], scale?: number): RgbImage {
  if (rows.length === 0) throw new Error('renderGrid: no rows');
  for (const r of rows) {
    if (r.images.length !== columns.length) throw new Error(`renderGrid: row '${r.label}' has ${r.images.length} images for ${columns.length} columns`);
    const { width, height } = r.images[0];
    if (r.images.some((i) => i.width !== width || i.height !== height)) throw new Error(`renderGrid: row '${r.label}' mixes image sizes`);
  }
  const k = scale ?? gridScale(rows.map((r) => r.images[0]));
  const cw = Math.max(...rows.map((r) => r.images[0].width)) * k;
  const rowH = rows.map((r) => r.images[0].height * k);
  const gap = 4;
  const textH = 10;
  const labelW = Math.ceil(Math.max(0, ...rows.map((r) => textWidth(r.label.toUpperCase(), textH)))) + 2 * gap;
  const headH = textH + 2 * gap;
  const W = labelW + columns.length * (cw + gap) + gap;
  const H = headH + rowH.reduce((a, b) => a + b + gap, 0) + gap;
  const grid = newImage(W, H);
  grid.data.fill(30);
  const canvas = { width: W, height: H, channels: 3 as const, data: grid.data };
  const ink = { color: [225, 225, 225] };
  columns.forEach((c, i) => {
    const label = c.toUpperCase();
    drawText(canvas, label, labelW + i * (cw + gap) + (cw - textWidth(label, textH)) / 2, gap, textH, 1.3, ink);
  });
  let y0 = headH;
  rows.forEach((row, r) => {
    const ch = rowH[r];
    drawText(canvas, row.label.toUpperCase(), gap, y0 + (ch - textH) / 2, textH, 1.3, ink);
    row.images.forEach((img, c) => {
      const x0 = labelW + c * (cw + gap);
      const iw = img.width * k;
      for (let y = 0; y < ch; y++) {
        for (let x = 0; x < iw; x++) {
          const s = (Math.floor(y / k) * img.width + Math.floor(x / k)) * 3;
          const d = ((y0 + y) * W + x0 + x) * 3;
          grid.data[d] = img.data[s];
          grid.data[d + 1] = img.data[s + 1];
          grid.data[d + 2] = img.data[s + 2];
        }
      }
    });
    y0 += ch + gap;
  });
  return grid;
}
