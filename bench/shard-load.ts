import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import type { CounterStore, ShardPorts } from '../shards/ports.js';
import { sfc32 } from '../shards/rng.js';
import { Shard } from '../shards/shard.js';
import { parseCampaign } from '../src/model/campaign.js';
import { MemoryStore } from '../src/store/memory.js';
import { RedisCounterStore } from '../src/store/redis.js';
import { dropRedisPrefix, redisUrl, uniqueName } from '../test/helpers/services.js';

/**
 * node dist/bench/shard-load.js [--campaigns N --store memory|redis --one-by-one]
 *
 * The shard's part of startup, in process: N EVEN campaigns given to one Shard in the batches the
 * admin sends (Shard.loadMany, limits.adminLoadBatchCampaigns), with the memory store or the
 * machine's Redis (an empty key prefix of this run's own). --one-by-one hides the store's
 * loadMany, so each campaign is read on its own as before batching. Prints µs per campaign.
 */
const { values } = parseArgs({
  options: {
    campaigns: { type: 'string', default: '20000' },
    store: { type: 'string', default: 'memory' },
    'one-by-one': { type: 'boolean', default: false },
  },
});
const n = Number(values.campaigns);
const prefix = `${uniqueName('shardload')}:`;
const redis = values.store === 'redis' ? new Redis(redisUrl) : null;
const store: CounterStore = redis === null ? new MemoryStore() : new RedisCounterStore(redis, { prefix, counterTtlSeconds: 60, label: 'bench' });
if (values['one-by-one']) (store as { loadMany?: unknown }).loadMany = undefined;
const ports: ShardPorts = {
  clock: { now: Date.now },
  random: sfc32(1),
  timers: { after: () => () => {} },
  store,
  sendResults: () => {},
  emit: () => {},
  batchIdPrefix: 'shard-load',
};
const shard = new Shard(ports, { reservationTtlMs: 60_000, flushIntervalMs: 0 });
const configs = Array.from({ length: n }, (_, i) => parseCampaign({ id: `load-${i}`, dailyBudgetMicros: 1_000_000_000, strategy: 'EVEN' }, 1));
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (let i = 0; i < n; i += 500) {
  const failed = await shard.loadMany(configs.slice(i, i + 500));
  if (failed.length > 0) throw new Error(`${failed.length} campaigns failed to load`);
}
const cpu = process.cpuUsage(cpu0);
const ms = performance.now() - t0;
console.log(JSON.stringify({
  bench: 'shard-load', campaigns: n, store: values.store, oneByOne: values['one-by-one'],
  ms: Math.round(ms), cpuMs: Math.round((cpu.user + cpu.system) / 1000), usPerCampaign: Math.round((ms * 1000 / n) * 10) / 10,
}));
if (redis !== null) {
  redis.disconnect();
  await dropRedisPrefix(redisUrl, prefix);
}
