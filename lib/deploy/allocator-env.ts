// glibc malloc settings for every Node role (the Dockerfiles' ENV, the Kubernetes manifests, the local run's
// spawned roles, the data benchmark's child). Why: image buffers (a 256x256 RGB image is 192 KiB, libvips' float
// intermediates 768 KiB) are above glibc's default mmap threshold (128 KiB, raised dynamically only up to the
// size last freed) and freed heap tops are trimmed back to the kernel, so each sharp call faulted fresh pages in:
// 0.4-0.8 ms of CPU per call at 256x256 (decode 1.5 -> 1.1 ms, a 3x3 convolve 1.25 -> 1.0 ms;
// docs/performance-history/corruption.md, round 6). With a fixed 4 MiB threshold and 32 MiB before trimming, those buffers are
// reused from the heap. Cost: up to 32 MiB of freed memory kept per malloc arena. glibc reads them at start-up
// only, so they go into a process's environment before it starts; musl and other allocators ignore them.

export const ALLOCATOR_ENV: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_MMAP_THRESHOLD_: String(4 << 20),
  MALLOC_TRIM_THRESHOLD_: String(32 << 20),
});

/** The allocator settings that `env` does not set itself (an operator's own value wins). */
export function allocatorEnvFor(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(ALLOCATOR_ENV).filter(([k]) => env[k] === undefined));
}
