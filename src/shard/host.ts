import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { limits } from '../../shards/limits.js';
import type { CounterStore, LoadRequest, ShardEvent, ShardPorts } from '../../shards/ports.js';
import { sfc32 } from '../../shards/rng.js';
import { Shard } from '../../shards/shard.js';
import type { PacerConfig } from '../config.js';
import { log } from '../log.js';
import type { AdminToShard, MainToShard, ShardToAdmin, ShardToMain } from '../messages.js';
import { shardRegistry } from '../metrics.js';
import { LeaseClient } from '../store/leases.js';
import { openCounterStore } from '../store/open.js';
import { LeaseKeeper } from './lease-keeper.js';
import { realTimers } from '../real-ports.js';

/**
 * The shard worker: plugs the real clock, a seeded generator, timers and the configured store into
 * the data-plane Shard (shards/shard.ts), and connects it to every router thread (a MessagePort
 * each: binary op batches in, binary results out, answered on the port the batch came from), to
 * the admin thread (its own MessagePort: configuration, status, summaries) and to main
 * (parentPort: readiness, health, shutdown).
 */
interface ShardWorkerData {
  index: number;
  config: PacerConfig;
  adminPort: MessagePort;
  /** One per router thread, by router index (the origin of its batches). */
  routerPorts: MessagePort[];
}

const { index, config, adminPort, routerPorts } = workerData as ShardWorkerData;
const main = parentPort!;

function toMain(msg: ShardToMain): void {
  main.postMessage(msg);
}

function toAdmin(msg: ShardToAdmin): void {
  adminPort.postMessage(msg);
}

function fatal(err: unknown): never {
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  log('error', 'shard stopped on a broken invariant', { shard: index, error: message });
  toMain({ type: 'fatal', message });
  process.exit(70);
}

const opened = await openCounterStore(config, index, adminPort, (degraded, reason) =>
  toMain({ type: 'degraded', degraded, reason }),
);
const store: CounterStore = timedStore(opened.store);
const seed = randomBytes(16);
const ports: ShardPorts = {
  clock: { now: Date.now },
  random: sfc32(seed.readUInt32LE(0), seed.readUInt32LE(4), seed.readUInt32LE(8), seed.readUInt32LE(12)),
  timers: realTimers,
  store,
  sendResults(results, origin) {
    routerPorts[origin]!.postMessage(results, [results]);
  },
  emit(event: ShardEvent) {
    if (event.type === 'fault') log('warn', event.message, { shard: index });
    toAdmin({ type: 'event', shard: index, event });
  },
  batchIdPrefix: `${config.instanceId}:${index}`,
};
const shard = new Shard(ports, {
  reservationTtlMs: config.reservationTtlMs,
  flushIntervalMs: config.flushIntervalMs,
  reservationsPerCampaignMax: config.reservationsPerCampaignMax,
  reservationsPerShardMax: config.reservationsPerShardMax,
  eventIdsRememberedMax: config.eventIdsRememberedMax,
  awaitCatalogue: true,
  leases: config.leases,
  spooling: () => opened.resilient?.spooling ?? false,
});
// Budget leases (PACER_LEASES): kept in the background on the shard's own Redis connection.
const leaseKeeper =
  config.leases && opened.redis
    ? new LeaseKeeper(shard, new LeaseClient(opened.redis, config.redisKeyPrefix, config.counterTtlSeconds, config.redisWaitReplicas), ports.clock, ports.timers, {
        holder: `${config.instanceId}:${index}`,
        reservationTtlMs: config.reservationTtlMs,
        spooling: () => opened.resilient?.spooling ?? false,
        onFault: (message) => log('warn', message, { shard: index }),
      })
    : null;
if (config.leases && leaseKeeper === null) fatal(new Error('PACER_LEASES=on without a Redis connection'));
leaseKeeper?.start();
const metrics = shardRegistry(
  index,
  shard,
  () => opened.resilient?.spooling ?? false,
  () => opened.resilient?.spoolBytes ?? 0,
);

/** The store as the shard sees it, with every flush's duration observed for the metrics. */
function timedStore(inner: CounterStore): CounterStore {
  return {
    kind: inner.kind,
    async apply(batch) {
      const started = performance.now();
      try {
        return await inner.apply(batch);
      } finally {
        metrics.flushSeconds.observe({ shard: String(index) }, (performance.now() - started) / 1000);
      }
    },
    load: (campaignId, day, flightStartDay) => inner.load(campaignId, day, flightStartDay),
    ...(inner.loadMany !== undefined ? { loadMany: (requests: readonly LoadRequest[]) => inner.loadMany!(requests) } : {}),
    close: () => inner.close(),
  };
}
if (opened.resilient !== null) {
  opened.resilient.onLateDuplicate = (campaignId, day, amountMicros) => {
    try {
      shard.revertLateDuplicate(campaignId, day, amountMicros);
    } catch (err) {
      fatal(err);
    }
  };
}
const sweeper = setInterval(() => {
  try {
    shard.sweep();
  } catch (err) {
    fatal(err);
  }
}, limits.reservationSweepMs);

routerPorts.forEach((port, origin) => {
  port.on('message', (msg: ArrayBuffer) => {
    let out: ArrayBuffer;
    try {
      out = shard.handleOps(msg, origin);
    } catch (err) {
      fatal(err);
    }
    port.postMessage(out, [out]);
  });
});

main.on('message', (msg: MainToShard) => {
  switch (msg.type) {
    case 'shutdown':
      void shutdown();
      break;
    default: {
      const bad: never = msg.type;
      log('warn', 'unknown message from main', { type: String(bad) });
    }
  }
});

adminPort.on('message', (msg: AdminToShard) => {
  if (msg.type === 'storeReply') {
    opened.forwarding?.onReply(msg);
    return;
  }
  void handleAdmin(msg).catch((err: unknown) =>
    toAdmin({ type: 'reply', corr: msg.corr, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});

async function handleAdmin(msg: Exclude<AdminToShard, { type: 'storeReply' }>): Promise<void> {
  switch (msg.type) {
    case 'upsert':
      await shard.upsert(msg.config);
      toAdmin({ type: 'reply', corr: msg.corr, ok: true, value: shard.status(msg.config.id) });
      return;
    case 'load':
      toAdmin({ type: 'reply', corr: msg.corr, ok: true, value: await shard.loadMany(msg.configs) });
      return;
    case 'status':
      toAdmin({ type: 'reply', corr: msg.corr, ok: true, value: shard.status(msg.campaignId) });
      return;
    case 'resetBreaker':
      toAdmin({ type: 'reply', corr: msg.corr, ok: true, value: shard.resetBreaker(msg.campaignId) });
      return;
    case 'budget':
      toAdmin({ type: 'reply', corr: msg.corr, ok: true, value: shard.setBudget(msg.config, msg.floor) });
      return;
    case 'summaries':
      toAdmin({ type: 'reply', corr: msg.corr, ok: true, value: shard.summaries() });
      return;
    case 'metrics':
      toAdmin({ type: 'reply', corr: msg.corr, ok: true, value: await metrics.registry.getMetricsAsJSON() });
      return;
    case 'profiles':
      toAdmin({ type: 'reply', corr: msg.corr, ok: true, value: await shard.loadProfiles(msg.profiles, msg.global) });
      return;
    case 'catalogueLoaded':
      shard.catalogueLoaded();
      toAdmin({ type: 'reply', corr: msg.corr, ok: true, value: null });
      return;
    default: {
      const bad: never = msg;
      throw new Error(`unknown admin message ${JSON.stringify(bad)}`);
    }
  }
}

async function shutdown(): Promise<void> {
  clearInterval(sweeper);
  try {
    await shard.drain();
    shard.flusher.close();
    // After the last flush: what it acknowledged is reported, the unreserved rest returned.
    await leaseKeeper?.stop();
    await store.close();
  } catch (err) {
    log('error', 'shard drain failed', { shard: index, error: String(err) });
  }
  toAdmin({ type: 'finalSummaries', shard: index, summaries: shard.summaries() });
  toMain({ type: 'drained' });
  adminPort.close();
  for (const port of routerPorts) port.close();
  main.close();
}

toMain({ type: 'ready' });
