// When the certificates of a run's connections expire, for the renewal alerts
// (recovery_grpo_tls_certificate_expiry_timestamp_seconds{certificate=...}, k8s/monitoring/prometheusrule.yaml):
// - grpc_client, nats_client: the client certificates a process presents. Both are read from their files at each
//   handshake (a reconnect presents a renewed file: lib/transport/grpc-client.ts, nats.js with paths), so the file's
//   certificate is the one the next handshake presents.
// - nats_server: the certificate NATS serves, seen by a handshake of its own (natsServedCertificate below): nats.js
//   does not hand its connection's peer certificate to its user, and nats-server's monitor port is not scraped.
// - grpc_ca, nats_ca (round 35): the CA bundles a process trusts to verify its peers, the earliest notAfter of each
//   bundle's certificates (one that expires fails every handshake it verifies at once; a bundle may hold several,
//   and which one signs the peer is not known here): a worker's --tls-ca (the orchestrator's certificate; read at
//   each dial, lib/transport/grpc-client.ts) and every role's --nats-tls-ca (NATS's; nats.js reads it by path).
// The orchestrator's served certificate and its client CA bundle (grpc_server, grpc_ca) are reported by its
// ReloadingTls (lib/transport/tls-reload.ts), which knows the set in use when a renewal was refused.
//
// Each is read at start and every refreshMs (60 s, as the server's files). An expired certificate is reported as it
// is (a notAfter in the past is what the critical alert fires on); one that cannot be read keeps the last value and
// is reported once per distinct error, naming what was read.
import { X509Certificate } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import { namePathOrPem, readNamedFile, readPathOrPem } from '../config/named-file.ts';
import { parseNatsUrl } from './nats-server.ts';
import { loadCaBundle } from './tls-reload.ts';

/** Which certificate or CA bundle: the label value of the expiry gauge. */
export type WatchedCertificate = 'grpc_server' | 'grpc_client' | 'nats_client' | 'nats_server' | 'grpc_ca' | 'nats_ca';

export interface CertificateSource {
  certificate: WatchedCertificate;
  /** What is read, for errors (e.g. "--nats-tls-cert /path"). */
  what: string;
  /** The certificate's notAfter, ms since the epoch; throws (naming what it read) when it cannot tell. */
  read(): number | Promise<number>;
}

/**
 * The notAfter (ms since the epoch) of the first certificate in a PEM file, or in PEM text (the library's options
 * take either, as lib/transport/tls-reload.ts reads them); throws naming the file.
 */
export function leafNotAfterMs(file: string, field: string): number {
  const name = namePathOrPem(file, field);
  const text = readPathOrPem(file, field).toString('latin1');
  const block = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/)?.[0];
  if (!block) throw new Error(`${name}: holds no complete PEM certificate`);
  try {
    return Date.parse(new X509Certificate(block).validTo);
  } catch (e) {
    throw new Error(`${name}: the certificate does not parse (${(e as Error).message})`);
  }
}

/** A certificate or bundle given as a file or PEM text, named as its flag; `notAfter` reads it (each time). */
const fileSource = <V extends string | Buffer>(certificate: WatchedCertificate, value: V, field: string, notAfter: (value: V, field: string) => number): CertificateSource => ({
  certificate,
  what: namePathOrPem(value, field),
  read: () => notAfter(value, field),
});
/** A CA bundle's earliest notAfter, read as the clients read bundles (every certificate parses, none cut short). */
const bundleNotAfterMs = (value: string | Buffer, field: string) => loadCaBundle(value, field).notAfterMs;

/**
 * The CA bundles a client was given (files, or PEM text): its gRPC CA (workers: the one that signs the orchestrator's
 * certificate) and its NATS one. Read as the clients read them (loadCaBundle: every certificate parses, none cut
 * short); the earliest notAfter of the bundle's certificates.
 */
export function caBundleFiles(o: { grpcCa?: string | Buffer | undefined; natsCa?: string | undefined }): CertificateSource[] {
  return [
    ...(o.grpcCa !== undefined ? [fileSource('grpc_ca', o.grpcCa, '--tls-ca', bundleNotAfterMs)] : []),
    ...(o.natsCa !== undefined ? [fileSource('nats_ca', o.natsCa, '--nats-tls-ca', bundleNotAfterMs)] : []),
  ];
}

/** The client certificates a process was given (files, or PEM text): its gRPC client certificate (workers) and its NATS one. */
export function clientCertificateFiles(o: { grpcCert?: string | undefined; natsCert?: string | undefined }): CertificateSource[] {
  return [
    ...(o.grpcCert !== undefined ? [fileSource('grpc_client', o.grpcCert, '--tls-cert', leafNotAfterMs)] : []),
    ...(o.natsCert !== undefined ? [fileSource('nats_client', o.natsCert, '--nats-tls-cert', leafNotAfterMs)] : []),
  ];
}

/**
 * The certificate a NATS server serves, as a client's handshake sees it: nats-server says INFO in the clear, then
 * the client starts TLS on the same socket (no CONNECT follows; the socket is closed once the certificate is read).
 * The chain is not verified (an expired certificate must still be read; this reads a date, it trusts nothing); the
 * client certificate is presented where one is given (a server that verifies clients asks for it). Throws, naming the
 * server, when it does not answer within timeoutMs, says no INFO, or does not offer TLS.
 */
export async function natsServedCertificate(url: string, tls: { certFile?: string; keyFile?: string }, timeoutMs = 5000): Promise<{ notAfterMs: number; serial: string }> {
  const { host, port } = parseNatsUrl(url);
  const where = `NATS at ${url}`;
  const socket = tcpConnect({ host, port });
  let tlsSocket: TLSSocket | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${where}: no certificate within ${timeoutMs} ms`)), timeoutMs);
      socket.once('error', (e) => reject(new Error(`${where}: ${e.message}`)));
      let head = '';
      const onData = (b: Buffer) => {
        head += b.toString('latin1');
        const end = head.indexOf('\r\n');
        if (end < 0) {
          if (head.length > 64 * 1024) reject(new Error(`${where}: no INFO line in its first 64 KiB`));
          return;
        }
        socket.off('data', onData);
        const line = head.slice(0, end);
        if (!line.startsWith('INFO ')) return reject(new Error(`${where}: said ${JSON.stringify(line.slice(0, 40))}, not INFO`));
        let info: { tls_required?: boolean; tls_available?: boolean };
        try {
          info = JSON.parse(line.slice(5)) as typeof info;
        } catch {
          return reject(new Error(`${where}: its INFO is not JSON`));
        }
        if (!info.tls_required && !info.tls_available) return reject(new Error(`${where}: offers no TLS`));
        tlsSocket = tlsConnect({
          socket,
          ...(isIP(host) ? {} : { servername: host }),
          rejectUnauthorized: false,
          ...(tls.certFile && tls.keyFile ? { cert: readNamedFile(tls.certFile, '--nats-tls-cert'), key: readNamedFile(tls.keyFile, '--nats-tls-key') } : {}),
        });
        tlsSocket.once('error', (e) => reject(new Error(`${where}: TLS: ${e.message}`)));
        tlsSocket.once('secureConnect', () => {
          const peer = tlsSocket!.getPeerCertificate();
          if (!peer || !peer.valid_to) return reject(new Error(`${where}: presented no certificate`));
          const got = { notAfterMs: Date.parse(peer.valid_to), serial: peer.serialNumber };
          // a clean close (close_notify, then the server's end), not a reset: nats-server logs a handshake cut short
          // as an error ("TLS handshake error: EOF"), which every minute would fill its log. The certificate is read:
          // whatever the server says after (a refusal of a missing client certificate) does not change it
          tlsSocket!.removeAllListeners('error');
          tlsSocket!.on('error', () => resolve(got));
          tlsSocket!.once('close', () => resolve(got));
          tlsSocket!.end();
        });
      };
      socket.on('data', onData);
    });
  } finally {
    clearTimeout(timer);
    tlsSocket?.destroy();
    socket.destroy();
  }
}

/** The certificate NATS serves, read every refresh (the orchestrator's; one probe per run is enough). */
export function natsServerCertificate(url: string, tls: { certFile?: string; keyFile?: string }): CertificateSource {
  return { certificate: 'nats_server', what: `NATS at ${url}`, read: async () => (await natsServedCertificate(url, tls)).notAfterMs };
}

export interface CertificateExpiryOptions {
  /** How often the sources are read again; 0: only on refresh(). Default 60 s. */
  refreshMs?: number;
  /** A certificate's notAfter was read (at start, and on every refresh). */
  onExpiry: (certificate: WatchedCertificate, notAfterMs: number) => void;
  /** A source could not be read (its last value stays); once per distinct error of each source. */
  onError: (message: string) => void;
}

/** Reads the sources now and every refreshMs (a refresh never overlaps the previous one); close() stops the timer. */
export class CertificateExpiryWatch {
  private readonly errors = new Map<CertificateSource, string>();
  private readonly latest = new Map<WatchedCertificate, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** The first reading of every source (at start). */
  readonly started: Promise<void>;

  constructor(
    private readonly sources: readonly CertificateSource[],
    private readonly opts: CertificateExpiryOptions,
  ) {
    const refreshMs = opts.refreshMs ?? 60_000;
    if (!Number.isInteger(refreshMs) || refreshMs < 0) throw new Error(`certificate expiry refresh interval must be an integer >= 0 ms, got ${refreshMs}`);
    this.started = this.refresh();
    if (refreshMs > 0 && sources.length > 0) {
      this.timer = setInterval(() => void this.refresh(), refreshMs);
      this.timer.unref();
    }
  }

  /** The last notAfter read per certificate (ms since the epoch). */
  expiries(): ReadonlyMap<WatchedCertificate, number> {
    return this.latest;
  }

  /** Reads every source once; a refresh asked for while one runs is that one. */
  refresh(): Promise<void> {
    this.running ??= (async () => {
      for (const s of this.sources) {
        try {
          const notAfterMs = await s.read();
          this.errors.delete(s);
          this.latest.set(s.certificate, notAfterMs);
          this.opts.onExpiry(s.certificate, notAfterMs);
        } catch (e) {
          const message = (e as Error).message;
          if (this.errors.get(s) !== message) this.opts.onError(message);
          this.errors.set(s, message);
        }
      }
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
