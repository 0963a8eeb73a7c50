import { join } from 'node:path';
import type { MessagePort } from 'node:worker_threads';
import { limits } from '../../shards/limits.js';
import type { CounterStore } from '../../shards/ports.js';
import type { PacerConfig } from '../config.js';
import { realTimers } from '../real-ports.js';
import { ForwardingCounterStore } from './forward.js';
import { MemoryStore } from './memory.js';
import { openConfiguredRedis, type RedisClient, RedisCounterStore, whenReady } from './redis.js';
import { ResilientCounterStore } from './resilient.js';
import { nodeSpoolFs, spoolDir, spoolFileName } from './spool.js';

export interface OpenedCounterStore {
  store: CounterStore;
  /** Set when the store sits behind a spool: replay corrections go through it. */
  resilient: ResilientCounterStore | null;
  /** Set for the embedded store: the shard host routes storeReply messages to it. */
  forwarding: ForwardingCounterStore | null;
  /** The Redis connection of a redis store (the lease keeper shares it); null for other stores. */
  redis?: RedisClient | null;
}

/**
 * Opens the counter store a shard writes to, as configured:
 * - redis: its own ioredis connection (a Cluster client for PACER_REDIS_CLUSTER), behind a deadline, a breaker and a spool file;
 * - embedded: the admin thread's database over the admin port, behind the same;
 * - memory: process memory, lost on exit (PACER_STORE=memory, an explicit opt-in).
 */
export async function openCounterStore(
  config: PacerConfig,
  shard: number,
  adminPort: MessagePort,
  onDegraded: (degraded: boolean, reason: string) => void,
): Promise<OpenedCounterStore> {
  const spooled = (inner: CounterStore, callTimeoutMs: number): ResilientCounterStore =>
    new ResilientCounterStore(inner, {
      label: `shard ${shard}`,
      callTimeoutMs,
      probeIntervalMs: limits.storeProbeIntervalMs,
      spoolPath: join(spoolDir(config.dataDir), spoolFileName(config.instanceId, shard)),
      spoolBytesMax: limits.spoolBytesMax,
      dedupeEventsMax: limits.spoolDedupeEventsMax,
      onDegraded,
      timers: realTimers,
      files: nodeSpoolFs,
    });
  switch (config.store) {
    case 'memory':
      return { store: new MemoryStore(), resilient: null, forwarding: null };
    case 'embedded': {
      const forwarding = new ForwardingCounterStore(adminPort);
      const resilient = spooled(forwarding, limits.embeddedCallTimeoutMs);
      return { store: resilient, resilient, forwarding };
    }
    case 'redis': {
      const client = openConfiguredRedis(config, `shard ${shard}`);
      // Not fatal when Redis is down at start: loads fail (and are retried by the admin) until it is up.
      await whenReady(client, 2_000);
      const inner = new RedisCounterStore(client, {
        prefix: config.redisKeyPrefix,
        counterTtlSeconds: config.counterTtlSeconds,
        label: `shard ${shard}`,
        waitReplicas: config.redisWaitReplicas,
        reservationTtlMs: config.reservationTtlMs,
      });
      const resilient = spooled(inner, limits.redisCallTimeoutMs);
      return { store: resilient, resilient, forwarding: null, redis: client };
    }
    default: {
      const bad: never = config.store;
      throw new Error(`unknown store ${String(bad)}`);
    }
  }
}
