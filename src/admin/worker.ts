import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import uWS from 'uWebSockets.js';
import { limits } from '../../shards/limits.js';
import type { CounterStore, ShardEvent } from '../../shards/ports.js';
import type { PacerConfig } from '../config.js';
import { log } from '../log.js';
import type { AdminToMain, MainToAdmin } from '../messages.js';
import { openConfiguredRedis, RedisCounterStore, whenReady } from '../store/redis.js';
import type { InstanceGuard } from '../store/instances.js';
import { withDeadline } from '../store/resilient.js';
import { leftoverSpools, replayLeftovers } from '../store/spool.js';
import { ConfigFeed } from '../store/config-feed.js';
import { SqlConfigStore } from '../store/sql-config.js';
import { adminRegistry, exposition, type JsonMetrics } from '../metrics.js';
import { createAdminApp } from './app.js';
import { Campaigns } from './campaigns.js';
import { HistoryWriter } from './history.js';
import { LiveHub } from './live.js';
import { ProfileService } from '../profile/service.js';
import { BacktestService } from './backtest.js';
import { type AdminStores, openAdminStores } from './open.js';
import type { ConfigStore } from './registry.js';
import { ShardLinks, type StoreRequest } from './shards.js';

/**
 * The admin thread: the management API, the configuration database (PostgreSQL or the embedded
 * one), the minute history, and, in embedded mode, the shards' counters. It talks to each shard
 * over its own MessagePort, so configuration reaches a shard without passing through the router,
 * and the router never waits on anything here.
 *
 * Startup, before it reports ready (and so before /readyz does): open the database (retrying while
 * it is down) and migrate; replay spool files an earlier run left behind into the counter store;
 * send every campaign to its shard, which loads its counters and live reservations first.
 */
interface AdminWorkerData {
  config: PacerConfig;
  token: string;
  shardPorts: MessagePort[];
}

const { config, token, shardPorts } = workerData as AdminWorkerData;
const main = parentPort!;
const toMain = (msg: AdminToMain): void => main.postMessage(msg);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- messages from main: held until the thread has started (or handled at once: a shutdown while
// the instance registry holds the start) -------------------------------------------------------
let onMainMessage: ((msg: MainToAdmin) => void) | null = null;
const heldMessages: MainToAdmin[] = [];
let stopWhileWaiting: (() => void) | null = null;
main.on('message', (msg: MainToAdmin) => {
  if (onMainMessage !== null) onMainMessage(msg);
  else if (msg.type === 'shutdown' && stopWhileWaiting !== null) stopWhileWaiting();
  else heldMessages.push(msg);
});

// ---- the instance registry (Redis store): nothing starts while a live instance conflicts -------
/**
 * Runs the process's InstanceGuard (src/store/instances.ts) in this thread, which holds ioredis
 * anyway, so that the main thread loads none (bench/README.md, "The fixed cost at 1,000
 * campaigns"). Resolves once this instance may serve, or null when main asked it to stop first.
 */
async function guardInstance(): Promise<InstanceGuard | null> {
  const { InstanceGuard, InstanceRegistry } = await import('../store/instances.js');
  const registryRedis = openConfiguredRedis(config, 'registry');
  const registry = new InstanceRegistry(registryRedis, config.redisKeyPrefix, { name: config.instanceName, instanceId: config.instanceId, leases: config.leases });
  let stopping: Promise<void> | null = null;
  const guard = new InstanceGuard(registry, config.redisKeyPrefix, {
    onConflict: (conflict) => {
      if (stopping === null) toMain({ type: 'instance', conflict, giveWay: false });
    },
    onGiveWay: (conflict) => toMain({ type: 'instance', conflict, giveWay: true }),
    log: (level, msg, fields) => log(level, msg, fields),
  }, () => registryRedis.disconnect());
  stopWhileWaiting = () => {
    stopping ??= guard.stop();
  };
  await guard.start();
  stopWhileWaiting = null;
  if (stopping === null) return guard;
  await stopping;
  return null;
}
let guard: InstanceGuard | null = null;
if (config.store === 'redis') {
  guard = await guardInstance();
  if (guard === null) {
    // Stopped before it could serve: it never registered, and nothing else has started.
    toMain({ type: 'stopped' });
    process.exit(0); // in a worker: this thread ends, not the process
  }
}

// ---- database health: /readyz says degraded while the configuration database is down ----------
let databaseDown = false;
function onDatabase(ok: boolean, err?: unknown): void {
  if (ok === !databaseDown) return;
  databaseDown = !ok;
  if (ok) log('info', 'configuration database back');
  else log('warn', 'configuration database unavailable', { error: (err as Error)?.message });
  toMain({
    type: 'degraded',
    degraded: !ok,
    reason: ok ? '' : `configuration database unavailable (${(err as Error)?.message}): admin writes answer 503, history waits`,
  });
}

/** Reports every call's success or failure to onDatabase. */
function watched(store: ConfigStore): ConfigStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'close') return v;
      return (...args: unknown[]) =>
        (v as (...a: unknown[]) => Promise<unknown>).apply(target, args).then(
          (out) => {
            onDatabase(true);
            return out;
          },
          (err: unknown) => {
            onDatabase(false, err);
            throw err;
          },
        );
    },
  });
}

// ---- the shards' links, and the embedded counters they may call --------------------------------
let stores: AdminStores | null = null;
let history: HistoryWriter | null = null;
let live: LiveHub | null = null;
let openedCounters: () => void = () => {};
const countersOpen = new Promise<void>((resolve) => (openedCounters = resolve));

function onShardEvent(shard: number, event: ShardEvent): void {
  switch (event.type) {
    case 'breaker':
      log('info', 'breaker transition', { shard, campaignId: event.campaignId, ...event.transition });
      history?.onBreaker(event.campaignId, event.transition);
      live?.breaker(event.campaignId, event.transition);
      break;
    case 'rollover':
      log('info', 'day rollover', { shard, ...event });
      break;
    case 'fault':
      break;
    default: {
      const bad: never = event;
      log('warn', 'unknown shard event', { event: bad });
    }
  }
}

function onStoreRequest(shard: number, msg: StoreRequest): void {
  void (async () => {
    try {
      await countersOpen;
      const counters = stores?.counters;
      if (counters == null) throw new Error('this pacer has no embedded counter store');
      const value = msg.type === 'storeApply'
        ? await counters.apply(msg.batch)
        : await counters.load(msg.campaignId, msg.day, msg.flightStartDay);
      links.post(shard, { type: 'storeReply', corr: msg.corr, ok: true, value });
    } catch (err) {
      links.post(shard, { type: 'storeReply', corr: msg.corr, ok: false, error: (err as Error).message });
    }
  })();
}

const links = new ShardLinks(shardPorts, onShardEvent, onStoreRequest, (summaries) => history?.add(summaries, Date.now()));

// ---- startup -----------------------------------------------------------------------------------
for (let attempt = 1; stores === null; attempt++) {
  try {
    stores = await openAdminStores(config);
  } catch (err) {
    if (attempt === 1) log('warn', 'cannot open the configuration database; retrying', { error: (err as Error).message });
    await sleep(Math.min(250 * attempt, 2_000));
  }
}
openedCounters();
const configStore = watched(stores.config);

/** Spend an earlier run acknowledged from its spool reaches the store before any campaign loads. */
async function replaySpools(): Promise<void> {
  if (config.store === 'memory' || leftoverSpools(config.dataDir, config.instanceId).length === 0) return;
  let target: CounterStore;
  if (config.store === 'embedded') target = stores!.counters!;
  else {
    const client = openConfiguredRedis(config, 'admin');
    await whenReady(client, 2_000);
    target = new RedisCounterStore(client, { prefix: config.redisKeyPrefix, counterTtlSeconds: config.counterTtlSeconds, label: 'admin', waitReplicas: config.redisWaitReplicas, reservationTtlMs: config.reservationTtlMs });
  }
  const timeoutMs = config.store === 'redis' ? limits.redisCallTimeoutMs * 4 : limits.embeddedCallTimeoutMs;
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const done = await replayLeftovers(leftoverSpools(config.dataDir, config.instanceId), (b) =>
          withDeadline(target.apply(b), timeoutMs, 'spool replay'),
        );
        log('info', 'spool of an earlier run replayed', done);
        return;
      } catch (err) {
        if (attempt === 1) log('warn', 'spool replay failed; retrying', { error: (err as Error).message });
        await sleep(Math.min(250 * attempt, 2_000));
      }
    }
  } finally {
    if (target !== stores!.counters) await target.close();
  }
}

const campaigns = new Campaigns(configStore, links, config.campaignsMax);
campaigns.origin = config.instanceId;

/**
 * With PostgreSQL, several pacers may share the configuration: each listens for the others'
 * changes (src/store/config-feed.ts), from before the catalogue is loaded, so none is missed.
 */
const rawConfig = stores.config;
const feed = config.databaseUrl !== null && rawConfig instanceof SqlConfigStore
  ? new ConfigFeed({
    databaseUrl: config.databaseUrl,
    origin: config.instanceId,
    store: rawConfig,
    handler: {
      async configChanged(ids) {
        await campaigns.applyStored(await rawConfig.loadCampaignsById(ids));
      },
      async reloadAll() {
        const stale = (await rawConfig.campaignVersions()).filter((v) => v.version > campaigns.versionOf(v.id)).map((v) => v.id);
        for (let i = 0; i < stale.length; i += limits.configCatchUpPageRows) {
          await campaigns.applyStored(await rawConfig.loadCampaignsById(stale.slice(i, i + limits.configCatchUpPageRows)));
        }
      },
      async breakerReset(id) {
        // A campaign this instance does not serve yet has no breaker to reset.
        await campaigns.resetBreakerHere(id).catch(() => undefined);
      },
    },
  })
  : null;
history = new HistoryWriter(configStore, links, onDatabase);
const state = { shuttingDown: false };
live = new LiveHub(campaigns, token, state);

// ---- metrics: this thread's, the router's (over parentPort) and every shard's ------------------
const ownMetrics = adminRegistry(() => campaigns.size, () => !databaseDown);
const routerMetricsWaiters = new Map<number, (m: JsonMetrics[]) => void>();
let metricsCorr = 0;
/** Main's metrics and every router thread's (main gathers them: one part per thread). */
function routerMetrics(): Promise<JsonMetrics[]> {
  const corr = ++metricsCorr;
  return withDeadline(
    new Promise<JsonMetrics[]>((resolve) => {
      routerMetricsWaiters.set(corr, resolve);
      toMain({ type: 'metricsRequest', corr });
    }),
    limits.controlRequestTimeoutMs,
    'router metrics',
  ).finally(() => routerMetricsWaiters.delete(corr));
}
async function scrape(): Promise<string> {
  const [routers, ...parts] = await Promise.all([
    routerMetrics(),
    ownMetrics.getMetricsAsJSON() as Promise<JsonMetrics>,
    ...Array.from({ length: links.count }, (_, i) => links.request<JsonMetrics>(i, { type: 'metrics' })),
  ]);
  return exposition([...parts, ...routers]);
}

const profiles = new ProfileService(
  configStore,
  {
    get: (id) => campaigns.get(id),
    slotOf: (id) => campaigns.slotOf(id),
    all: () => campaigns.all(),
    shardCount: links.count,
    send: (shard, list, global) => links.request<number>(shard, { type: 'profiles', profiles: list, global }),
  },
  { halfLifeDays: config.profileHalfLifeDays, historyRetentionDays: config.historyRetentionDays, historyLagMs: 2 * config.historyFlushMs + 60_000 },
);
// A new campaign starts from the profile of campaigns like it (same zone and schedule).
campaigns.onCreated = (record) => profiles.created(record);
const backtests = new BacktestService(configStore, { halfLifeDays: config.profileHalfLifeDays, historyRetentionDays: config.historyRetentionDays });
const app = createAdminApp(token, campaigns, state, scrape, configStore, live, profiles, backtests);

let listenSocket: uWS.us_listen_socket | null = null;
app.listen(config.host, config.adminPort, (sock) => {
  if (sock === false) {
    toMain({ type: 'fatal', message: `cannot listen on ${config.host}:${config.adminPort} (admin API): port in use?` });
    return;
  }
  listenSocket = sock;
  toMain({ type: 'listening', port: uWS.us_socket_local_port(sock as unknown as uWS.us_socket) });
});

const tSpools = performance.now();
await replaySpools();
await feed?.listen();
const spoolsMs = Math.round(performance.now() - tSpools);
for (let attempt = 1; ; attempt++) {
  try {
    const { readMs, loadMs } = await campaigns.start();
    feed?.begin();
    // The stored traffic profiles follow the catalogue, before traffic is let in (src/profile/service.ts).
    const tProfiles = performance.now();
    await profiles.start();
    const startupMs = { spools: spoolsMs, catalogue: readMs, shards: loadMs, profiles: Math.round(performance.now() - tProfiles) };
    toMain({ type: 'ready', campaigns: campaigns.size, startupMs });
    break;
  } catch (err) {
    // Reading the catalogue failed (the database went away since it was opened): try again.
    if (attempt === 1) log('warn', 'loading campaigns failed; retrying', { error: (err as Error).message });
    await sleep(Math.min(250 * attempt, 2_000));
  }
}

const historyTimer = setInterval(() => void history?.tick(), config.historyFlushMs);
async function sweep(): Promise<void> {
  try {
    await configStore.prune(config.historyRetentionDays, Date.now());
    await stores?.counters?.prune(config.counterTtlSeconds, Date.now());
  } catch (err) {
    log('warn', 'retention sweep failed', { error: (err as Error).message });
  }
}
const sweepTimer = setInterval(() => void sweep(), limits.retentionSweepMs);
// Each campaign's profile is refitted once its local day has begun (ProfileService.tick).
const profileTimer = setInterval(() => void profiles.tick(), limits.profileTickMs);

onMainMessage = (msg: MainToAdmin): void => {
  switch (msg.type) {
    case 'shutdown':
      void shutdown();
      break;
    case 'health':
      live?.setHealth(msg.degraded, msg.reason);
      break;
    case 'metrics': {
      const waiter = routerMetricsWaiters.get(msg.corr);
      routerMetricsWaiters.delete(msg.corr);
      waiter?.(msg.metrics);
      break;
    }
    default: {
      const bad: never = msg;
      log('warn', 'unknown message from main', { msg: bad });
    }
  }
};
for (const msg of heldMessages.splice(0)) onMainMessage(msg);

async function shutdown(): Promise<void> {
  state.shuttingDown = true;
  clearInterval(historyTimer);
  clearInterval(sweepTimer);
  clearInterval(profileTimer);
  await profiles.close().catch(() => undefined);
  await backtests.close().catch(() => undefined);
  // uWS keeps the thread alive while a listen socket is open; close it before the thread ends.
  if (listenSocket !== null) uWS.us_listen_socket_close(listenSocket);
  listenSocket = null;
  // So must every live-feed socket (a worker that exits holding one aborts Node).
  await live?.close();
  // The shards have stopped (main stops them first) and sent their last summaries on their own
  // ports; let those messages arrive, then write them.
  await sleep(50);
  await history?.flushPending().catch(() => undefined);
  await feed?.close();
  campaigns.close();
  links.close();
  try {
    await stores?.config.close();
    await stores?.sql?.close();
  } catch (err) {
    log('warn', 'closing the database failed', { error: String(err) });
  }
  // Out of the instance registry last: until now this instance could still write spend.
  await guard?.stop();
  toMain({ type: 'stopped' });
  main.close();
}
