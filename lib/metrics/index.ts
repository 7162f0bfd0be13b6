// Per-process Prometheus registry with run_id/role default labels, typed lazy access to the catalogue, and a
// small HTTP server for /metrics and /health.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CATALOGUE, metricName, type Catalogue, type LabelName, type MetricName } from './catalogue.ts';

export * from './catalogue.ts';

export type ProcessRole = 'orchestrator' | 'rollout' | 'reward' | 'learner' | (string & {});

type MetricOf<K extends MetricName> = Catalogue[K]['type'] extends 'counter'
  ? Counter<LabelName<K>>
  : Catalogue[K]['type'] extends 'gauge'
    ? Gauge<LabelName<K>>
    : Histogram<LabelName<K>>;

export interface Metrics {
  readonly registry: Registry;
  readonly runId: string;
  readonly role: ProcessRole;
  /** The catalogue metric `name`, registered on first use (so a process exports only what it uses). */
  get<K extends MetricName>(name: K): MetricOf<K>;
}

/**
 * Unlabelled counters that an alert or the KEDA query reads with increase(), per role that exports them: created at 0
 * when the role's registry is made. A counter first registered at its first increment starts its series at that
 * value, and Prometheus's increase() sees no rise from a series' first sample, so the first event (for a quarantine,
 * usually the only one) never fired its alert (review26b, round 26: promtool with the series absent, then 1).
 * test/metrics/alerted-counters.test.ts checks this list against k8s/monitoring/prometheusrule.yaml.
 */
export const ALERTED_COUNTERS: Readonly<Record<string, readonly MetricName[]>> = {
  orchestrator: ['workers_quarantined_total'],
  learner: ['nonfinite_steps_skipped_total', 'logp_rows_excluded_total', 'checkpoint_publish_bytes_total'],
  rollout: ['checkpoint_fetch_bytes_total'],
};

/**
 * A fresh Registry whose every series carries run_id and role. processMetrics (default true) adds prom-client's
 * standard process_* / nodejs_* metrics.
 */
export function createMetrics(runId: string, role: ProcessRole, opts: { processMetrics?: boolean } = {}): Metrics {
  if (!runId) throw new Error('createMetrics: runId is empty');
  if (!role) throw new Error('createMetrics: role is empty');
  const registry = new Registry();
  registry.setDefaultLabels({ run_id: runId, role });
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const made = new Map<MetricName, unknown>();
  const metrics: Metrics = {
    registry,
    runId,
    role,
    get<K extends MetricName>(name: K): MetricOf<K> {
      let m = made.get(name);
      if (!m) {
        const spec = CATALOGUE[name];
        if (!spec) throw new Error(`metric ${String(name)} is not in lib/metrics/catalogue.ts`);
        const cfg = { name: metricName(name), help: spec.help, labelNames: [...spec.labels] as string[], registers: [registry] };
        m =
          spec.type === 'counter'
            ? new Counter(cfg)
            : spec.type === 'gauge'
              ? new Gauge(cfg)
              : new Histogram({ ...cfg, buckets: [...('buckets' in spec ? spec.buckets : [])] });
        made.set(name, m);
      }
      return m as MetricOf<K>;
    },
  };
  for (const name of ALERTED_COUNTERS[role] ?? []) metrics.get(name); // exported at 0 from the start (above)
  return metrics;
}

export interface Health {
  ok: boolean;
  detail?: unknown;
}

export interface MetricsServerOptions {
  /** 0 = any free port. */
  port: number;
  /** Default 127.0.0.1; use 0.0.0.0 in a pod so Prometheus can scrape it. */
  host?: string;
  registry: Registry;
  /** /health answers 200 with {ok:true,...} or 503; a throwing health() is a 503 with the error. */
  health?: () => Health | Promise<Health>;
  /** Extra GET routes by exact path (e.g. the orchestrator's web page at `/`); /metrics and /health take precedence. */
  routes?: Record<string, RouteHandler>;
}

export interface RouteResponse {
  status?: number;
  contentType: string;
  body: string | Uint8Array;
}

export type RouteHandler = (url: URL) => RouteResponse | Promise<RouteResponse>;

export interface MetricsServer {
  readonly port: number;
  /** http://host:port */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves GET /metrics (Prometheus text format), GET /health (JSON) and any extra `routes`. */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const host = opts.host ?? '127.0.0.1';
  const health = opts.health ?? (() => ({ ok: true }));
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
        (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${e.message}\n`),
      );
      return;
    }
    if (path === '/health' || path === '/healthz') {
      Promise.resolve()
        .then(health)
        .then(
          (h) => [h.ok ? 200 : 503, { ok: !!h.ok, detail: h.detail ?? null }] as const,
          (e: Error) => [503, { ok: false, detail: `health check failed: ${e?.message ?? e}` }] as const,
        )
        .then(([status, body]) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body)));
      return;
    }
    const route = opts.routes?.[path];
    if (route) {
      Promise.resolve()
        .then(() => route(new URL(req.url ?? '/', 'http://localhost')))
        .then(
          (r) => res.writeHead(r.status ?? 200, { 'content-type': r.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : r.body),
          (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${path}: ${e?.message ?? e}\n`),
        );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: try /metrics or /health${opts.routes ? ` or ${Object.keys(opts.routes).join(', ')}` : ''}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`metrics server cannot listen on ${host}:${opts.port}: ${e.message}`)));
    server.listen(opts.port, host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
