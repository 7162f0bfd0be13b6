// Where the learner keeps its optimizer state: a JetStream object store of its own (`learner-<runId>`),
// which no follower opens. One object per version (`optim-v0000000042`, lib/checkpoint/optimizer-state.ts),
// written BEFORE the checkpoint of that version is published, so every published checkpoint has its moments
// (a kill -9 between the two leaves moments for an unpublished version, which the re-applied batch
// overwrites). Only the newest two are kept.
import type { NatsConnection, ObjectStore } from 'nats';
import { StorageType } from 'nats';
import { ensureStream } from '../transport/index.ts';
import { decodeOptimizerState, encodeOptimizerState, type OptimizerStateFile } from '../checkpoint/optimizer-state.ts';
import type { TensorMap } from '../checkpoint/tensors.ts';

const objectName = (version: number) => `optim-v${String(version).padStart(10, '0')}`;
const KEEP = 2;

export class LearnerStateStore {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly os: ObjectStore,
    readonly bucket: string,
    private readonly options: { storage: StorageType; description: string },
  ) {}

  static async open(nc: NatsConnection, runId: string): Promise<LearnerStateStore> {
    const bucket = `learner-${runId}`;
    const options = { storage: StorageType.File, description: `recovery-grpo learner optimizer state of run ${runId}` };
    return new LearnerStateStore(nc, await nc.jetstream().views.os(bucket, options), bucket, options);
  }

  /** Re-creates the bucket when the server lost it (lib/transport/store-loss.ts); true when it did. */
  async recreate(): Promise<boolean> {
    return ensureStream(await this.nc.jetstreamManager(), `OBJ_${this.bucket}`, () => this.nc.jetstream().views.os(this.bucket, this.options));
  }

  /** Stores the moments of `f.version` (replacing any earlier attempt at that version); returns the bytes written. */
  async put(f: OptimizerStateFile): Promise<number> {
    const { bytes } = encodeOptimizerState(f);
    await this.os.putBlob({ name: objectName(f.version) }, bytes);
    return bytes.length;
  }

  /** The moments of checkpoint `version` (digest `checkpointDigest`, parameters `params`), or null when none were stored. */
  async get(version: number, checkpointDigest: string, params: TensorMap): Promise<OptimizerStateFile | null> {
    const name = objectName(version);
    const bytes = await this.os.getBlob(name);
    if (!bytes) return null;
    return decodeOptimizerState(bytes, { checkpointDigest, params, source: `${this.bucket}/${name}` });
  }

  /** Deletes all but the newest KEEP versions at or below `latest`. */
  async prune(latest: number): Promise<void> {
    for (const info of await this.os.list()) {
      const v = /^optim-v(\d+)$/.exec(info.name)?.[1];
      if (v !== undefined && !info.deleted && Number(v) <= latest - KEEP) await this.os.delete(info.name);
    }
  }
}
