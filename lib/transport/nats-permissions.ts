// Least privilege in NATS: one NATS user per role, each allowed only the subjects its role needs (issue #16).
//
//   learner       writes checkpoints (object store `checkpoints-<run>`), their announcements
//                 (`recovery.<run>.checkpoint`), its optimizer state (`learner-state-<run>` where the config names
//                 the run, round 25; else the shared `learner-state`, objects `<run>/...`) and its
//                 skip record (key `learner-skips` of `runstate-<run>`); reads everything; the only role that
//                 creates (or updates) streams where the checkpoints are: its run's three streams only, where the
//                 config names the run.
//   orchestrator  writes the run state (key `state` of KV `runstate-<run>`, in its own account: RUN_STATE_ACCOUNT;
//                 it reads the learner's `learner-skips` beside it, never writes it: review32 F3), creates streams
//                 there only (its run's bucket only, where the config names the run), never updates one; reads
//                 checkpoints, never the learner's optimizer state.
//   rollout       reads checkpoints and announcements (not the optimizer state, not the run state); writes nothing.
//   reward        same as rollout (it reads nothing today; the grant stays read-only).
//   (Since review29 F6 neither reader reaches the run state: it holds each worker id's excluded-result ages and a
//   64-bit prefix of each role token's SHA-256, and neither role opens it; its account's API is not even imported.)
//
// Publishing is what writing is in JetStream (a KV put is a publish on `$KV.<bucket>.<key>`, an object chunk one
// on `$O.<bucket>.C.<id>`), so the write rules are publish rules; the JetStream API (`$JS.API.>`) is granted per
// verb: readers may look at streams and read stored messages (direct gets), not make consumers (nobody may: READ_API
// below) nor create, change, purge or delete streams. NATS wildcards match whole tokens only (`checkpoints-<run>` is
// one token), so a grant for any run says `$JS.API.STREAM.CREATE.*`; a user given its run (NatsUser.run: the local
// run, Kubernetes with the run id of k8s/base/run.yaml) gets instead the exact names of that run's streams and
// subjects (runScope), so its credential creates, changes and writes nothing of another run's or of any other name.
// Each role's users live in the role's own NATS account, which reaches the streams (in STREAMS_ACCOUNT) only through
// imports of what those rules allow (natsAccountsBlock): a JetStream API request's reply subject, which nats-server
// checks against nothing, can then no longer make a stream store the answer (docs/security.md).
// The same block goes into the local run's generated nats.conf (lib/local/nats-config.ts) and into the Kubernetes
// one (k8s/base/nats.conf, checked against natsAccountsBlock by test/k8s/security.test.ts; scripts/gen-nats-conf.ts).

import { PUSHED_CHUNKS } from './checkpoint-push.ts';
import { announcementStream, announcementSubject, checkpointBucket, checkRunId, kvStream, learnerStateBucket, objectStream, runStateBucket } from './run-names.ts';

export const NATS_ROLES = ['orchestrator', 'learner', 'rollout', 'reward'] as const;
export type NatsRole = (typeof NATS_ROLES)[number];

export interface NatsPermissions {
  publish: { allow: string[]; deny: string[] };
  subscribe: { allow: string[] };
}

/**
 * What any role may do to read: look at streams, read stored messages one at a time (direct gets, stream message
 * gets). No consumers: a push consumer's deliver_subject is not checked against its creator's publish permissions
 * (nats-server 2.9/2.10, nats-io/nats-server#8274), so whoever may create a consumer may have any stream's messages
 * delivered into any subject, the announcement subject included (docs/security.md, "Readers make no consumers").
 */
const READ_API = [
  '$JS.API.INFO',
  '$JS.API.STREAM.INFO.*',
  '$JS.API.STREAM.NAMES',
  '$JS.API.STREAM.LIST',
  '$JS.API.STREAM.MSG.GET.*',
  '$JS.API.DIRECT.GET.>',
];
/**
 * Making, reading through and dropping consumers, acknowledging, answering flow control: denied to every role (deny
 * wins over allow in NATS). Round 23: the learner too; its object reads and listings are direct and message gets
 * (lib/worker/learner-state.ts, object-listing.ts), so every JetStream request of every role is a request whose answer
 * comes back through the account import (natsAccountsBlock), never a push delivery.
 */
const NO_CONSUMERS = ['$JS.API.CONSUMER.>', '$JS.ACK.>', '$JS.FC.>'];
/**
 * Creating streams in STREAMS_ACCOUNT: the learner's alone (round 23, review23d): whoever may create a stream there
 * can make it republish into the announcement subject or an object's info record, source the learner's optimizer
 * state, or capture every JetStream answer passing through (`_R_.>`), and nats-server checks none of that against the
 * creator's permissions. The orchestrator creates only its run state, in RUN_STATE_ACCOUNT (RUN_STATE_API). Round 24:
 * where the config names the run, the learner creates only that run's streams (runScope); CREATE_API (any stream) is
 * the grant for every run, and what the other roles are denied.
 */
const createApi = (streams: readonly string[]) => streams.map((s) => `$JS.API.STREAM.CREATE.${s}`);
const CREATE_API = createApi(['*']);
/**
 * Changing a stream's settings: nobody's grant includes it (round 25). Round 23 took it from the orchestrator, whose
 * stolen credential could otherwise turn direct gets back on for the announcement stream; round 25 from the learner,
 * whose stolen credential could add `_R_.>` to one of its run's streams' subjects and have every JetStream answer
 * passing through STREAMS_ACCOUNT stored there (docs/security.md). The learner creates its streams and checks an
 * existing one's settings (owned-stream.ts checkOwnedStream), refusing one that differs instead of correcting it.
 */
const UPDATE_API = ['$JS.API.STREAM.UPDATE.*'];
/** Purging (a filtered purge replaces or deletes an object): the learner's alone. */
const purgeApi = (streams: readonly string[]) => streams.map((s) => `$JS.API.STREAM.PURGE.${s}`);
const PURGE_API = purgeApi(['*']);
/** Removing whole streams or messages: nobody's grant includes these (an operator uses the system account). */
const DESTROY_API = ['$JS.API.STREAM.DELETE.>', '$JS.API.STREAM.MSG.DELETE.>'];

/** Every run's announcement subject (nats.ts: `recovery.<run>.checkpoint`). */
const ANNOUNCEMENT_SUBJECTS = 'recovery.*.checkpoint';
/** Subjects that write checkpoints or announce them: the learner's alone. */
export const CHECKPOINT_WRITE_SUBJECTS = ['$O.>', ANNOUNCEMENT_SUBJECTS];
/**
 * What every role may subscribe to: its replies (direct gets and the JetStream API answer there), the checkpoint announcements (a watching store follows them: nats.ts watch()) and the
 * checkpoint chunks as they are stored (checkpoint-push.ts: a watching store assembles a checkpoint from them). Only chunks written for
 * followers carry the `push` token in their id (`$O.<bucket>.C.push.<id>`), so no other object's chunks (the
 * learner's optimizer state) are delivered to a subscription this allows: a subscribe deny would not do, as
 * nats-server 2.9 delivers what a wildcard subscription matches whatever deny overlaps it (measured).
 */
const SUBSCRIBE = ['_INBOX.>', PUSHED_CHUNKS, ANNOUNCEMENT_SUBJECTS];
/** What the followers receive as it is published (SUBSCRIBE but the replies). */
const FOLLOWED = [PUSHED_CHUNKS, ANNOUNCEMENT_SUBJECTS];
/**
 * The learner's optimizer state (lib/worker/learner-state.ts) under a grant for every run: one object-store bucket
 * for every run, so that its name can be denied here (a per-run name sits inside a token no wildcard can pick out).
 * Where the grants name the runs (round 25), each run has its own, learnerStateBucket(run), and every role but the
 * learner is denied each of them by name (learnerStateRead).
 */
export const LEARNER_STATE_BUCKET = 'learner-state';
const LEARNER_STATE_STREAM = `OBJ_${LEARNER_STATE_BUCKET}`;
/**
 * Every way the read API reaches a stream's messages, for the learner's state: denied to every role but the learner
 * (deny wins over allow in NATS), so the AdamW moments never leave it. CONSUMER.CREATE has two forms (with and
 * without the consumer name and filter in the subject).
 */
const learnerStateReadOf = (stream: string) => [
  `$JS.API.CONSUMER.CREATE.${stream}`,
  `$JS.API.CONSUMER.CREATE.${stream}.>`,
  `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.>`,
  `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
  `$JS.API.CONSUMER.DELETE.${stream}.>`,
  `$JS.API.STREAM.MSG.GET.${stream}`,
  `$JS.API.DIRECT.GET.${stream}`,
  `$JS.API.DIRECT.GET.${stream}.>`,
  // nor may it be created or changed by another role (e.g. made to republish what it stores)
  `$JS.API.STREAM.CREATE.${stream}`,
  `$JS.API.STREAM.UPDATE.${stream}`,
];
/**
 * LEARNER_STATE_READ for the shared bucket and the own buckets of `runs` (every run a config names: a rollout user of
 * one run is denied the moments of every run on the server, not only its own; the shared bucket always, as a run
 * resumed from it still reads it).
 */
const learnerStateRead = (runs: readonly (string | undefined)[]) =>
  [...new Set([LEARNER_STATE_STREAM, ...runs.filter((r): r is string => r !== undefined).map((r) => objectStream(learnerStateBucket(r)))])].flatMap(learnerStateReadOf);

/**
 * The run state (KV `runstate-<run>`, RunStateStore) lives in its own JetStream account, RUN_STATE_ACCOUNT, whose API
 * every role imports under this prefix (one account cannot import `$JS.API...` from two accounts): a client opens
 * the run state with nats.js's `apiPrefix: RUN_STATE_API`, and its KV writes go to `RS.API.$KV.<bucket>.<key>`
 * (nats.js prefixes a KV's edit subjects with a custom API prefix), mapped to `$KV.<bucket>.<key>` there.
 */
export const RUN_STATE_API = 'RS.API';
const RUN_STATE_READ_API = READ_API.map((s) => s.replace('$JS.API', RUN_STATE_API));
/** Creating the run-state bucket: streams made in RUN_STATE_ACCOUNT reach nothing else (it imports nothing). */
const runStateCreateApi = (streams: readonly string[]) => streams.map((s) => `${RUN_STATE_API}.STREAM.CREATE.${s}`);
/**
 * The run-state key the orchestrator writes (RunStateStore's default key, lib/transport/nats.ts): its grant names this
 * key alone (review32 F3), so the learner's record beside it (`learner-skips`: its skips and kept exclusion reports,
 * which the orchestrator counts) is written by the learner's grant only.
 */
export const RUN_STATE_KEY = 'state';
/** Subjects that write the run state for every run: the orchestrator's key only. */
export const RUN_STATE_WRITE_SUBJECTS = [`${RUN_STATE_API}.$KV.*.${RUN_STATE_KEY}`];

/**
 * What the writers' grants name for one run, or for every run (`run` undefined): the streams the learner creates and
 * changes in STREAMS_ACCOUNT and those it purges, the subjects it writes there, the run-state stream created in
 * RUN_STATE_ACCOUNT and the run-state subjects written. A stream name is one subject token, so "every run" is `*`
 * (any stream at all); a known run gets the exact names (run-names.ts), so a stream of another name or another run's
 * is refused. The learner's state: its run's own bucket (learnerStateBucket, round 25) for a known run, the shared
 * LEARNER_STATE_BUCKET for every run.
 */
interface RunScope {
  learnerStreams: string[];
  purged: string[];
  checkpointWrites: string[];
  runStateStreams: string[];
  runStateWrites: string[];
  learnerSkips: string;
}

function runScope(run: string | undefined): RunScope {
  if (run === undefined) {
    return { learnerStreams: ['*'], purged: ['*'], checkpointWrites: CHECKPOINT_WRITE_SUBJECTS, runStateStreams: ['*'], runStateWrites: RUN_STATE_WRITE_SUBJECTS, learnerSkips: `${RUN_STATE_API}.$KV.*.learner-skips` };
  }
  const bucket = checkpointBucket(checkRunId(run));
  const state = runStateBucket(run);
  // the run's own optimizer-state bucket (round 25): another run's learner can no longer write or purge its moments
  const moments = learnerStateBucket(run);
  return {
    learnerStreams: [objectStream(bucket), announcementStream(run), objectStream(moments)],
    purged: [objectStream(bucket), objectStream(moments)],
    checkpointWrites: [`$O.${bucket}.>`, `$O.${moments}.>`, announcementSubject(run)],
    runStateStreams: [kvStream(state)],
    runStateWrites: [`${RUN_STATE_API}.$KV.${state}.${RUN_STATE_KEY}`],
    // the learner's skip record (learner/index.ts SKIP_KEY)
    learnerSkips: `${RUN_STATE_API}.$KV.${state}.learner-skips`,
  };
}

/**
 * `role`'s grant, for run `run` only, or for every run (`run` undefined: runScope). Denies name every run; the
 * learner's state buckets denied to the other roles are the shared one and those of `runs` (every run the config
 * names; default: `run`).
 */
export function natsPermissions(role: NatsRole, run?: string, runs: readonly (string | undefined)[] = [run]): NatsPermissions {
  const LEARNER_STATE_READ = learnerStateRead(runs);
  const subscribe = { allow: SUBSCRIBE };
  const r = runScope(run);
  switch (role) {
    case 'learner':
      return {
        // Purge replaces an object (put of an existing name) and prunes old checkpoints (delete is a purge).
        publish: { allow: [...READ_API, ...createApi(r.learnerStreams), ...purgeApi(r.purged), ...r.checkpointWrites, ...RUN_STATE_READ_API, ...runStateCreateApi(r.runStateStreams), r.learnerSkips], deny: [...DESTROY_API, ...UPDATE_API, ...NO_CONSUMERS] },
        subscribe,
      };
    case 'orchestrator':
      // its run state (nats.js KV: get is a direct get, create/update a publish) and checkpoint reads need no consumer;
      // it creates streams in RUN_STATE_ACCOUNT only (round 23, review23d: no longer in STREAMS_ACCOUNT)
      return { publish: { allow: [...READ_API, ...RUN_STATE_READ_API, ...runStateCreateApi(r.runStateStreams), ...r.runStateWrites], deny: [...DESTROY_API, ...CREATE_API, ...UPDATE_API, ...PURGE_API, ...NO_CONSUMERS, ...CHECKPOINT_WRITE_SUBJECTS, ...LEARNER_STATE_READ] }, subscribe };
    case 'rollout':
    case 'reward':
      return {
        // no run-state read (review29 F6): it holds excluded-result ages per worker id and token-digest prefixes, and
        // neither role opens it; every run-state subject is denied besides
        publish: { allow: [...READ_API], deny: [...DESTROY_API, ...CREATE_API, ...UPDATE_API, ...PURGE_API, ...NO_CONSUMERS, ...CHECKPOINT_WRITE_SUBJECTS, `${RUN_STATE_API}.>`, ...LEARNER_STATE_READ] },
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
  /**
   * The run whose streams this user's grant names (runScope); absent: every run (wildcards). A config names runs for
   * all its users or for none (natsAccountsBlock).
   */
  run?: string;
}

const quote = (s: string) => JSON.stringify(s);
const list = (xs: readonly string[]) => `[${xs.map(quote).join(', ')}]`;

/**
 * The account that holds the checkpoints, their announcements and the learner's state: JetStream on, no user (an
 * operator reaches it through the system account). Only the learner may create or change streams in it.
 */
export const STREAMS_ACCOUNT = 'STREAMS';
/**
 * The account that holds the run state (`runstate-<run>`): JetStream on, no user, and it imports nothing, so a stream
 * created there (the orchestrator may) cannot source, republish into or capture anything of STREAMS_ACCOUNT's.
 */
export const RUN_STATE_ACCOUNT = 'RUNSTATE';
/**
 * RUN_STATE_ACCOUNT's JetStream limits: a stream the orchestrator's credential makes there (capturing the answers that
 * pass through it, `_R_.>`) fills at most this much (the run state is a few KiB). They are reserved against the
 * server's own limits, so its `max_file_store` / `max_memory_store` must be at least these, or JetStream does not
 * start (`insufficient memory resources`, review23f; test/k8s/manifests.test.ts checks the manifests).
 */
export const RUN_STATE_LIMIT_BYTES = { file: 256 * 1024 * 1024, memory: 64 * 1024 * 1024 };
const RUN_STATE_LIMITS = `{ max_file: ${RUN_STATE_LIMIT_BYTES.file / 1024 / 1024}M, max_mem: ${RUN_STATE_LIMIT_BYTES.memory / 1024 / 1024}M }`;
/** Each role's own account (no JetStream): it reaches the streams only through what it imports. */
export const roleAccount = (role: NatsRole): string => role.toUpperCase();

/** A service a role's account imports: `subject` of `account`, seen as `to` in the role's account. */
export interface NatsServiceImport {
  account: string;
  subject: string;
  to: string;
}

/** Where a subject of a role's grant is served: RUN_STATE_API subjects in RUN_STATE_ACCOUNT, the rest in STREAMS_ACCOUNT. */
function serviceOf(local: string): NatsServiceImport {
  if (!local.startsWith(`${RUN_STATE_API}.`)) return { account: STREAMS_ACCOUNT, subject: local, to: local };
  const rest = local.slice(RUN_STATE_API.length + 1);
  // KV writes (nats.js: `<apiPrefix>.$KV.<bucket>.<key>`) are the stored subjects themselves; the rest is the API
  return { account: RUN_STATE_ACCOUNT, subject: rest.startsWith('$KV.') ? rest : `$JS.API.${rest}`, to: local };
}

/**
 * What `role`'s account imports. Services: every subject its publish permissions allow (the JetStream API subjects
 * of its grant; for the writers, the subjects their writes are stored from), from STREAMS_ACCOUNT, or mapped from
 * RUN_STATE_ACCOUNT for the RUN_STATE_API ones. The server maps an imported service's reply subject to one of its own
 * (`_R_...`) and delivers the answer back in the requester's account, where no stream is, so an API answer can no
 * longer be stored by a stream its reply subject names (docs/security.md, "JetStream API replies stay in the
 * requester's account"). Streams: what it follows besides its replies (the announcements, the pushed chunks:
 * SUBSCRIBE), from the learner's account, where they are published (none for the learner itself, which gets its own
 * publications there).
 */
export function natsImports(role: NatsRole, runs: readonly (string | undefined)[] = [undefined]): { services: NatsServiceImport[]; streams: string[] } {
  const allowed = [...new Set(runs.flatMap((run) => natsPermissions(role, run, runs).publish.allow))];
  return { services: allowed.map(serviceOf), streams: role === 'learner' ? [] : FOLLOWED };
}

/** The runs `users` are given (NatsUser.run): [undefined] (every run) when none is; mixing both is refused. */
function runsOf(users: readonly NatsUser[]): (string | undefined)[] {
  const given = users.filter((u) => u.run !== undefined);
  if (given.length > 0 && given.length < users.length) {
    throw new Error(`NATS users: ${users.filter((u) => u.run === undefined).map((u) => u.user).join(', ')} name no run while ${given.map((u) => u.user).join(', ')} do: give every user its run, or none (a grant for every run)`);
  }
  return given.length === 0 ? [undefined] : [...new Set(given.map((u) => checkRunId(u.run!)))];
}

/**
 * The `accounts { ... }` block of a nats.conf: STREAMS_ACCOUNT and RUN_STATE_ACCOUNT with JetStream, each exporting
 * each subject only to the accounts that import it, and one account per role holding that role's users, each user with
 * its role's permissions (a refused write is a PERMISSIONS_VIOLATION at once; the accounts are the containment). Start
 * nats-server with `-js` or a `jetstream {}` block: JetStream is then on in those two accounts only (measured on 2.9.10
 * and 2.10.27).
 */
export function natsAccountsBlock(users: readonly NatsUser[]): string {
  const runs = runsOf(users);
  const exportsOf = (account: string) => {
    const to = new Map<string, string[]>();
    for (const role of NATS_ROLES) {
      for (const s of natsImports(role, runs).services) if (s.account === account) to.set(s.subject, [...(to.get(s.subject) ?? []), roleAccount(role)]);
    }
    return [...to].map(([s, accounts]) => `      { service: ${quote(s)}, accounts: ${list(accounts)} }`);
  };
  const accounts = NATS_ROLES.map((role) => {
    const imp = natsImports(role, runs);
    const own = users.filter((u) => u.role === role).map((u) => {
      const p = natsPermissions(u.role, u.run, runs);
      const pass = u.password !== undefined ? `, password: ${quote(u.password)}` : '';
      return [
        `      { user: ${quote(u.user)}${pass}, permissions: {`,
        `          publish: { allow: ${list(p.publish.allow)},`,
        `                     deny: ${list(p.publish.deny)} },`,
        `          subscribe: { allow: ${list(p.subscribe.allow)} } } }`,
      ].join('\n');
    });
    const imports = [
      ...imp.services.map((s) => `      { service: { account: ${s.account}, subject: ${quote(s.subject)} }${s.to !== s.subject ? `, to: ${quote(s.to)}` : ''} }`),
      ...imp.streams.map((s) => `      { stream: { account: ${roleAccount('learner')}, subject: ${quote(s)} } }`),
    ];
    // what the learner publishes for followers (announcements, pushed chunks), exported from its own account: a
    // message that reached the streams' account through a service import is not delivered to stream imports from there
    const exports = role === 'learner' ? FOLLOWED.map((s) => `      { stream: ${quote(s)}, accounts: ${list(NATS_ROLES.filter((r) => r !== 'learner').map(roleAccount))} }`) : [];
    return [
      `  # ${role}`,
      `  ${roleAccount(role)} {`,
      `    users = [\n${own.join(',\n')}\n    ]`,
      `    imports = [\n${imports.join('\n')}\n    ]`,
      ...(exports.length ? [`    exports = [\n${exports.join('\n')}\n    ]`] : []),
      '  }',
    ].join('\n');
  });
  return [
    'accounts {',
    `  # the checkpoints, announcements and the learner's state: JetStream here; no user; only the learner creates streams`,
    `  ${STREAMS_ACCOUNT} {`,
    '    jetstream: enabled',
    `    exports = [\n${exportsOf(STREAMS_ACCOUNT).join('\n')}\n    ]`,
    '  }',
    `  # the run state: JetStream here, limited; no user; imports nothing (a stream made here reaches nothing else)`,
    `  ${RUN_STATE_ACCOUNT} {`,
    `    jetstream: ${RUN_STATE_LIMITS}`,
    `    exports = [\n${exportsOf(RUN_STATE_ACCOUNT).join('\n')}\n    ]`,
    '  }',
    ...accounts,
    '}',
    '',
  ].join('\n');
}
