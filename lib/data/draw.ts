// A tiny anti-aliased rasteriser over typed arrays: discs, rotated ellipses, capsules (thick lines), convex
// polygons and stroke-font text, each painted with a colour and opacity into an interleaved buffer of 1 or 3
// channels (Uint8Array, rounded, or Float32Array). Coverage comes from a signed distance: pixel centres
// within half a pixel of the edge get partial coverage. Used by the corruptions (graffiti, flares, dirt,
// watermark masks) and by the procedural scenes.

export interface Canvas {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array | Float32Array;
}

/** A colour (one value per channel, or a single value used for every channel) and an opacity. */
export interface Paint {
  color: readonly number[] | number;
  alpha?: number;
}

type Sdf = (px: number, py: number) => number;

/** Paints `sdf` (negative inside, in pixels) over the bounding box [x0,x1) x [y0,y1). */
export function fillSdf(cv: Canvas, x0: number, y0: number, x1: number, y1: number, sdf: Sdf, paint: Paint): void {
  const xa = Math.max(0, Math.floor(x0));
  const ya = Math.max(0, Math.floor(y0));
  const xb = Math.min(cv.width, Math.ceil(x1));
  const yb = Math.min(cv.height, Math.ceil(y1));
  if (xa >= xb || ya >= yb) return;
  const ch = cv.channels;
  const col = typeof paint.color === 'number' ? [paint.color, paint.color, paint.color] : paint.color;
  const alpha = paint.alpha ?? 1;
  const d = cv.data;
  const round = !(d instanceof Float32Array);
  for (let y = ya; y < yb; y++) {
    const py = y + 0.5;
    for (let x = xa; x < xb; x++) {
      const s = sdf(x + 0.5, py);
      if (s >= 0.5) continue;
      const a = (s <= -0.5 ? 1 : 0.5 - s) * alpha;
      const o = (y * cv.width + x) * ch;
      for (let c = 0; c < ch; c++) {
        const v = d[o + c] + (col[c] - d[o + c]) * a;
        d[o + c] = round ? v + 0.5 : v; // Uint8Array stores truncate: +0.5 rounds (values are >= 0)
      }
    }
  }
}

export function fillCircle(cv: Canvas, cx: number, cy: number, r: number, paint: Paint): void {
  if (r <= 0) return;
  // Row spans: pixel centres within r - 0.5 of the centre are fully covered, beyond r + 0.5 not at all;
  // only the rim needs a distance.
  const ch = cv.channels;
  const col = typeof paint.color === 'number' ? [paint.color, paint.color, paint.color] : paint.color;
  const alpha = paint.alpha ?? 1;
  const d = cv.data;
  const round = !(d instanceof Float32Array) ? 0.5 : 0;
  const ya = Math.max(0, Math.floor(cy - r - 0.5)), yb = Math.min(cv.height - 1, Math.ceil(cy + r + 0.5));
  const ro = r + 0.5, ri = r - 0.5;
  for (let y = ya; y <= yb; y++) {
    const dy = y + 0.5 - cy;
    if (Math.abs(dy) >= ro) continue;
    const outer = Math.sqrt(ro * ro - dy * dy);
    const inner = ri > Math.abs(dy) ? Math.sqrt(ri * ri - dy * dy) : -1;
    const xa = Math.max(0, Math.ceil(cx - outer - 0.5)), xb = Math.min(cv.width - 1, Math.floor(cx + outer - 0.5));
    for (let x = xa; x <= xb; x++) {
      const dx = x + 0.5 - cx;
      let a: number;
      if (Math.abs(dx) <= inner) a = alpha;
      else {
        const s = Math.sqrt(dx * dx + dy * dy) - r;
        if (s >= 0.5) continue;
        a = (s <= -0.5 ? 1 : 0.5 - s) * alpha;
      }
      const o = (y * cv.width + x) * ch;
      for (let c = 0; c < ch; c++) d[o + c] = d[o + c] + (col[c] - d[o + c]) * a + round;
    }
  }
}

/** Ellipse with half-axes (ax, ay), rotated by `angle` radians. */
export function fillEllipse(cv: Canvas, cx: number, cy: number, ax: number, ay: number, angle: number, paint: Paint): void {
  if (ax <= 0 || ay <= 0) return;
  const cs = Math.cos(angle);
  const sn = Math.sin(angle);
  const R = Math.max(ax, ay) + 1;
  const ia2 = 1 / (ax * ax);
  const ib2 = 1 / (ay * ay);
  fillSdf(cv, cx - R, cy - R, cx + R, cy + R, (x, y) => {
    const dx = x - cx;
    const dy = y - cy;
    const u = dx * cs + dy * sn;
    const v = -dx * sn + dy * cs;
    const f = u * u * ia2 + v * v * ib2 - 1;
    const gu = u * ia2, gv = v * ib2;
    const g = 2 * Math.sqrt(gu * gu + gv * gv);
    return g > 1e-9 ? f / g : -Math.min(ax, ay);
  }, paint);
}

/** A line of width `thickness` with round caps (a capsule). */
export function strokeLine(
  cv: Canvas, xa: number, ya: number, xb: number, yb: number, thickness: number, paint: Paint,
): void {
  const r = Math.max(0.5, thickness / 2);
  const dx = xb - xa;
  const dy = yb - ya;
  const l2 = dx * dx + dy * dy;
  fillSdf(cv, Math.min(xa, xb) - r - 1, Math.min(ya, yb) - r - 1, Math.max(xa, xb) + r + 1, Math.max(ya, yb) + r + 1, (x, y) => {
    let t = l2 > 0 ? ((x - xa) * dx + (y - ya) * dy) / l2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const ex = x - xa - t * dx, ey = y - ya - t * dy;
    return Math.sqrt(ex * ex + ey * ey) - r;
  }, paint);
}

/** A polyline of capsules through the points [x0, y0, x1, y1, ...]. */
export function strokePolyline(cv: Canvas, pts: readonly number[], thickness: number, paint: Paint): void {
  for (let i = 0; i + 3 < pts.length; i += 2) strokeLine(cv, pts[i], pts[i + 1], pts[i + 2], pts[i + 3], thickness, paint);
}

/** A convex polygon [x0, y0, x1, y1, ...] (either winding). */
export function fillConvexPolygon(cv: Canvas, pts: readonly number[], paint: Paint): void {
  const n = pts.length / 2;
  if (n < 3) return;
  let area = 0;
  for (let i = 0; i < n; i++) {
    const j = (i + 1) % n;
    area += pts[2 * i] * pts[2 * j + 1] - pts[2 * j] * pts[2 * i + 1];
  }
  const sgn = area >= 0 ? 1 : -1;
  // Outward edge normals (unit) and offsets.
  const nx = new Float64Array(n);
  const ny = new Float64Array(n);
  const off = new Float64Array(n);
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    const j = (i + 1) % n;
    const ex = pts[2 * j] - pts[2 * i];
    const ey = pts[2 * j + 1] - pts[2 * i + 1];
    const l = Math.hypot(ex, ey) || 1;
    nx[i] = (sgn * ey) / l;
    ny[i] = (-sgn * ex) / l;
    off[i] = nx[i] * pts[2 * i] + ny[i] * pts[2 * i + 1];
    x0 = Math.min(x0, pts[2 * i]); x1 = Math.max(x1, pts[2 * i]);
    y0 = Math.min(y0, pts[2 * i + 1]); y1 = Math.max(y1, pts[2 * i + 1]);
  }
  fillSdf(cv, x0 - 1, y0 - 1, x1 + 1, y1 + 1, (x, y) => {
    let m = -Infinity;
    for (let i = 0; i < n; i++) {
      const s = nx[i] * x + ny[i] * y - off[i];
      if (s > m) m = s;
    }
    return m;
  }, paint);
}

/** Axis-aligned filled rectangle [x0, x1) x [y0, y1) in whole pixels (no anti-aliasing). */
export function fillRect(cv: Canvas, x0: number, y0: number, x1: number, y1: number, paint: Paint): void {
  fillSdf(cv, x0, y0, x1, y1, () => -1, paint);
}

// ---- stroke font ----------------------------------------------------------------------------------------
// Glyphs on a 4-wide, 6-tall grid (y down, baseline at 6), as polylines separated by '|'. Upper case,
// digits and a little punctuation; lower case is drawn as upper case, unknown characters as a space.
const GLYPHS: Record<string, string> = {
  A: '0,6 2,0 4,6|0.7,4 3.3,4',
  B: '0,0 0,6 3,6 4,5 4,4 3,3 0,3|0,0 3,0 4,1 4,2 3,3',
  C: '4,1 3,0 1,0 0,1 0,5 1,6 3,6 4,5',
  D: '0,0 0,6 2.5,6 4,4.5 4,1.5 2.5,0 0,0',
  E: '4,0 0,0 0,6 4,6|0,3 3,3',
  F: '4,0 0,0 0,6|0,3 3,3',
  G: '4,1 3,0 1,0 0,1 0,5 1,6 3,6 4,5 4,3.5 2.5,3.5',
  H: '0,0 0,6|4,0 4,6|0,3 4,3',
  I: '1,0 3,0|2,0 2,6|1,6 3,6',
  J: '4,0 4,5 3,6 1,6 0,5',
  K: '0,0 0,6|4,0 0,4|1.5,2.5 4,6',
  L: '0,0 0,6 4,6',
  M: '0,6 0,0 2,3 4,0 4,6',
  N: '0,6 0,0 4,6 4,0',
  O: '1,0 3,0 4,1 4,5 3,6 1,6 0,5 0,1 1,0',
  P: '0,6 0,0 3,0 4,1 4,2 3,3 0,3',
  Q: '1,0 3,0 4,1 4,5 3,6 1,6 0,5 0,1 1,0|2.5,4.5 4,6',
  R: '0,6 0,0 3,0 4,1 4,2 3,3 0,3|2,3 4,6',
  S: '4,1 3,0 1,0 0,1 0,2 1,3 3,3 4,4 4,5 3,6 1,6 0,5',
  T: '0,0 4,0|2,0 2,6',
  U: '0,0 0,5 1,6 3,6 4,5 4,0',
  V: '0,0 2,6 4,0',
  W: '0,0 1,6 2,3 3,6 4,0',
  X: '0,0 4,6|4,0 0,6',
  Y: '0,0 2,3 4,0|2,3 2,6',
  Z: '0,0 4,0 0,6 4,6',
  '0': '1,0 3,0 4,1 4,5 3,6 1,6 0,5 0,1 1,0|4,1 0,5',
  '1': '1,1 2,0 2,6|1,6 3,6',
  '2': '0,1 1,0 3,0 4,1 4,2 0,6 4,6',
  '3': '0,1 1,0 3,0 4,1 4,2 3,3 4,4 4,5 3,6 1,6 0,5|1.5,3 3,3',
  '4': '3,6 3,0 0,4 4,4',
  '5': '4,0 0,0 0,3 3,3 4,4 4,5 3,6 1,6 0,5',
  '6': '4,1 3,0 1,0 0,1 0,5 1,6 3,6 4,5 4,4 3,3 0,3',
  '7': '0,0 4,0 1.5,6',
  '8': '1,0 3,0 4,1 4,2 3,3 1,3 0,2 0,1 1,0|1,3 0,4 0,5 1,6 3,6 4,5 4,4 3,3',
  '9': '0,5 1,6 3,6 4,5 4,1 3,0 1,0 0,1 0,2 1,3 4,3',
  _: '0,6 4,6',
  '-': '0.5,3 3.5,3',
  '.': '2,5.6 2,6',
  ',': '2.2,5.2 1.6,7',
  ':': '2,1.8 2,2.2|2,4.8 2,5.2',
  '/': '0,6 4,0',
  '+': '2,1.5 2,4.5|0.5,3 3.5,3',
  '=': '0.5,2 3.5,2|0.5,4 3.5,4',
  '(': '3,0 1.5,1.5 1.5,4.5 3,6',
  ')': '1,0 2.5,1.5 2.5,4.5 1,6',
  '%': '0,6 4,0|0.5,0.5 1,0.5|3,5.5 3.5,5.5',
  '#': '1,0.5 1,5.5|3,0.5 3,5.5|0,2 4,2|0,4 4,4',
};
const PARSED = new Map<string, number[][]>();
for (const [ch, src] of Object.entries(GLYPHS)) {
  PARSED.set(ch, src.split('|').map((poly) => poly.trim().split(/\s+/).flatMap((p) => p.split(',').map(Number))));
}

/** Width in pixels of `text` drawn with cap height `height`. */
export function textWidth(text: string, height: number): number {
  const u = height / 6;
  return text.length === 0 ? 0 : (text.length * 5 - 1) * u;
}

/**
 * Draws `text` with its top-left corner at (x, y) and capitals `height` pixels tall, strokes `thickness`
 * pixels wide. Characters outside the font are left blank.
 */
export function drawText(
  cv: Canvas, text: string, x: number, y: number, height: number, thickness: number, paint: Paint,
): void {
  const u = height / 6;
  let ox = x;
  for (const raw of text) {
    const g = PARSED.get(raw.toUpperCase());
    if (g) {
      for (const poly of g) {
        const pts = poly.map((v, i) => (i % 2 === 0 ? ox + v * u : y + v * u));
        if (pts.length === 2) strokeLine(cv, pts[0], pts[1], pts[0], pts[1], thickness, paint);
        else strokePolyline(cv, pts, thickness, paint);
      }
    }
    ox += 5 * u;
  }
}
