// Per-process Prometheus registry with run_id/role default labels, typed lazy access to the catalogue, and a
// small HTTP server for /metrics and /health.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CATALOGUE, metricName, type Catalogue, type LabelName, type MetricName } from './catalogue.ts';
import { readSecret } from '../transport/secrets.ts';

export * from './catalogue.ts';

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest();

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
 * Counters that an alert or the KEDA query reads with increase(), per role that exports them: created at 0 when the
 * role's registry is made, each with the label values an alert names in full (a labelled counter whose alert leaves a
 * label open, e.g. task_errors_total by code >= 10, is not listed: any code may come). A series first registered at
 * its first increment starts at that value, and Prometheus's increase() sees no rise from a series' first sample, so
 * the first event (for a quarantine, usually the only one) never fired its alert (review26b, round 26: promtool with
 * the series absent, then 1). test/metrics/alerted-counters.test.ts checks this list against
 * k8s/monitoring/prometheusrule.yaml.
 */
export const ALERTED_COUNTERS: Readonly<Record<string, ReadonlyArray<MetricName | { name: MetricName; labels: Readonly<Record<string, string>> }>>> = {
  orchestrator: [
    'workers_quarantined_total',
    'quarantine_reports_missing_total',
    // RecoveryGrpoNonFiniteReward: > 0 of either code
    { name: 'task_errors_total', labels: { worker_role: 'reward', code: 'bad_result' } },
    { name: 'task_errors_total', labels: { worker_role: 'reward', code: 'non_finite' } },
  ],
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
  // exported at 0 from the start (above)
  for (const c of ALERTED_COUNTERS[role] ?? []) {
    if (typeof c === 'string') metrics.get(c);
    else {
      const m = metrics.get(c.name);
      if (!(m instanceof Counter)) throw new Error(`ALERTED_COUNTERS.${role}: ${c.name} is not a counter`);
      m.inc(c.labels, 0);
    }
  }
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
  /**
   * A bearer token every request must present (`Authorization: Bearer <token>`), compared in constant time; any other
   * request gets 401 with `WWW-Authenticate: Bearer`. Either the token itself or its digest, `sha256:<64 hex>`
   * (METRICS_TOKEN_DIGEST_PREFIX; the server compares sha256 of the presented token with it, so a process need not
   * hold the token Prometheus presents: scripts/k8s-secrets.sh gives the role pods this form). Except /health (and /healthz), which kubelet probes reach
   * without one: it answers them its status code and `{"ok":...}` only, the detail to a request with the token.
   * Unset: no authentication (the caller keeps the server on loopback, or behind a NetworkPolicy; cli/flag-checks.ts).
   */
  token?: string;
  /**
   * Routes served without the token: only content that holds nothing of the run (the orchestrator's page, whose data
   * it fetches from /api/* with the token: orchestrator/monitor.ts).
   */
  publicPaths?: readonly string[];
}

/** The least length of a metrics token (cli/flag-checks.ts refuses a shorter one): `openssl rand -hex 32` gives 64. */
export const MIN_METRICS_TOKEN_LENGTH = 16;

/** The environment variable holding the metrics token when no --metrics-token-file is given (as RECOVERY_GRPO_TOKEN for gRPC). */
export const METRICS_TOKEN_ENV = 'RECOVERY_GRPO_METRICS_TOKEN';

/**
 * The prefix of a metrics token given as its digest: `sha256:` and the 64 hex digits of sha256(token) (`printf %s
 * TOKEN | sha256sum`). The server then holds only the digest; a request still presents the token.
 */
export const METRICS_TOKEN_DIGEST_PREFIX = 'sha256:';

/** Whether a metrics token value is given as a digest (the prefix in any case: `SHA256:` is no token either). */
const isDigestForm = (t: string) => t.slice(0, METRICS_TOKEN_DIGEST_PREFIX.length).toLowerCase() === METRICS_TOKEN_DIGEST_PREFIX;

/**
 * How a role's start-up line names the metrics port's token: " (with a token)", or " (with a token's digest)" when it
 * is given as `sha256:<64 hex>`: a scraper must present the token itself, and one given the same sha256: file gets
 * 401 (review26d F5, round 26). Empty without a token.
 */
export function describeMetricsToken(token: string | undefined): string {
  if (token === undefined) return '';
  return isDigestForm(token.trim()) ? " (with a token's digest: a scraper presents the token itself)" : ' (with a token)';
}

/** The hex sha256 of a metrics token, in the form a token file may hold instead of the token: `sha256:<64 hex>`. */
export function metricsTokenDigest(token: string): string {
  return `${METRICS_TOKEN_DIGEST_PREFIX}${createHash('sha256').update(token.trim()).digest('hex')}`;
}

/**
 * The 32 bytes a presented token's sha256 must equal: sha256(token) for a token, the digest itself for
 * `sha256:<64 hex>`. Throws for a `sha256:` value that is not 64 hex digits, naming `from` and never the value.
 */
function expectedDigest(token: string, from: string): Buffer {
  const t = token.trim();
  if (!isDigestForm(t)) return sha256(t);
  const hex = t.slice(METRICS_TOKEN_DIGEST_PREFIX.length);
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    const why = hex.length !== 64 ? `${hex.length} characters after ${METRICS_TOKEN_DIGEST_PREFIX}` : 'a character that is not a hex digit';
    throw new Error(`${from}: a digest of the metrics token is ${METRICS_TOKEN_DIGEST_PREFIX} followed by 64 hex digits (printf %s TOKEN | sha256sum), this has ${why}`);
  }
  return Buffer.from(hex, 'hex');
}

/**
 * The metrics port's token: `value`, else the file's content (trimmed), else $RECOVERY_GRPO_METRICS_TOKEN; undefined if
 * none. The token itself, or its digest `sha256:<64 hex>` (METRICS_TOKEN_DIGEST_PREFIX), returned as given. Throws
 * naming `what` (never the token) for an unreadable or empty file, a token under MIN_METRICS_TOKEN_LENGTH characters
 * or with white space, or a `sha256:` value that is not 64 hex digits.
 */
export function readMetricsToken(value: string | undefined, file: string | undefined, what = '--metrics-token-file', env: NodeJS.ProcessEnv = process.env): string | undefined {
  const token = readSecret(value, file, METRICS_TOKEN_ENV, what, env);
  if (token !== undefined && isDigestForm(token)) {
    const from = value !== undefined ? what : file !== undefined ? `${what} ${file}` : `the ${METRICS_TOKEN_ENV} environment variable`;
    expectedDigest(token, from);
    return token;
  }
  if (token !== undefined && token.length < MIN_METRICS_TOKEN_LENGTH) {
    const from = value !== undefined ? what : file !== undefined ? `${what} ${file}` : `the ${METRICS_TOKEN_ENV} environment variable`;
    throw new Error(`${from}: the metrics token has ${token.length} characters, fewer than ${MIN_METRICS_TOKEN_LENGTH} (generate one with: openssl rand -hex 32)`);
  }
  if (token !== undefined && /\s/.test(token)) {
    // a bearer token is one word (RFC 6750's b64token): no request could present it
    const from = value !== undefined ? what : file !== undefined ? `${what} ${file}` : `the ${METRICS_TOKEN_ENV} environment variable`;
    throw new Error(`${from}: the metrics token contains white space, which no Authorization header can carry (generate one with: openssl rand -hex 32)`);
  }
  return token;
}

/** Whether `req` carries `Authorization: Bearer <token>` (`digest`: sha256 of the token; equal-length digests, timingSafeEqual). */
function presentsToken(req: IncomingMessage, digest: Buffer): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.headers.authorization ?? '');
  return m !== null && timingSafeEqual(sha256(m[1]!), digest);
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
  // a digest is checked as one (a malformed short one is named so), a token for its length
  const digest = opts.token !== undefined ? expectedDigest(opts.token, 'metrics server: the token') : undefined;
  if (opts.token !== undefined && !isDigestForm(opts.token.trim()) && opts.token.trim().length < MIN_METRICS_TOKEN_LENGTH) {
    throw new Error(`metrics server: the token is shorter than ${MIN_METRICS_TOKEN_LENGTH} characters`);
  }
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const authorised = digest === undefined || presentsToken(req, digest);
    if (path === '/health' || path === '/healthz') {
      // open to probes (a kubelet sends no token); without the token only ok or not, nothing of the run
      Promise.resolve()
        .then(health)
        .then(
          (h) => [h.ok ? 200 : 503, { ok: !!h.ok, detail: h.detail ?? null }] as const,
          (e: Error) => [503, { ok: false, detail: `health check failed: ${e?.message ?? e}` }] as const,
        )
        .then(([status, body]) => res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(authorised ? body : { ok: body.ok })));
      return;
    }
    if (!authorised && !(opts.publicPaths?.includes(path) && opts.routes?.[path])) {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="recovery-grpo metrics"', 'content-type': 'text/plain' })
        .end(req.method === 'HEAD' ? undefined : `this endpoint needs the metrics token: Authorization: Bearer <token> (--metrics-token-file); /health answers without it\n`);
      return;
    }
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
        (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${e.message}\n`),
      );
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
