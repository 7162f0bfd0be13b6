// Kubernetes resource quantities ("500m", "2", "1Gi") in base units (cores, bytes), for the checks that read the
// manifests (test/k8s, scripts/deploy/check.ts).

const SUFFIX: Readonly<Record<string, number>> = { m: 1e-3, k: 1e3, Ki: 1024, M: 1e6, Mi: 1024 ** 2, G: 1e9, Gi: 1024 ** 3, T: 1e12, Ti: 1024 ** 4 };

/** `q` in base units; an Error naming `q` for anything else. */
export function quantity(q: string | number): number {
  const m = /^([0-9.]+)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/.exec(String(q));
  if (!m) throw new Error(`quantity ${q}: not a Kubernetes quantity this project uses (digits, then one of ${Object.keys(SUFFIX).join(' ')} or nothing)`);
  return Number(m[1]) * (m[2] ? SUFFIX[m[2]]! : 1);
}
