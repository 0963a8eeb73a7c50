/**
 * The simulator's future: win notices, loss notices and the shard's timers, in a binary min-heap
 * ordered by time and then by the order they were scheduled, so equal times replay identically.
 */
export type SimEvent =
  | { kind: 'spend'; t: number; seq: number; requestId: string; eventId: string; amount: number }
  | { kind: 'release'; t: number; seq: number; requestId: string }
  | { kind: 'timer'; t: number; seq: number; fn: () => void; cancelled: boolean };

export class EventQueue {
  private readonly heap: SimEvent[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Time of the earliest event, or Infinity. */
  peekTime(): number {
    return this.heap[0]?.t ?? Infinity;
  }

  peek(): SimEvent | undefined {
    return this.heap[0];
  }

  nextSeq(): number {
    return this.seq++;
  }

  push(e: SimEvent): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(e, h[parent]!)) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = e;
  }

  pop(): SimEvent | undefined {
    const h = this.heap;
    const top = h[0];
    if (top === undefined) return undefined;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(h[r]!, h[l]!) ? r : l;
        if (!before(h[c]!, last)) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}
