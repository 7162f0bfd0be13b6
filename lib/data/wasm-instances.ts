// The data pipeline's WebAssembly modules (lib/data/wasm, round 18) are loaded alike: compiled at the first call, not
// at import (a process, or a bundle without the file beside it, that never calls one never reads it), with one
// instance kept across calls and, for a large image (the callers: above KEEP_SCRATCH_ELEMENTS values), an instance of
// its own, dropped after the call (wasm memory never shrinks). A leaf module: the callers import it at load time from
// filters.ts's import cycle.
import { readFileSync } from 'node:fs';

/** What every module exports: its memory and the first byte the caller may use. */
export interface WasmExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
}

/** The module at `url` (exports typed as T): its kept instance, or with `own` a new one for one call. */
export function wasmInstances<T extends WasmExports>(url: URL): (own: boolean) => T {
  let compiled: WebAssembly.Module | undefined;
  let kept: T | undefined;
  const instantiate = () => {
    compiled ??= new WebAssembly.Module(readFileSync(url));
    return new WebAssembly.Instance(compiled, {}).exports as unknown as T;
  };
  return (own) => (own ? instantiate() : (kept ??= instantiate()));
}

/** n rounded up to a multiple of 16 (a v128's alignment). */
export const align16 = (n: number): number => (n + 15) & ~15;

/** The instance's memory grown to at least `end` bytes; its buffer (a new one after growing). */
export function memoryUpTo(m: WasmExports, end: number): ArrayBuffer {
  const have = m.memory.buffer.byteLength;
  if (end > have) m.memory.grow(Math.ceil((end - have) / 65536));
  return m.memory.buffer;
}
