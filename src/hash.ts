/**
 * Which shard owns a campaign: FNV-1a (32-bit) of the campaign ID's bytes, modulo the shard count.
 *
 * It is stable: the same ID maps to the same shard in every thread, process and restart, because it
 * depends on nothing but the ID's characters (unlike V8's seeded string hash). Changing
 * PACER_SHARDS moves campaigns between shards, which is safe: a shard loads a campaign's counters
 * from the store when it first receives its configuration. IDs are ASCII (validated), so char codes
 * are bytes. FNV-1a mixes short, similar IDs ('c1', 'c2', …) evenly across shards.
 */
export function fnv1a(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function shardOf(campaignId: string, shards: number): number {
  return fnv1a(campaignId) % shards;
}
