import type { Timers } from '../shards/ports.js';

/**
 * The real timers, for the code outside shards/ that takes the same Timers port as the shard (the
 * resilient store's deadlines and probe): production plugs these in, the simulator its own.
 */
export const realTimers: Timers = {
  after(delayMs, fn) {
    // 0 means "at the end of this event-loop turn" (setTimeout would round it up to 1 ms).
    if (delayMs <= 0) {
      const i = setImmediate(fn);
      return () => clearImmediate(i);
    }
    const t = setTimeout(fn, delayMs);
    return () => clearTimeout(t);
  },
};
