import type { Reservation } from './campaign.js';

/**
 * The shard's live reservations by expiry time: a binary min-heap of the reservations themselves,
 * each knowing its place in it (`slot`), so that a reservation settled or released leaves the
 * queue at once (O(log n)). Before, the queue held an entry per reservation (an object, its boxed
 * expiry time and the request ID) until its time came, 60 s by default, settled or not
 * (bench/README.md, "The embedded default at a million campaigns").
 *
 * Campaigns push and remove (Campaign.allow, restoreReservation, dropReservation); the shard pops
 * what is due (Shard.sweep).
 */
export class ExpiryQueue {
  private readonly items: Reservation[] = [];

  get size(): number {
    return this.items.length;
  }

  push(r: Reservation): void {
    if (r.slot >= 0) return;
    this.items.push(r);
    this.up(this.items.length - 1, r);
  }

  /** Takes r out of the queue; nothing when it is not queued. */
  remove(r: Reservation): void {
    const i = r.slot;
    const h = this.items;
    if (i < 0 || h[i] !== r) return;
    r.slot = -1;
    const last = h.pop()!;
    if (last === r) return;
    // The last item fills the hole, then moves up or down to where it belongs.
    if (i > 0 && last.expiresAtMs < h[(i - 1) >> 1]!.expiresAtMs) this.up(i, last);
    else this.down(i, last);
  }

  /** Removes and returns the earliest reservation due at nowMs, or undefined. */
  popDue(nowMs: number): Reservation | undefined {
    const top = this.items[0];
    if (top === undefined || top.expiresAtMs > nowMs) return undefined;
    this.remove(top);
    return top;
  }

  private up(i: number, r: Reservation): void {
    const h = this.items;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent]!;
      if (!(r.expiresAtMs < p.expiresAtMs)) break;
      h[i] = p;
      p.slot = i;
      i = parent;
    }
    h[i] = r;
    r.slot = i;
  }

  private down(i: number, r: Reservation): void {
    const h = this.items;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const right = l + 1;
      const c = right < n && h[right]!.expiresAtMs < h[l]!.expiresAtMs ? right : l;
      const child = h[c]!;
      if (!(child.expiresAtMs < r.expiresAtMs)) break;
      h[i] = child;
      child.slot = i;
      i = c;
    }
    h[i] = r;
    r.slot = i;
  }
}
