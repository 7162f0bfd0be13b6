// The run overlays under k8s/overlays, found on disk: the tests that hold for every run overlay cover a new one
// without being told (test/k8s/manifests.test.ts names each, with what it expects of its GPUs).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig, parseConfigText, type RunConfig } from '../../lib/config/index.ts';
import type { K8sObject } from './kustomize.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Repository-relative paths, sorted: k8s/overlays/cpu-dev, ... */
export const RUN_OVERLAYS: readonly string[] = readdirSync(`${ROOT}k8s/overlays`, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => `k8s/overlays/${d.name}`)
  .sort();

/** The run configuration a rendered overlay mounts (its one `recovery-grpo-config` ConfigMap's run.yaml), parsed. */
export function runConfigOf(objs: K8sObject[]): RunConfig {
  const cms = objs.filter((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('recovery-grpo-config'));
  assert.equal(cms.length, 1, 'one run configuration ConfigMap');
  const text = (cms[0]!.data as Record<string, string>)['run.yaml']!;
  return parseConfig(parseConfigText(text, 'run.yaml'), { source: `ConfigMap ${cms[0]!.metadata.name}` });
}
