import { MinHeap } from '../../shards/heap.js';
import type { Clock, Timers } from '../../shards/ports.js';

/**
 * A virtual clock with its timers, for tests of the code outside shards/ that takes the Clock and
 * Timers ports (the resilient store). Time moves only through advance(), which fires every timer
 * due in order and lets the promise work each one starts finish before the next, so a test that
 * waits for a deadline or a breaker's probe does not sleep and replays exactly.
 */
interface Pending {
  t: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class VirtualTime implements Clock, Timers {
  private nowMs: number;
  private seq = 0;
  private readonly heap = new MinHeap<Pending>((a, b) => a.t < b.t || (a.t === b.t && a.seq < b.seq));

  constructor(startMs = 0) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  after(delayMs: number, fn: () => void): () => void {
    const p: Pending = { t: this.nowMs + Math.max(0, Math.ceil(delayMs)), seq: this.seq++, fn, cancelled: false };
    this.heap.push(p);
    return () => {
      p.cancelled = true;
    };
  }

  /** Moves time forward by ms, firing the timers due on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.nowMs + ms;
    await settle();
    for (let p = this.heap.peek(); p !== undefined && p.t <= end; p = this.heap.peek()) {
      this.heap.pop();
      this.nowMs = Math.max(this.nowMs, p.t);
      if (!p.cancelled) p.fn();
      await settle();
    }
    this.nowMs = end;
  }

  /** Advances in steps of stepMs until cond holds; throws after maxMs of virtual time. */
  async until(cond: () => boolean, stepMs = 10, maxMs = 60_000): Promise<void> {
    for (let waited = 0; !cond(); waited += stepMs) {
      if (waited >= maxMs) throw new Error(`condition not met within ${maxMs} virtual ms`);
      await this.advance(stepMs);
    }
  }
}

/**
 * Lets every promise chain started so far run to its end: the work behind the ports is in-memory
 * (memory store, memory file system), so it completes in microtasks, all of which run before the
 * event loop's next check phase.
 */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
