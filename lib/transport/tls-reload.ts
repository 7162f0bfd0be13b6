// TLS material that is read again while the process runs: the orchestrator's certificate, key and client CA bundle
// (lib/transport/grpc-server.ts). cert-manager's csi-driver (k8s/components/per-pod-identity) renews a pod's files in
// place before they expire; without this a run longer than the certificate needed its pods restarted.
//
// grpc-js's mechanism carries the new files to the server: a CertificateProvider
// (@grpc/grpc-js experimental.createCertificateProviderServerCredentials) whose updates the server applies with
// setSecureContext, so new handshakes use them and established connections keep theirs. grpc-js's own
// FileWatcherCertificateProvider is not used: it hands on whatever bytes it read, and a pair the TLS layer refuses
// (a file that does not parse, a key that does not match, a half-written file) makes the server drop every new
// connection until the next good read. This provider checks a set first (each file parses, the key matches the
// certificate, the TLS layer takes them) and keeps serving the last good set otherwise, reporting the error once,
// naming the file.
//
// Assumed of the writer: the csi-driver (cert-manager/csi-lib) writes a volume's files atomically as a set (a
// directory swap, like the kubelet's secret volumes), but this reader opens the files one by one, so a swap between
// two reads can pair an old key with a new certificate: such a read is retried once at once, and otherwise the next
// refresh takes the new set. A writer that rewrites files in place gives the same transient mismatch, handled alike.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { namePathOrPem, readPathOrPem } from '../config/named-file.ts';
import { createSecureContext } from 'node:tls';
import type { experimental } from '@grpc/grpc-js';

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

export interface TlsFiles {
  /** Certificate (chain), PEM text or a file path. */
  cert: string | Buffer;
  /** Its private key, PEM text or a file path. */
  key: string | Buffer;
  /** CA bundle trusted for peers, PEM text or a file path (one or more certificates). */
  ca?: string | Buffer;
}

export interface TlsReloadStatus {
  /** Serial number (hex, as node's X509Certificate gives it) of the certificate in use. */
  serial: string;
  /** When the certificate in use expires (its notAfter), ms since the epoch. */
  notAfterMs: number;
  /** How many CA certificates the bundle in use holds (0 without a CA). */
  caCertificates: number;
  /** The earliest notAfter of the bundle in use, ms since the epoch (absent without a CA): its expiry gauge. */
  caNotAfterMs?: number;
  /** How many sets have been taken: 1 after start, one more each time a refresh finds changed, valid files. */
  generation: number;
  /** Why the last refresh kept the set in use (naming the file), or undefined when it found nothing wrong. */
  error?: string;
}

export interface ReloadingTlsOptions {
  /** What the files are called in errors, e.g. "auth.tls" (then "auth.tls.cert /path: ..."). */
  field: string;
  /** How often the files are read again; 0: only on refresh(). Default 60 s. */
  refreshMs?: number;
  /** A refresh found files it could not use (the set in use is kept). Default: console.error. */
  onError?: (message: string) => void;
  /** A refresh took a changed set. Default: nothing. */
  onReload?: (status: TlsReloadStatus) => void;
}

interface TlsSet {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  serial: string;
  notAfterMs: number;
  caCertificates: number;
  caNotAfterMs?: number;
}

const DEFAULT_REFRESH_MS = 60_000;

/**
 * The PEM blocks of a file, refusing a file cut short: every `-----BEGIN` marker must open a complete block (a
 * half-written bundle or chain would otherwise be taken with only its complete certificates). Text outside the
 * blocks (comments, as in distributions' CA bundles) is allowed.
 */
function pemBlocks(text: Buffer, name: string): string[] {
  const s = text.toString('latin1');
  const markers = s.match(/-----BEGIN /g)?.length ?? 0;
  const blocks = s.match(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g) ?? [];
  if (markers !== blocks.length) throw new Error(`${name}: ${markers} '-----BEGIN' markers but ${blocks.length} complete PEM blocks (a file cut short, e.g. half-written?)`);
  return blocks.filter((b) => b.startsWith('-----BEGIN CERTIFICATE-----'));
}

/**
 * How far ahead of this machine's clock a certificate's start may lie: an issuer whose clock runs a little ahead
 * (cert-manager dates a certificate from its own clock, not the pod's) must not make a pod refuse a fresh certificate.
 */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** Throws (naming the file and the date) when `now` is outside the certificate's validity window (its start within CLOCK_SKEW_MS allowed). */
function checkValidity(x509: X509Certificate, name: string, now: number): number {
  const from = Date.parse(x509.validFrom);
  const to = Date.parse(x509.validTo);
  if (now > to) throw new Error(`${name} (serial ${x509.serialNumber}) expired at ${new Date(to).toISOString()}`);
  if (now + CLOCK_SKEW_MS < from) throw new Error(`${name} (serial ${x509.serialNumber}) is not valid before ${new Date(from).toISOString()}`);
  return to;
}

/**
 * Reads a CA bundle (PEM text or a file path) and checks it: at least one certificate, each parses, none cut short.
 * Returns its bytes, how many certificates it holds and the earliest of their notAfters (ms since the epoch; an
 * expired CA is read as it is, not refused: the expiry gauge reports it).
 */
export function loadCaBundle(value: string | Buffer, field: string): { bytes: Buffer; certificates: number; notAfterMs: number } {
  const name = namePathOrPem(value, field);
  const ca = readPathOrPem(value, field);
  const blocks = pemBlocks(ca, name);
  if (blocks.length === 0) throw new Error(`${name}: holds no PEM certificate`);
  const notAfters = blocks.map((b, i) => {
    try {
      return Date.parse(new X509Certificate(b).validTo);
    } catch (e) {
      throw new Error(`${name}: certificate ${i + 1} of ${blocks.length} does not parse (${(e as Error).message})`);
    }
  });
  return { bytes: ca, certificates: blocks.length, notAfterMs: Math.min(...notAfters) };
}

/**
 * Reads and checks one set; throws naming the file at fault: a file that does not parse or is cut short, a key that
 * does not match the certificate, a certificate outside its validity window (expired or not yet valid, at `now`).
 */
export function loadTlsSet(files: TlsFiles, field: string, now: number = Date.now()): TlsSet {
  const certName = namePathOrPem(files.cert, `${field}.cert`);
  const keyName = namePathOrPem(files.key, `${field}.key`);
  const cert = readPathOrPem(files.cert, `${field}.cert`);
  const key = readPathOrPem(files.key, `${field}.key`);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new Error(`${certName}: not a PEM certificate (${(e as Error).message})`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new Error(`${keyName}: not a PEM private key (${(e as Error).message})`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new Error(`${keyName} does not match the certificate ${certName} (serial ${x509.serialNumber}): one of the two is not the renewed file`);
  pemBlocks(cert, certName);
  const notAfterMs = checkValidity(x509, certName, now);
  const bundle = files.ca !== undefined ? loadCaBundle(files.ca, `${field}.ca`) : undefined;
  const ca = bundle?.bytes;
  const caCertificates = bundle?.certificates ?? 0;
  try {
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
  } catch (e) {
    throw new Error(`${field} (${certName}, ${keyName}${files.ca !== undefined ? `, ${namePathOrPem(files.ca, `${field}.ca`)}` : ''}): the TLS layer refuses them (${(e as Error).message})`);
  }
  return { cert, key, ...(ca ? { ca, caNotAfterMs: bundle!.notAfterMs } : {}), serial: x509.serialNumber, notAfterMs, caCertificates };
}

const same = (a: TlsSet, b: TlsSet) => a.cert.equals(b.cert) && a.key.equals(b.key) && (a.ca === undefined ? b.ca === undefined : b.ca !== undefined && a.ca.equals(b.ca));

/**
 * A grpc-js CertificateProvider over files read again every refreshMs (and on refresh()): identity (cert and key)
 * and CA (the bundle) updates reach the credentials' listeners only for a changed set that passed loadTlsSet.
 * The constructor reads the files once and throws (naming the file) when they are not usable: a process does not
 * start on bad TLS material. close() stops the timer.
 */
export class ReloadingTls implements experimental.CertificateProvider {
  private current: TlsSet;
  private generation = 1;
  private lastError: string | undefined;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private timer: NodeJS.Timeout | undefined;
  private readonly onError: (message: string) => void;

  constructor(
    private readonly files: TlsFiles,
    private readonly opts: ReloadingTlsOptions,
  ) {
    this.current = loadTlsSet(files, opts.field);
    this.onError = opts.onError ?? ((m) => console.error(`${opts.field}: keeping the certificate in use (serial ${this.current.serial}): ${m}`));
    const refreshMs = opts.refreshMs ?? DEFAULT_REFRESH_MS;
    if (!Number.isInteger(refreshMs) || refreshMs < 0) throw new Error(`${opts.field} refresh interval must be an integer >= 0 ms, got ${refreshMs}`);
    if (refreshMs > 0) {
      this.timer = setInterval(() => this.refresh(), refreshMs);
      this.timer.unref();
    }
  }

  status(): TlsReloadStatus {
    const c = this.current;
    return { serial: c.serial, notAfterMs: c.notAfterMs, caCertificates: c.caCertificates, ...(c.caNotAfterMs !== undefined ? { caNotAfterMs: c.caNotAfterMs } : {}), generation: this.generation, ...(this.lastError !== undefined ? { error: this.lastError } : {}) };
  }

  /**
   * Reads the files again. A changed, valid set replaces the one in use (new handshakes use it); files that cannot be
   * used leave it in place and are reported through onError (once per distinct error). Returns the status after.
   */
  refresh(): TlsReloadStatus {
    let next: TlsSet;
    try {
      next = loadTlsSet(this.files, this.opts.field);
    } catch {
      // a read that fell between the writes of a renewal: read once more before saying anything
      try {
        next = loadTlsSet(this.files, this.opts.field);
      } catch (e) {
        const message = (e as Error).message;
        if (message !== this.lastError) this.onError(message);
        this.lastError = message;
        return this.status();
      }
    }
    this.lastError = undefined;
    if (same(next, this.current)) return this.status();
    this.current = next;
    this.generation++;
    for (const l of this.identityListeners) l({ certificate: next.cert, privateKey: next.key });
    if (next.ca) for (const l of this.caListeners) l({ caCertificate: next.ca });
    this.opts.onReload?.(this.status());
    return this.status();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => {
      const ca = this.current.ca;
      if (this.caListeners.has(listener)) listener(ca ? { caCertificate: ca } : null);
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => {
      if (this.identityListeners.has(listener)) listener({ certificate: this.current.cert, privateKey: this.current.key });
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}
