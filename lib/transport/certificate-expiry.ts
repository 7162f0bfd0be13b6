// When the certificates a process presents as a client expire: a worker's gRPC client certificate (per-pod identity)
// and every role's NATS client certificate. Both are read from their files at each handshake (a reconnect presents a
// renewed file: lib/transport/grpc-client.ts, nats.js with paths), so the file's certificate is the one the next
// handshake presents, and its notAfter is what the renewal alerts watch
// (recovery_grpo_tls_certificate_expiry_timestamp_seconds{certificate="grpc_client"|"nats_client"}). The
// orchestrator's served certificate is reported by its ReloadingTls (lib/transport/tls-reload.ts), which knows the
// set in use when a renewal was refused; a client has no such set between handshakes.
//
// The files are read at start and every refreshMs (60 s, as the server's). An expired certificate is reported as it
// is (its notAfter in the past is what the critical alert fires on); a file that cannot be read or holds no
// certificate keeps the last value and is reported once per distinct error, naming the file.
import { X509Certificate } from 'node:crypto';
import { readNamedFile } from '../config/named-file.ts';

/** Which certificate a process presents: the label value of the expiry gauge. */
export type PresentedCertificate = 'grpc_server' | 'grpc_client' | 'nats_client';

export interface CertificateFile {
  certificate: PresentedCertificate;
  /** The PEM file (a certificate, or a chain with the leaf first). */
  file: string;
  /** What the file is called in errors, e.g. "--nats-tls-cert". */
  field: string;
}

/** The notAfter (ms since the epoch) of the first certificate in a PEM file; throws naming the file. */
export function leafNotAfterMs(file: string, field: string): number {
  const text = readNamedFile(file, field).toString('latin1');
  const block = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/)?.[0];
  if (!block) throw new Error(`${field} ${file}: holds no complete PEM certificate`);
  try {
    return Date.parse(new X509Certificate(block).validTo);
  } catch (e) {
    throw new Error(`${field} ${file}: the certificate does not parse (${(e as Error).message})`);
  }
}

export interface CertificateExpiryOptions {
  /** How often the files are read again; 0: only on refresh(). Default 60 s. */
  refreshMs?: number;
  /** A file's certificate was read (at start, and on every refresh). */
  onExpiry: (certificate: PresentedCertificate, notAfterMs: number) => void;
  /** A file could not be read (the last value stays); once per distinct error of each file. */
  onError: (message: string) => void;
}

/** Reads the files now and every refreshMs; close() stops the timer. */
export class CertificateExpiryWatch {
  private readonly errors = new Map<string, string>();
  private readonly latest = new Map<PresentedCertificate, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly files: readonly CertificateFile[],
    private readonly opts: CertificateExpiryOptions,
  ) {
    const refreshMs = opts.refreshMs ?? 60_000;
    if (!Number.isInteger(refreshMs) || refreshMs < 0) throw new Error(`certificate expiry refresh interval must be an integer >= 0 ms, got ${refreshMs}`);
    this.refresh();
    if (refreshMs > 0 && files.length > 0) {
      this.timer = setInterval(() => this.refresh(), refreshMs);
      this.timer.unref();
    }
  }

  /** The last notAfter read per certificate (ms since the epoch). */
  expiries(): ReadonlyMap<PresentedCertificate, number> {
    return this.latest;
  }

  refresh(): void {
    for (const f of this.files) {
      try {
        const notAfterMs = leafNotAfterMs(f.file, f.field);
        this.errors.delete(f.file);
        this.latest.set(f.certificate, notAfterMs);
        this.opts.onExpiry(f.certificate, notAfterMs);
      } catch (e) {
        const message = (e as Error).message;
        if (this.errors.get(f.file) !== message) this.opts.onError(message);
        this.errors.set(f.file, message);
      }
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The client certificate files a process was given: its gRPC client certificate (workers) and its NATS one. */
export function clientCertificateFiles(o: { grpcCert?: string | undefined; natsCert?: string | undefined }): CertificateFile[] {
  return [
    ...(o.grpcCert !== undefined ? [{ certificate: 'grpc_client' as const, file: o.grpcCert, field: '--tls-cert' }] : []),
    ...(o.natsCert !== undefined ? [{ certificate: 'nats_client' as const, file: o.natsCert, field: '--nats-tls-cert' }] : []),
  ];
}
