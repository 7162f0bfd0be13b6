// The run overlays under k8s/overlays, found on disk: the tests that hold for every run overlay cover a new one
// without being told (test/k8s/manifests.test.ts names each, with what it expects of its GPUs).
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Repository-relative paths, sorted: k8s/overlays/cpu-dev, ... */
export const RUN_OVERLAYS: readonly string[] = readdirSync(`${ROOT}k8s/overlays`, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => `k8s/overlays/${d.name}`)
  .sort();
