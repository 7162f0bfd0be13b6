// Identity from a mutual-TLS client certificate: the certificate names the role (and optionally the worker id)
// in a URI subject alternative name, SPIFFE style:
//
//   spiffe://recovery-grpo/role/<rollout|reward|learner>              any worker id
//   spiffe://recovery-grpo/role/<rollout|reward|learner>/<worker-id>  only this worker id
//
// or in exactly two: the role URI and the worker URI of the same role (only that worker id). That is the shape of a
// per-pod certificate (k8s/components/per-pod-identity): nats-server's verify_and_map makes a URI that equals a
// user's name the user, so the role URI maps the pod to its role's NATS user while the worker URI pins its id here.
// Any other pair (two roles, two worker ids, a URI twice) and more than two are refused, naming them.
//
// The orchestrator's CA signs the certificate, so the role it names is as binding as a role token's
// (lib/transport/role-tokens.ts): a Hello for another role is refused. scripts/k8s-secrets.sh and the tests
// make such certificates with openssl (`-addext subjectAltName=URI:spiffe://recovery-grpo/role/learner`).
import { createHash, X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { WORKER_ID_PATTERN, WORKER_ID_RULE } from './messages.ts';
import { roleOfName, ROLE_NAMES, type Grant } from './role-tokens.ts';

export const ROLE_URI_PREFIX = 'spiffe://recovery-grpo/role/';

/** The URI naming `role` (lower-case role name) and, when given, one worker id. */
export function roleUri(role: string, workerId?: string): string {
  return `${ROLE_URI_PREFIX}${role}${workerId !== undefined ? `/${workerId}` : ''}`;
}

/** What any spiffe:// name of this run starts with (compared case-insensitively: nats-server lower-cases a URI's scheme). */
const RUN_SPIFFE_PREFIX = 'spiffe://recovery-grpo/';

/**
 * The subject alternative names of a certificate, from node's `subjectaltname` text ("DNS:a, URI:spiffe://...,
 * email:x, IP Address:1.2.3.4"), as [type, value]. Values with special characters come JSON-quoted there; those are
 * decoded.
 */
export function sansOf(subjectAltName: string | undefined): [type: string, value: string][] {
  if (!subjectAltName) return [];
  const out: [string, string][] = [];
  for (const m of subjectAltName.matchAll(/(?:^|, )([A-Za-z][A-Za-z ]*):("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const v = m[2]!;
    out.push([m[1]!, v.startsWith('"') ? (JSON.parse(v) as string) : v]);
  }
  return out;
}

/** The URI SANs of a certificate (sansOf's values of type URI). */
export function uriSansOf(subjectAltName: string | undefined): string[] {
  return sansOf(subjectAltName).filter(([type]) => type === 'URI').map(([, v]) => v);
}

/**
 * The grant a certificate's role URIs make, or undefined when it names no role. Throws (the message says why, naming
 * the URIs) when they name a role or worker id that does not exist, or are not one of the shapes above: one URI, or
 * the role URI and one worker URI of that role.
 *
 * Also refused: any other SAN that spells a spiffe://recovery-grpo/ name (scheme and host in any case): a DNS name or
 * an email address spelling one, a URI with an upper-case scheme. nats-server's verify_and_map tries a certificate's
 * email addresses, then its DNS names, then its URIs (scheme lower-cased) and takes the first that is a user's name,
 * so such a SAN could make the certificate another NATS user than the role it grants here (review30 F2). The
 * orchestrator refusing it keeps the two in agreement over gRPC; NATS itself is protected only by what the CA signs
 * (docs/kubernetes.md, the approver-policy).
 */
export function certificateGrant(subjectAltName: string | undefined): Grant | undefined {
  const uris: string[] = [];
  for (const [type, value] of sansOf(subjectAltName)) {
    if (type === 'URI' && value.startsWith(ROLE_URI_PREFIX)) uris.push(value);
    else if (value.toLowerCase().startsWith(RUN_SPIFFE_PREFIX)) {
      throw new Error(`the client certificate's ${type} SAN ${JSON.stringify(value)} spells a ${RUN_SPIFFE_PREFIX} name; only URI SANs ${ROLE_URI_PREFIX}<${ROLE_NAMES.join('|')}>[/<worker-id>] may (nats-server maps DNS names and email addresses too)`);
    }
  }
  if (uris.length === 0) return undefined;
  const grants = uris.map(grantOfUri);
  if (uris.length === 1) return grants[0];
  const shape = `it must name one role URI, or the role URI and one worker URI of that role (${ROLE_URI_PREFIX}<role> and ${ROLE_URI_PREFIX}<role>/<worker-id>)`;
  const listed = uris.join(', ');
  if (uris.length > 2) throw new Error(`the client certificate names ${uris.length} role URIs (${listed}); ${shape}`);
  const roles = [...new Set(grants.map((g) => g.role))];
  if (roles.length > 1) throw new Error(`the client certificate names ${roles.length} roles, ${roles.join(' and ')} (${listed}); ${shape}`);
  if (uris[0] === uris[1]) throw new Error(`the client certificate names the ${grants[0]!.workerId === undefined ? 'role' : 'worker'} URI twice (${listed}); ${shape}`);
  const pinned = grants.filter((g) => g.workerId !== undefined);
  if (pinned.length === 2) throw new Error(`the client certificate names 2 worker ids, ${pinned.map((g) => JSON.stringify(g.workerId)).join(' and ')} (${listed}); ${shape}`);
  return pinned[0];
}

/**
 * The grant of one role URI (spiffe://recovery-grpo/role/<role>[/<worker-id>]); throws naming it when malformed: the
 * role name exactly as NATS's user names it (lower case), a worker segment present only when not empty.
 */
function grantOfUri(uri: string): Grant {
  const [roleName = '', workerId, ...rest] = uri.slice(ROLE_URI_PREFIX.length).split('/');
  const role = ROLE_NAMES.includes(roleName) ? roleOfName(roleName) : undefined;
  if (!role || rest.length > 0) throw new Error(`the client certificate's ${uri} is not ${ROLE_URI_PREFIX}<${ROLE_NAMES.join('|')}>[/<worker-id>]`);
  if (workerId === undefined) return { role };
  if (workerId === '') throw new Error(`the client certificate's ${uri} has an empty worker id (a role URI has no trailing /)`);
  if (!WORKER_ID_PATTERN.test(workerId)) throw new Error(`the client certificate's worker id ${JSON.stringify(workerId)} ${WORKER_ID_RULE}`);
  return { role, workerId };
}

/** certificateGrant of a peer certificate as the TLS layer hands it over (read from its DER bytes when present). */
export function peerCertificateGrant(cert: PeerCertificate | undefined): Grant | undefined {
  if (!cert || Object.keys(cert).length === 0) return undefined;
  const san = cert.raw ? new X509Certificate(cert.raw).subjectAltName : cert.subjectaltname;
  return certificateGrant(san);
}

/**
 * The credential id of a peer certificate (SessionCredential.id): `cert:` and 16 hex digits of the SHA-256 of its DER
 * bytes (undefined without them). A certificate issued once and shared (k8s/base: one per role, in a Secret every
 * replica mounts) is one credential for all its holders.
 */
export function certificateCredentialId(cert: PeerCertificate | undefined): string | undefined {
  if (!cert?.raw) return undefined;
  return `cert:${createHash('sha256').update(cert.raw).digest('hex').slice(0, 16)}`;
}
