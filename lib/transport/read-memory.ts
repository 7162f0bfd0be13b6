// The memory of socket reads handed back at once: a minor GC (scavenge) after every MiB that the process's NATS
// connections read (nats-payload.ts calls noteReceived from nats.js's parser).
//
// Why: Node reads a socket into a fresh buffer per read (up to 64 KiB, malloc'd), freed only when V8 collects the
// Buffer object, at a scavenge. nats.js copies a large message's reads into the message's buffer and drops them, but
// a process that allocates few JavaScript objects between checkpoints (a follower waiting for the next one) goes many
// checkpoints without a scavenge, so its reads keep landing in memory the kernel must fault in: on this kind of VM
// ~15 µs per 4 KiB page, ~4 ms per MB, against 0.6 ms per MB for sha256 (docs/performance-history/broadcast.md "Round 9: bcast9"). A
// scavenge after each MiB read frees the dead reads, and the next ones reuse that memory (malloc keeps it).
//
// A scavenge with little young and alive costs ~0.05 ms; it runs from setImmediate, after the reads in hand are
// parsed, never inside nats.js's parser. V8 offers no GC call without --expose-gc: the flag is set for an instant to
// take `gc` from a new context (as test runners' leak detectors do) and cleared again; where that fails nothing
// happens but the page faults.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (opts: { type: 'minor' | 'major' }) => void;

/** Bytes received between two scavenges. */
export const SCAVENGE_EVERY = 1 << 20;

let gc: Gc | null | undefined;
let settled = false;
let received = 0;
let scheduled = false;

/** V8's gc function (undefined when it cannot be had). */
export function v8Gc(): Gc | undefined {
  if (gc === undefined) {
    const exposed = (globalThis as { gc?: unknown }).gc;
    if (typeof exposed === 'function') {
      gc = exposed as Gc;
    } else {
      try {
        setFlagsFromString('--expose-gc');
        const f: unknown = runInNewContext('gc');
        gc = typeof f === 'function' ? (f as Gc) : null;
      } catch {
        gc = null;
      } finally {
        setFlagsFromString('--no-expose-gc');
      }
    }
  }
  return gc ?? undefined;
}

/**
 * Notes `bytes` read from a socket (and parsed: garbage unless a view of them is kept); past SCAVENGE_EVERY since the
 * last scavenge, one is scheduled (setImmediate, not keeping the process alive). True when this call scheduled one.
 */
export function noteReceived(bytes: number): boolean {
  received += bytes;
  if (received < SCAVENGE_EVERY || scheduled) return false;
  const collect = v8Gc();
  if (!collect) return false;
  scheduled = true;
  setImmediate(() => {
    scheduled = false;
    received = 0;
    collect({ type: 'minor' });
  }).unref();
  return true;
}

/**
 * A follower's join (CheckpointStore.watch): two scavenges now, once per process, so that the first pushed checkpoints
 * do not pay them. Why: in a follower that allocates little itself, noteReceived's scavenges are the first of the
 * process's life: the first copies what the process's start left alive in the young generation (module loading,
 * connecting; ~2 MB) into to-space pages never touched before, as V8 grows the young generation, and the second
 * promotes it to the old generation. Measured in a fresh follower: ~8-10 ms of CPU and 128 page faults, then 1.6-3 ms
 * and 33-109 faults, then 0.2 ms and none for every later one (docs/performance-history/broadcast.md "Round 14: bcast14"). Done here
 * they cost the same once, before any checkpoint waits on them. True when this call ran them.
 */
export function settleYoungGeneration(): boolean {
  if (settled) return false;
  const collect = v8Gc();
  if (!collect) return false;
  settled = true;
  collect({ type: 'minor' });
  collect({ type: 'minor' });
  return true;
}
