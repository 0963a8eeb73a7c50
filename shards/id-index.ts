import type { Campaign } from './campaign.js';

/**
 * The slot of an ID: linear probing in an Int32Array of slot + 1 (0: empty), at most three quarters
 * full, keyed by a 32-bit hash of the ID's characters. The IDs themselves are the owner's (`idAt`);
 * slots are never removed. 4 to 8 bytes of cells a key, where a Map entry's table is in the heap.
 */
export class IdIndex {
  private cells = new Int32Array(1024);
  private count = 0;

  constructor(private readonly idAt: (slot: number) => string) {}

  get(id: string): number | undefined {
    const mask = this.cells.length - 1;
    for (let i = hashOf(id) & mask; ; i = (i + 1) & mask) {
      const v = this.cells[i]!;
      if (v === 0) return undefined;
      if (this.idAt(v - 1) === id) return v - 1;
    }
  }

  /** Indexes slot (its ID is idAt(slot), not indexed yet). */
  add(slot: number): void {
    if ((this.count + 1) * 4 > this.cells.length * 3) {
      const old = this.cells;
      this.cells = new Int32Array(old.length * 2);
      for (const v of old) if (v !== 0) this.place(v);
    }
    this.place(slot + 1);
    this.count++;
  }

  private place(v: number): void {
    const mask = this.cells.length - 1;
    let i = hashOf(this.idAt(v - 1)) & mask;
    while (this.cells[i] !== 0) i = (i + 1) & mask;
    this.cells[i] = v;
  }
}

/**
 * FNV-1a over the UTF-16 code units, then murmur3's finaliser: IDs that differ in one digit spread,
 * and so do the IDs of one shard, which all share fnv1a(id) modulo the shard count
 * (src/hash.ts) and would fill a fraction of the cells by FNV-1a alone.
 */
export function hashOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A shard's campaigns by ID (what a Map<string, Campaign> did, without deletes, which the shard
 * never makes: an archived campaign stays): the campaigns in an array, in the order they came,
 * found through an IdIndex. At a million campaigns: 18 MB less of the shard's heap, 8 MB more of
 * cells (bench/README.md, "The configuration in the row").
 */
export class CampaignIndex {
  private readonly list: Campaign[] = [];
  private readonly index = new IdIndex((slot) => this.list[slot]!.id);

  get size(): number {
    return this.list.length;
  }

  get(id: string): Campaign | undefined {
    const slot = this.index.get(id);
    return slot === undefined ? undefined : this.list[slot];
  }

  has(id: string): boolean {
    return this.index.get(id) !== undefined;
  }

  /** Adds a campaign, or replaces the one with its ID (in its place). */
  set(id: string, c: Campaign): void {
    if (c.id !== id) throw new Error(`campaign ${c.id} set under ${id}`);
    const slot = this.index.get(id);
    if (slot !== undefined) {
      this.list[slot] = c;
      return;
    }
    this.list.push(c);
    this.index.add(this.list.length - 1);
  }

  values(): IterableIterator<Campaign> {
    return this.list.values();
  }

  [Symbol.iterator](): IterableIterator<[string, Campaign]> {
    return this.list.map((c): [string, Campaign] => [c.id, c]).values();
  }
}
