// Which policy weights a rollout worker holds, and how it follows the learner: announcements arrive through
// CheckpointStore.watch() (newest first, then each new one); the worker swaps to the newest between policy
// calls. A checkpoint that fails verification (object digest, file digest, parameter names/shapes, run id,
// version) is refused for good, counted, and the worker keeps the weights it has.
import { CheckpointError, type TensorMap } from '../lib/checkpoint/index.ts';
import { CheckpointIntegrityError, type Announcement, type CheckpointStore, type CheckpointWatch } from '../lib/transport/index.ts';
import { trace } from '../lib/log/trace.ts';
import { BASE_DIGEST_KEY, fetchCheckpoint, type RoleContext } from '../lib/worker/index.ts';

export interface HeldPolicy {
  version: number;
  params: TensorMap;
  digest: string;
}

/** The held policy lent to one policy call (use()): done() when the call no longer reads its parameters. */
export interface PolicyUse {
  policy: HeldPolicy;
  done(): void;
}

/**
 * A held policy's bookkeeping: its parameters are views of the fetched checkpoint's buffer, which goes back to the
 * store (reused for a later checkpoint, the views detached: CheckpointStore.get) once it is replaced and no policy
 * call uses it.
 */
interface Holding {
  policy: HeldPolicy;
  release: () => void;
  users: number;
  replaced: boolean;
}

const TRANSIENT_RETRY_MS = 1000;

export class PolicyFollower {
  private holding: Holding | undefined;
  /** Set when a checkpoint was trained on another frozen base than this worker reads: the run is refused. */
  baseMismatch: string | undefined;
  private newest: Announcement | undefined;
  private readonly refused = new Map<string, string>();
  private retryAt = 0;
  private watch: CheckpointWatch | undefined;
  private watching: Promise<void> | undefined;
  private fetching: Promise<boolean> | undefined;

  constructor(
    private readonly ctx: RoleContext,
    private readonly store: CheckpointStore,
    private readonly shapes: ReadonlyMap<string, readonly number[]>,
    /** Called when a newer announcement arrives (wake the batch loop). */
    private readonly onAnnouncement: () => void,
    /** The frozen base this worker reads (an imported network); checkpoints on another base are refused. */
    private readonly baseDigest?: string,
  ) {}

  /** The policy held now (its parameters are valid while it is held; a policy call takes it with use()). */
  get current(): HeldPolicy | undefined {
    return this.holding?.policy;
  }

  /**
   * The held policy for one policy call: its parameters stay valid until done(), even if a newer version is swapped
   * in meanwhile. Throws when none is held.
   */
  use(): PolicyUse {
    const h = this.holding;
    if (!h) throw new Error('no policy version is held yet');
    h.users++;
    let done = false;
    return {
      policy: h.policy,
      done: () => {
        if (done) throw new Error(`policy v${h.policy.version}: done() called twice`);
        done = true;
        h.users--;
        this.maybeRelease(h);
      },
    };
  }

  private maybeRelease(h: Holding): void {
    if (h.replaced && h.users === 0) h.release();
  }

  /** Starts following announcements; the newest existing one is noted first. */
  async start(): Promise<void> {
    const latest = await this.store.latest();
    if (latest) this.note(latest);
    this.watch = await this.store.watch({
      onInvalid: (e) => this.ctx.log.warn(`ignoring a checkpoint announcement: ${e.message}`),
      // announcements missed during a partition, whose checkpoints were pruned since: the newest follows
      // a reconnect's catch-up read that failed: the worker follows from the next announcement
      onCatchUpError: (e) => this.ctx.log.warn(e.message),
      onSuperseded: (ann) => this.ctx.log.debug?.(`skipping the announcement of v${ann.version}: its checkpoint was pruned and newer announcements follow`),
    });
    const w = this.watch;
    this.watching = (async () => {
      try {
        for await (const ann of w) {
          trace('announced', { version: ann.version });
          if (this.note(ann)) this.onAnnouncement();
        }
      } catch (e) {
        if (!this.ctx.stopping) this.ctx.log.warn(`checkpoint watch ended: ${(e as Error).message}`);
      }
    })();
  }

  /** Records an announcement; true when it is newer than anything seen. */
  note(ann: Announcement): boolean {
    if (this.newest && ann.version <= this.newest.version) return false;
    this.newest = ann;
    return true;
  }

  /** Newest announced version (verified or not). */
  get announcedVersion(): number | undefined {
    return this.newest?.version;
  }

  /** A newer announced checkpoint worth fetching now (not refused, not in a transient-failure back-off). */
  hasCandidate(): boolean {
    const n = this.newest;
    if (!n || (this.current && n.version <= this.current.version)) return false;
    if (this.refused.has(key(n))) return false;
    return Date.now() >= this.retryAt;
  }

  /** Asks the store for its newest announcement (the watch may lag behind a Welcome or a task). */
  async refresh(): Promise<void> {
    try {
      const latest = await this.store.latest();
      if (latest) this.note(latest);
    } catch (e) {
      this.ctx.log.warn(`reading the latest checkpoint failed: ${(e as Error).message}`);
    }
  }

  /** Fetches, verifies and swaps to the newest announced checkpoint. True when the held version changed. */
  swapToNewest(): Promise<boolean> {
    return (this.fetching ??= this.doSwap().finally(() => (this.fetching = undefined)));
  }

  private async doSwap(): Promise<boolean> {
    if (!this.hasCandidate()) return false;
    const ann = this.newest!;
    trace('swap_start', { version: ann.version });
    try {
      // views of the fetched bytes: this worker never writes its parameters (they are graph feeds)
      // reuse: this follower releases each version it replaces, so the store receives the next ones in reused buffers
      const ckpt = await fetchCheckpoint(this.store, ann, { runId: this.ctx.runId, shapes: this.shapes, baseDigest: this.baseDigest, views: true, reuse: true });
      const old = this.holding;
      this.holding = { policy: { version: ann.version, params: ckpt.params, digest: ann.digest }, release: ckpt.release, users: 0, replaced: false };
      if (old) {
        old.replaced = true;
        this.maybeRelease(old);
      }
      trace('swap_end', { version: ann.version });
      this.ctx.metrics.get('policy_version').set(ann.version);
      this.ctx.log.info(`now at policy version ${ann.version}`, { digest: ann.digest });
      return true;
    } catch (e) {
      const reason = e instanceof CheckpointIntegrityError || (e instanceof CheckpointError && e.field === 'digest')
        ? 'integrity'
        : e instanceof CheckpointError
          ? 'invalid'
          : 'unavailable';
      this.ctx.metrics.get('checkpoint_fetch_failures_total').inc({ reason });
      const msg = (e as Error).message;
      if (reason === 'unavailable') {
        this.retryAt = Date.now() + TRANSIENT_RETRY_MS;
        this.ctx.log.warn(`cannot fetch checkpoint v${ann.version} (will retry): ${msg}`);
      } else {
        if (e instanceof CheckpointError && e.field === BASE_DIGEST_KEY) this.baseMismatch = msg;
        this.refused.set(key(ann), msg);
        this.ctx.log.error(`refused checkpoint v${ann.version} (${reason}); keeping version ${this.current?.version ?? 'none'}: ${msg}`);
      }
      return false;
    }
  }

  /** Why the newest announcement was refused, if it was. */
  refusal(): string | undefined {
    return this.newest ? this.refused.get(key(this.newest)) : undefined;
  }

  async stop(): Promise<void> {
    await this.watch?.stop().catch(() => {});
    await this.watching;
    await this.fetching?.catch(() => {});
    // the held version's buffer is not released: a policy call may still read it while the worker winds down
  }
}

const key = (a: Announcement) => `${a.version}:${a.digest}`;
