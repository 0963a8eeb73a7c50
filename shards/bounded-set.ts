/**
 * A set of at most `max` keys that forgets the oldest first, each step O(1): a Set for lookups
 * and a ring of the same keys in the order they came.
 *
 * Why not a Set alone, dropping `set.values().next().value` when full: V8's ordered hash tables
 * leave a deleted entry as a hole until the table is rebuilt, and an iterator walks every hole at
 * the front, so that eviction costs O(holes), up to about a third of the table. With the shard's
 * 100,000 remembered event IDs it was about a third of the shard's CPU under steady spend
 * (perf on the shard thread during `npm run bench:spend`; bench/README.md "Spend acknowledgement").
 *
 * `add` of a key already held leaves it where it is (first in, first out; not least recently used).
 * `delete` removes a key from the set and leaves its place in the ring: a key deleted and added
 * again may be forgotten earlier than `max` adds later. Callers use it only to take back a key
 * they added a moment before (a failed write), where forgetting early is safe.
 */
export class BoundedSet<K> {
  private readonly set = new Set<K>();
  private readonly ring: K[] = [];
  /** Index in the ring of the oldest key once the ring is full (the next to overwrite). */
  private head = 0;

  constructor(readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 0) throw new RangeError(`BoundedSet: max must be a non-negative integer (got ${max})`);
  }

  get size(): number {
    return this.set.size;
  }

  has(key: K): boolean {
    return this.set.has(key);
  }

  /** Adds key; returns the key forgotten to make room (so a caller can drop what it keyed), if any. */
  add(key: K): K | undefined {
    if (this.max === 0 || this.set.has(key)) return undefined;
    this.set.add(key);
    if (this.ring.length < this.max) {
      this.ring.push(key);
      return undefined;
    }
    const old = this.ring[this.head]!;
    this.ring[this.head] = key;
    this.head = this.head + 1 === this.max ? 0 : this.head + 1;
    // A key deleted (and not added again) is no longer in the set: nothing to forget then. The
    // oldest place may be this very key's, deleted and now added again: it takes its place anew.
    return old !== key && this.set.delete(old) ? old : undefined;
  }

  delete(key: K): boolean {
    return this.set.delete(key);
  }

  clear(): void {
    this.set.clear();
    this.ring.length = 0;
    this.head = 0;
  }
}
