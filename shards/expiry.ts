import type { Campaign } from './campaign.js';

export interface ExpiryEntry {
  campaign: Campaign;
  requestId: string;
  expiresAtMs: number;
}

/**
 * Reservations by expiry time, in a binary min-heap. Settled and released reservations stay in the
 * heap until their time comes and are then skipped (Campaign.expire checks that the reservation is
 * still the one queued), which is cheaper than deleting from the middle.
 */
export class ExpiryQueue {
  private readonly heap: ExpiryEntry[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(entry: ExpiryEntry): void {
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.expiresAtMs <= entry.expiresAtMs) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = entry;
  }

  /** Removes and returns the earliest entry due at nowMs, or undefined. */
  popDue(nowMs: number): ExpiryEntry | undefined {
    const h = this.heap;
    const top = h[0];
    if (top === undefined || top.expiresAtMs > nowMs) return undefined;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && h[r]!.expiresAtMs < h[l]!.expiresAtMs ? r : l;
        if (h[c]!.expiresAtMs >= last.expiresAtMs) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
