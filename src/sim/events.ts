import { MinHeap } from '../../shards/heap.js';
import type { ScheduledFault } from './faults.js';

/**
 * The simulator's future: win notices, loss notices, the shard's timers and scheduled faults, in a binary min-heap
 * ordered by time and then by the order they were scheduled, so equal times replay identically.
 */
export type SimEvent =
  | { kind: 'spend'; t: number; seq: number; requestId: string; eventId: string; amount: number; resent?: boolean }
  | { kind: 'release'; t: number; seq: number; requestId: string }
  | { kind: 'timer'; t: number; seq: number; fn: () => void; cancelled: boolean }
  | { kind: 'fault'; t: number; seq: number; fault: ScheduledFault };

export class EventQueue {
  private readonly heap = new MinHeap<SimEvent>(before);
  private seq = 0;

  get size(): number {
    return this.heap.size;
  }

  /** Time of the earliest event, or Infinity. */
  peekTime(): number {
    return this.heap.peek()?.t ?? Infinity;
  }

  peek(): SimEvent | undefined {
    return this.heap.peek();
  }

  nextSeq(): number {
    return this.seq++;
  }

  push(e: SimEvent): void {
    this.heap.push(e);
  }

  pop(): SimEvent | undefined {
    return this.heap.pop();
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}
