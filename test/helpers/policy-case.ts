// A policy forward's inputs at `size` px, batch `n`: the default policy's parameters with small random values, an
// image near mid-grey and its noise (fixed seeds). For tests that need a real graph call of a chosen size.
import { loadConfig } from '../../lib/config/index.ts';
import { policySpecOf } from '../../lib/models/bundle.ts';
import { initPolicyParams } from '../../lib/models/policy.ts';
import { paramFeeds } from '../../lib/models/feeds.ts';
import { standardNormal } from '../../lib/data/random.ts';
import type { Feeds } from '../../lib/graph/runtime.ts';

export function policyCase(size: number, n: number) {
  const config = loadConfig(undefined, [`data.size=${size}`, 'grpo.advantageMode=scalar']);
  const params = initPolicyParams(policySpecOf(config), 0);
  for (const p of params.values()) if (p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.05));
  const dims = [n, 3, size, size];
  const pix = n * 3 * size * size;
  const feeds: Feeds = {
    ...paramFeeds(params),
    image: { data: Float32Array.from(standardNormal(pix, 1), (v) => 0.5 + 0.1 * v), dims },
    noise: { data: standardNormal(pix, 2), dims },
  };
  return { config, feeds };
}
