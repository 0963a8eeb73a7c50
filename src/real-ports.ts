import type { Clock, Timers } from '../shards/ports.js';

/**
 * The real clock and timers, for the code outside shards/ that takes the same ports as the shard
 * (the resilient store, the spool's replayer): production plugs these in, the simulator its own.
 */
export const realClock: Clock = { now: Date.now };

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
