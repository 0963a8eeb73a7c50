/**
 * The C allocator's setting the pacer runs with (ARCHITECTURE.md, "The C allocator's threshold").
 *
 * glibc's malloc serves an allocation of 128 KB or more with an mmap of its own, and gives it back
 * to the system when it is freed, but it raises that threshold to the size of every such block
 * freed (up to 32 MB). The pacer frees large transient buffers (message batches, request bodies)
 * while it allocates its long-lived column chunks (272 KB each): past the first, the chunks come
 * from the arenas between the buffers, and the arenas keep the holes the buffers leave. Setting the
 * threshold fixes it at 128 KB. It must be in the environment before node starts: glibc reads it
 * once, before any JavaScript runs, so `npm start` and the image set it, and the benchmarks start
 * the pacer with it. Other C libraries (musl) ignore it.
 */
export const allocatorEnv: Readonly<Record<string, string>> = Object.freeze({ MALLOC_MMAP_THRESHOLD_: '131072' });

/** The allocator settings missing from an environment (the pacer logs them at startup). */
export function missingAllocatorEnv(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(allocatorEnv)
    .filter(([k, v]) => env[k] !== v)
    .map(([k, v]) => `${k}=${v}`);
}
