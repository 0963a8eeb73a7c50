import type { ShardPorts } from '../../shards/ports.js';
import { sfc32 } from '../../shards/rng.js';
import { Shard } from '../../shards/shard.js';
import { MemoryStore } from '../../src/store/memory.js';

/**
 * One Shard in the bench's own process, for figures of the shard alone (CPU per operation, heap per
 * campaign): the memory counter store, a seeded generator, the clock the caller moves, no timers
 * (nothing flushes on its own) and results dropped.
 */
export function inProcessShard(now: () => number, batchIdPrefix: string): Shard {
  const ports: ShardPorts = {
    clock: { now },
    random: sfc32(1),
    timers: { after: () => () => undefined },
    store: new MemoryStore(),
    sendResults: () => undefined,
    emit: () => undefined,
    batchIdPrefix,
  };
  return new Shard(ports, { reservationTtlMs: 60_000, flushIntervalMs: 0 });
}
