// Least privilege in NATS: one NATS user per role, each allowed only the subjects its role needs (issue #16).
//
//   learner       writes checkpoints (object store `checkpoints-<run>`), their announcements
//                 (`recovery.<run>.checkpoint`), its optimizer state (`learner-<run>`) and its skip record
//                 (key `learner-skips` of `runstate-<run>`); reads everything.
//   orchestrator  writes the run state (KV `runstate-<run>`); creates the run's buckets; reads checkpoints.
//   rollout       reads checkpoints and announcements; writes nothing.
//   reward        same as rollout (it reads nothing today; the grant stays read-only).
//
// Publishing is what writing is in JetStream (a KV put is a publish on `$KV.<bucket>.<key>`, an object chunk one
// on `$O.<bucket>.C.<id>`), so the write rules are publish rules; the JetStream API (`$JS.API.>`) is granted per
// verb: readers may look at streams and make consumers, not create, change, purge or delete streams. NATS
// wildcards match whole tokens only (`checkpoints-<run>` is one token), so the rules are per role, not per run.
// The same rules go into the local run's generated nats.conf (lib/local/local-run.ts) and into the Kubernetes
// one (k8s/base/nats.conf, checked against natsAuthorizationBlock by test/k8s/manifests.test.ts).

export const NATS_ROLES = ['orchestrator', 'learner', 'rollout', 'reward'] as const;
export type NatsRole = (typeof NATS_ROLES)[number];

export interface NatsPermissions {
  publish: { allow: string[]; deny: string[] };
  subscribe: { allow: string[] };
}

/** What any role may do to read: look at streams and messages, make and drop its consumers, answer flow control. */
const READ_API = [
  '$JS.API.INFO',
  '$JS.API.STREAM.INFO.*',
  '$JS.API.STREAM.NAMES',
  '$JS.API.STREAM.LIST',
  '$JS.API.STREAM.MSG.GET.*',
  '$JS.API.DIRECT.GET.>',
  '$JS.API.CONSUMER.CREATE.>',
  '$JS.API.CONSUMER.DURABLE.CREATE.>',
  '$JS.API.CONSUMER.INFO.>',
  '$JS.API.CONSUMER.DELETE.>',
  '$JS.API.CONSUMER.MSG.NEXT.>',
  '$JS.ACK.>',
  '$JS.FC.>',
];
/** Creating (and updating the settings of) the run's buckets and streams, never deleting them. */
const CREATE_API = ['$JS.API.STREAM.CREATE.*', '$JS.API.STREAM.UPDATE.*'];
/** Removing whole streams or messages: nobody's grant includes these (an operator uses the system account). */
const DESTROY_API = ['$JS.API.STREAM.DELETE.>', '$JS.API.STREAM.MSG.DELETE.>'];

/** Subjects that write checkpoints or announce them: the learner's alone. */
export const CHECKPOINT_WRITE_SUBJECTS = ['$O.>', 'recovery.*.checkpoint'];
/**
 * What every role may subscribe to: its replies (JetStream consumers deliver there) and the object chunks as they
 * are stored (checkpoint-push.ts: a watching store assembles a checkpoint from them; reading them is what any
 * reader's consumer on the bucket may do already).
 */
const SUBSCRIBE = ['_INBOX.>', '$O.*.C.>'];
/** Subjects that write the run state: the orchestrator's (the learner's skip record excepted). */
export const RUN_STATE_WRITE_SUBJECTS = ['$KV.>'];

export function natsPermissions(role: NatsRole): NatsPermissions {
  const subscribe = { allow: SUBSCRIBE };
  switch (role) {
    case 'learner':
      return {
        // Purge replaces an object (put of an existing name) and prunes old checkpoints (delete is a purge).
        publish: { allow: [...READ_API, ...CREATE_API, '$JS.API.STREAM.PURGE.*', ...CHECKPOINT_WRITE_SUBJECTS, '$KV.*.learner-skips'], deny: DESTROY_API },
        subscribe,
      };
    case 'orchestrator':
      return { publish: { allow: [...READ_API, ...CREATE_API, ...RUN_STATE_WRITE_SUBJECTS], deny: [...DESTROY_API, '$JS.API.STREAM.PURGE.*', ...CHECKPOINT_WRITE_SUBJECTS] }, subscribe };
    case 'rollout':
    case 'reward':
      return {
        publish: { allow: READ_API, deny: [...DESTROY_API, ...CREATE_API, '$JS.API.STREAM.PURGE.*', ...CHECKPOINT_WRITE_SUBJECTS, ...RUN_STATE_WRITE_SUBJECTS] },
        subscribe,
      };
  }
}

export interface NatsUser {
  role: NatsRole;
  /** User name: with a password, what the client sends; with TLS mapping, the identity in its certificate. */
  user: string;
  /** Absent: the user is identified by its client certificate (nats.conf `tls { verify_and_map: true }`). */
  password?: string;
}

const quote = (s: string) => JSON.stringify(s);
const list = (xs: string[]) => `[${xs.map(quote).join(', ')}]`;

/** The `authorization { users = [...] }` block of a nats.conf granting each user its role's permissions. */
export function natsAuthorizationBlock(users: readonly NatsUser[]): string {
  const lines = users.map((u) => {
    const p = natsPermissions(u.role);
    const pass = u.password !== undefined ? `, password: ${quote(u.password)}` : '';
    return [
      `    # ${u.role}`,
      `    { user: ${quote(u.user)}${pass}, permissions: {`,
      `        publish: { allow: ${list(p.publish.allow)},`,
      `                   deny: ${list(p.publish.deny)} },`,
      `        subscribe: { allow: ${list(p.subscribe.allow)} } } }`,
    ].join('\n');
  });
  return `authorization {\n  users = [\n${lines.join(',\n')}\n  ]\n}\n`;
}
