import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderScene } from '../../lib/data/procedural.ts';
import { resizeImage, type RgbImage } from '../../lib/data/image.ts';
import { sameBytes, ssimOf } from './helpers.ts';

function stats(img: RgbImage): { std: number; colours: number } {
  let s = 0, s2 = 0;
  const colours = new Set<number>();
  for (let p = 0; p < img.width * img.height; p++) {
    const r = img.data[p * 3], g = img.data[p * 3 + 1], b = img.data[p * 3 + 2];
    const l = (r + g + b) / 3;
    s += l; s2 += l * l;
    colours.add(((r >> 4) << 8) | ((g >> 4) << 4) | (b >> 4));
  }
  const n = img.width * img.height;
  return { std: Math.sqrt(s2 / n - (s / n) ** 2), colours: colours.size };
}

test('scenes are deterministic and differ between seeds', () => {
  assert.ok(sameBytes(renderScene(3, 32), renderScene(3, 32)));
  assert.ok(!sameBytes(renderScene(3, 32), renderScene(4, 32)));
  assert.ok(sameBytes(renderScene('abc', 20, 12), renderScene('abc', 20, 12)));
  const img = renderScene(1, 45, 27);
  assert.equal(img.width, 45);
  assert.equal(img.height, 27);
  assert.equal(img.data.length, 45 * 27 * 3);
  assert.throws(() => renderScene(1, 0), /bad size/);
});

test('scenes are varied: contrast, many colours, low similarity to each other', () => {
  const imgs = Array.from({ length: 24 }, (_, k) => renderScene(k, 48));
  for (const [k, img] of imgs.entries()) {
    const { std, colours } = stats(img);
    assert.ok(std > 8, `scene ${k} has contrast (luma std ${std.toFixed(1)})`);
    assert.ok(colours >= 6, `scene ${k} has several colours (${colours})`);
  }
  let sum = 0, n = 0;
  for (let k = 1; k < imgs.length; k++) { sum += ssimOf(imgs[k - 1], imgs[k]); n++; }
  assert.ok(sum / n < 0.5, `mean SSIM between neighbouring scenes ${(sum / n).toFixed(3)}`);
});

test('one seed is the same scene at every resolution', async () => {
  for (const k of [0, 5, 9]) {
    const big = renderScene(k, 128);
    const small = renderScene(k, 32);
    const down = await resizeImage(big, 32, 32);
    assert.ok(ssimOf(small, down) > 0.6, `scene ${k}: SSIM(render at 32, render at 128 downsized) ${ssimOf(small, down).toFixed(3)}`);
  }
});
