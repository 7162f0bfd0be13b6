// Labelled image grids (rows of samples, columns of named images), for people to look at.
import { newImage, type RgbImage } from '../data/image.ts';
import { drawText, textWidth } from '../data/draw.ts';

export interface GridRow {
  label: string;
  images: RgbImage[];
}

/** Renders rows of equally sized images under column headers, each image scaled up by `scale`. */
export function renderGrid(columns: string[], rows: GridRow[], scale = 4): RgbImage {
  if (rows.length === 0) throw new Error('renderGrid: no rows');
  const { width: iw, height: ih } = rows[0].images[0];
  const cw = iw * scale;
  const ch = ih * scale;
  const gap = 4;
  const textH = 10;
  const labelW = Math.ceil(Math.max(0, ...rows.map((r) => textWidth(r.label.toUpperCase(), textH)))) + 2 * gap;
  const headH = textH + 2 * gap;
  const W = labelW + columns.length * (cw + gap) + gap;
  const H = headH + rows.length * (ch + gap) + gap;
  const grid = newImage(W, H);
  grid.data.fill(30);
  const canvas = { width: W, height: H, channels: 3 as const, data: grid.data };
  const ink = { color: [225, 225, 225] };
  columns.forEach((c, i) => {
    const label = c.toUpperCase();
    drawText(canvas, label, labelW + i * (cw + gap) + (cw - textWidth(label, textH)) / 2, gap, textH, 1.3, ink);
  });
  rows.forEach((row, r) => {
    const y0 = headH + r * (ch + gap);
    drawText(canvas, row.label.toUpperCase(), gap, y0 + (ch - textH) / 2, textH, 1.3, ink);
    row.images.forEach((img, c) => {
      const x0 = labelW + c * (cw + gap);
      for (let y = 0; y < ch; y++) {
        for (let x = 0; x < cw; x++) {
          const s = (Math.floor(y / scale) * img.width + Math.floor(x / scale)) * 3;
          const d = ((y0 + y) * W + x0 + x) * 3;
          grid.data[d] = img.data[s];
          grid.data[d + 1] = img.data[s + 1];
          grid.data[d + 2] = img.data[s + 2];
        }
      }
    });
  });
  return grid;
}
