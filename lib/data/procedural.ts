// The built-in dataset: deterministic procedural scenes made on demand at any size. A scene is a gradient
// background, textured patches (stripes, checkers, waves, dots), anti-aliased shapes (discs, ellipses,
// rotated rectangles, triangles, polygons) and strokes (lines, curves). Geometry is drawn in units of the
// image size, so one seed gives the same scene at every resolution. Cost: well under a millisecond at 64 px.
import { newImage, type RgbImage } from './image.ts';
import { rng, type Rng } from './random.ts';
import { fillCircle, fillEllipse, fillConvexPolygon, strokePolyline, type Canvas, type Paint } from './draw.ts';

type Rgb = [number, number, number];

function hsv(h: number, s: number, v: number): Rgb {
  const f = (n: number): number => {
    const k = (n + h * 6) % 6;
    return Math.round(255 * (v - v * s * Math.max(0, Math.min(k, 4 - k, 1))));
  };
  return [f(5), f(3), f(1)];
}

function randomColor(r: Rng): Rgb {
  // Mostly saturated colours, some greys and pastels, over the full range of brightness.
  const kind = r.float();
  if (kind < 0.15) {
    const g = r.int(10, 245);
    return [g, g, g];
  }
  return hsv(r.float(), kind < 0.3 ? r.uniform(0.1, 0.4) : r.uniform(0.45, 1), r.uniform(0.25, 1));
}

/** A texture: colour at pixel (x, y), written into `out`. */
type Texture = (x: number, y: number, out: Rgb) => void;

function smoothEdge(d: number): number {
  // d: signed distance in pixels from an edge; 0..1 coverage over one pixel.
  return d <= -0.5 ? 0 : d >= 0.5 ? 1 : d + 0.5;
}

function randomTexture(r: Rng, size: number): Texture {
  const a = randomColor(r);
  const b = randomColor(r);
  const th = r.uniform(0, Math.PI);
  const cs = Math.cos(th), sn = Math.sin(th);
  const period = Math.max(3, r.uniform(0.04, 0.18) * size);
  const kind = r.int(0, 3);
  if (kind === 0) {
    // stripes with a random duty cycle
    const duty = r.uniform(0.3, 0.7);
    return (x, y, out) => {
      const u = (x * cs + y * sn) / period;
      const f = u - Math.floor(u);
      const d = f < duty ? Math.min(f, duty - f) : -Math.min(f - duty, 1 - f);
      const t = smoothEdge(d * period);
      out[0] = b[0] + (a[0] - b[0]) * t; out[1] = b[1] + (a[1] - b[1]) * t; out[2] = b[2] + (a[2] - b[2]) * t;
    };
  }
  if (kind === 1) {
    // rotated checkerboard
    return (x, y, out) => {
      const u = (x * cs + y * sn) / period, v = (-x * sn + y * cs) / period;
      const fu = u - Math.floor(u), fv = v - Math.floor(v);
      const du = Math.min(fu, 1 - fu) * period, dv = Math.min(fv, 1 - fv) * period;
      const odd = ((Math.floor(u) + Math.floor(v)) & 1) === 1;
      const t0 = smoothEdge(Math.min(du, dv));
      const t = odd ? 0.5 + 0.5 * t0 : 0.5 - 0.5 * t0;
      out[0] = b[0] + (a[0] - b[0]) * t; out[1] = b[1] + (a[1] - b[1]) * t; out[2] = b[2] + (a[2] - b[2]) * t;
    };
  }
  if (kind === 2) {
    // interfering waves
    const p2 = period * r.uniform(0.5, 2);
    const ph = r.uniform(0, 6.283);
    return (x, y, out) => {
      const t = 0.5 + 0.25 * Math.sin((x * cs + y * sn) / period * 6.283) + 0.25 * Math.sin((-x * sn + y * cs) / p2 * 6.283 + ph);
      out[0] = b[0] + (a[0] - b[0]) * t; out[1] = b[1] + (a[1] - b[1]) * t; out[2] = b[2] + (a[2] - b[2]) * t;
    };
  }
  // dot grid
  const rad = period * r.uniform(0.2, 0.4);
  return (x, y, out) => {
    const u = (x * cs + y * sn) / period, v = (-x * sn + y * cs) / period;
    const du = (u - Math.round(u)) * period, dv = (v - Math.round(v)) * period;
    const t = smoothEdge(rad - Math.sqrt(du * du + dv * dv));
    out[0] = b[0] + (a[0] - b[0]) * t; out[1] = b[1] + (a[1] - b[1]) * t; out[2] = b[2] + (a[2] - b[2]) * t;
  };
}

/** Paints a texture through a region given by its signed distance, over the region's bounding box. */
function paintTextured(
  cv: Canvas, x0: number, y0: number, x1: number, y1: number,
  sdf: (x: number, y: number) => number, tex: Texture, alpha: number,
): void {
  const xa = Math.max(0, Math.floor(x0)), ya = Math.max(0, Math.floor(y0));
  const xb = Math.min(cv.width, Math.ceil(x1)), yb = Math.min(cv.height, Math.ceil(y1));
  const c: Rgb = [0, 0, 0];
  const d = cv.data;
  for (let y = ya; y < yb; y++) {
    for (let x = xa; x < xb; x++) {
      const s = sdf(x + 0.5, y + 0.5);
      if (s >= 0.5) continue;
      const a = (s <= -0.5 ? 1 : 0.5 - s) * alpha;
      tex(x + 0.5, y + 0.5, c);
      const o = (y * cv.width + x) * 3;
      for (let k = 0; k < 3; k++) d[o + k] = d[o + k] + (c[k] - d[o + k]) * a + 0.5;
    }
  }
}

/**
 * Renders procedural scene number `seed` at width x height. Deterministic: the same seed and size give the
 * same bytes; different sizes give the same scene at a different resolution.
 */
export function renderScene(seed: number | string, width: number, height = width): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`renderScene: bad size ${width}x${height}`);
  }
  const r = rng(typeof seed === 'string' ? seed : `scene:${seed}`);
  const img = newImage(width, height);
  const cv: Canvas = { width, height, channels: 3, data: img.data };
  const S = Math.min(width, height);
  const d = img.data;

  // Background: linear or radial gradient between two colours.
  const c0 = randomColor(r), c1 = randomColor(r);
  if (r.float() < 0.6) {
    const th = r.uniform(0, 2 * Math.PI);
    const gx = Math.cos(th) / Math.hypot(width, height), gy = Math.sin(th) / Math.hypot(width, height);
    const off = Math.min(0, gx * width) + Math.min(0, gy * height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const t = Math.min(1, Math.max(0, x * gx + y * gy - off));
        const o = (y * width + x) * 3;
        d[o] = c0[0] + (c1[0] - c0[0]) * t + 0.5; d[o + 1] = c0[1] + (c1[1] - c0[1]) * t + 0.5; d[o + 2] = c0[2] + (c1[2] - c0[2]) * t + 0.5;
      }
    }
  } else {
    const cx = r.uniform(0, width), cy = r.uniform(0, height), rad = r.uniform(0.5, 1.2) * S;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const t = Math.min(1, Math.sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)) / rad);
        const o = (y * width + x) * 3;
        d[o] = c0[0] + (c1[0] - c0[0]) * t + 0.5; d[o + 1] = c0[1] + (c1[1] - c0[1]) * t + 0.5; d[o + 2] = c0[2] + (c1[2] - c0[2]) * t + 0.5;
      }
    }
  }

  // Textured patches: sometimes the whole frame at partial opacity, otherwise a rectangle or a disc.
  const patches = r.int(0, 2);
  for (let k = 0; k < patches; k++) {
    const tex = randomTexture(r, S);
    const kind = r.float();
    if (kind < 0.25) {
      paintTextured(cv, 0, 0, width, height, () => -1, tex, r.uniform(0.25, 0.6));
    } else if (kind < 0.65) {
      const x0 = r.uniform(-0.1, 0.7) * width, y0 = r.uniform(-0.1, 0.7) * height;
      const x1 = x0 + r.uniform(0.25, 0.6) * width, y1 = y0 + r.uniform(0.25, 0.6) * height;
      paintTextured(cv, x0 - 1, y0 - 1, x1 + 1, y1 + 1,
        (x, y) => Math.max(x0 - x, x - x1, y0 - y, y - y1), tex, 1);
    } else {
      const cx = r.uniform(0.1, 0.9) * width, cy = r.uniform(0.1, 0.9) * height, rad = r.uniform(0.15, 0.35) * S;
      paintTextured(cv, cx - rad - 1, cy - rad - 1, cx + rad + 1, cy + rad + 1,
        (x, y) => Math.sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)) - rad, tex, 1);
    }
  }

  // Shapes.
  const shapes = r.int(2, 6);
  for (let k = 0; k < shapes; k++) {
    const paint: Paint = { color: randomColor(r), alpha: r.float() < 0.75 ? 1 : r.uniform(0.5, 0.85) };
    const cx = r.uniform(0.05, 0.95) * width, cy = r.uniform(0.05, 0.95) * height;
    const sz = r.uniform(0.06, 0.3) * S;
    const rot = r.uniform(0, Math.PI);
    switch (r.int(0, 4)) {
      case 0:
        fillCircle(cv, cx, cy, sz, paint);
        break;
      case 1:
        fillEllipse(cv, cx, cy, sz, sz * r.uniform(0.3, 0.9), rot, paint);
        break;
      case 2: {
        const hw = sz, hh = sz * r.uniform(0.3, 1);
        const cs = Math.cos(rot), sn = Math.sin(rot);
        const pts: number[] = [];
        for (const [u, v] of [[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]]) pts.push(cx + u * cs - v * sn, cy + u * sn + v * cs);
        fillConvexPolygon(cv, pts, paint);
        break;
      }
      default: {
        const n = r.int(3, 6);
        const pts: number[] = [];
        for (let j = 0; j < n; j++) {
          const a = rot + (2 * Math.PI * j) / n;
          pts.push(cx + sz * Math.cos(a), cy + sz * Math.sin(a));
        }
        fillConvexPolygon(cv, pts, paint);
      }
    }
  }

  // Strokes: straight lines and quadratic curves.
  const strokes = r.int(1, 4);
  for (let k = 0; k < strokes; k++) {
    const paint: Paint = { color: randomColor(r) };
    const t = Math.max(1, r.uniform(0.008, 0.035) * S);
    const ax = r.uniform(0, width), ay = r.uniform(0, height);
    const bx = r.uniform(0, width), by = r.uniform(0, height);
    if (r.float() < 0.4) {
      strokePolyline(cv, [ax, ay, bx, by], t, paint);
    } else {
      const qx = r.uniform(-0.2, 1.2) * width, qy = r.uniform(-0.2, 1.2) * height;
      const pts: number[] = [];
      const n = 12;
      for (let j = 0; j <= n; j++) {
        const u = j / n;
        pts.push((1 - u) ** 2 * ax + 2 * u * (1 - u) * qx + u * u * bx, (1 - u) ** 2 * ay + 2 * u * (1 - u) * qy + u * u * by);
      }
      strokePolyline(cv, pts, t, paint);
    }
  }
  return img;
}
