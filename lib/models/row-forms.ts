// The GRPO graph in its two forms (graph/shared-rows.ts), chosen per batch: with shared rows when the batch repeats
// images (a GRPO group's G rows: the network runs once per image), plain when every row is its own. There the
// shared form's Gathers only copy every activation the backward reads back onto the same rows: 1.06x the plain
// graph's CPU on 32 distinct images at 128 px (docs/performance-history/grpo-step.md, "Round 13: rows13"). Both forms give the same
// bytes (test/models/shared-rows.test.ts), so the choice never changes a result. The policy forward keeps the
// shared form alone (runner.ts): its only Gather back is the output's.
import { GraphSession, type Feeds, type SessionOptions } from '../graph/runtime.ts';
import { DISTINCT_ROWS } from '../graph/shared-rows.ts';
import { sharedRowFeeds } from './feeds.ts';

export type RowForm = 'shared' | 'plain';

/** The form for `n` images [n,...] and, for the shared one, its row feeds. */
export function rowFormOf(images: Float32Array, n: number): { form: RowForm; feeds: Feeds } {
  const rows = sharedRowFeeds(images, n);
  return rows[DISTINCT_ROWS]!.dims[0]! < n ? { form: 'shared', feeds: rows } : { form: 'plain', feeds: {} };
}

/** One graph's sessions, each form's created by its first batch (or `prepare`). */
export class RowForms {
  private readonly sessions: Partial<Record<RowForm, Promise<GraphSession>>> = {};

  /** `build(sharedRows)`: the graph's bytes in that form; `options`: its sessions' (batch-shards.ts gives each lane its own). */
  constructor(
    private readonly build: (sharedRows: boolean) => Uint8Array,
    private readonly options: Omit<SessionOptions, 'name'>,
  ) {}

  /** The session of `form`; a failed creation is tried again by the next call. */
  session(form: RowForm): Promise<GraphSession> {
    let s = this.sessions[form];
    if (!s) {
      s = GraphSession.create(this.build(form === 'shared'), { ...this.options, name: `GRPO step (${form} rows)` });
      this.sessions[form] = s;
      s.catch(() => delete this.sessions[form]);
    }
    return s;
  }

  /** Runs `feeds` for `n` images [n,...] in the form they call for. */
  async run(images: Float32Array, n: number, feeds: Feeds) {
    const { form, feeds: rows } = rowFormOf(images, n);
    return (await this.session(form)).run({ ...feeds, ...rows });
  }

  /** The forms whose session exists or is being created. */
  created(): RowForm[] {
    return (Object.keys(this.sessions) as RowForm[]).sort();
  }

  async release(): Promise<void> {
    for (const s of Object.values(this.sessions)) await (await s.catch(() => undefined))?.release();
  }
}
