import type { Campaign } from './campaign.js';
import { MinHeap } from './heap.js';

export interface ExpiryEntry {
  campaign: Campaign;
  requestId: string;
  expiresAtMs: number;
}

/**
 * Reservations by expiry time. Settled and released reservations stay queued until their time
 * comes and are then skipped (Campaign.expire checks that the reservation is still the one queued),
 * which is cheaper than deleting from the middle of the heap.
 */
export class ExpiryQueue {
  private readonly heap = new MinHeap<ExpiryEntry>((a, b) => a.expiresAtMs < b.expiresAtMs);

  get size(): number {
    return this.heap.size;
  }

  push(entry: ExpiryEntry): void {
    this.heap.push(entry);
  }

  /** Removes and returns the earliest entry due at nowMs, or undefined. */
  popDue(nowMs: number): ExpiryEntry | undefined {
    const top = this.heap.peek();
    if (top === undefined || top.expiresAtMs > nowMs) return undefined;
    return this.heap.pop();
  }
}
