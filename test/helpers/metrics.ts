// Reading a role's /metrics page in tests.

/** The sum of every sample of recovery_grpo_<name> on the /metrics page at metricsUrl whose labels include all of
 * `labels` (0 when there is none): a counter across its label sets, or one series when the labels pick it. */
export async function scrapeMetric(metricsUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${metricsUrl}/metrics`);
  if (!res.ok) throw new Error(`${metricsUrl}/metrics answered ${res.status}`);
  return sumMetric(await res.text(), name, labels);
}

/** As scrapeMetric, from a page's text (e.g. an in-process registry's `metrics.registry.metrics()`). */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== `recovery_grpo_${name}`) continue;
    if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
