import { Cluster, Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { limits } from '../../shards/limits.js';
import type { PacerConfig } from '../config.js';
import type { CampaignSnapshot, CounterStore, FlushBatch, FlushOutcome, LoadRequest, StoredReservation } from '../../shards/ports.js';
import { log } from '../log.js';
import { type CampaignOps, groupBatch, outcomeOf, storedNumber } from './batch.js';

const dayMs = 86_400_000;

/**
 * Key layout (docs/storage.md). Every key of a campaign carries the campaign ID as its hash tag, so
 * all of them live in one Redis Cluster slot and one script may touch them together.
 *
 *   P:{c}:d:<day>      string  settled micros of the campaign's local day; TTL counterTtlSeconds
 *   P:{c}:days         hash    day → settled micros (lifetime budgets); TTL lifetimeDaysTtlSeconds
 *   P:{c}:res          hash    requestId → "<amount>:<expiresAtMs>" (live reservations)
 *   P:{c}:e:<eventId>  string  batchId of the batch that applied the event; TTL eventDedupeTtlMs
 *   P:{c}:res:gone:<r> string  reservation r settled (by another instance's spend) before it was
 *                              stored: its late write is dropped; TTL the reservation TTL
 *
 * One key per event rather than a hash per day: SET NX is O(1) whatever the count, where a hash
 * field insert scans the whole hash while Redis keeps it as a listpack (up to
 * hash-max-listpack-entries, 128 to 512), and a day-bucketed hash needs three lookups per event to
 * cover 48 hours. It costs more memory per event (see docs/storage.md).
 */
export function campaignKeys(prefix: string, campaignId: string) {
  const tag = `${prefix}:{${campaignId}}:`;
  return {
    day: (day: string) => `${tag}d:${day}`,
    days: `${tag}days`,
    reservations: `${tag}res`,
    event: (eventId: string) => `${tag}e:${eventId}`,
  };
}

/**
 * Applies campaigns' parts of a flush batch, each atomically. An event is recorded with SET NX
 * under its own key, valued with this batch's ID: set, the amount is added; present with this
 * batch's ID, an earlier attempt of this very batch applied it (ioredis resends unanswered
 * commands after a reconnect; the flusher retries a batch under its ID; the spool replays it) and
 * it is answered "applied" again without counting; present with another ID, it is a duplicate. So
 * the script is idempotent per batch ID and per event ID at once, and a batch needs no marker key.
 *
 * One call carries several campaigns (on a single Redis node, all of a flush's campaigns: the
 * fixed cost of a script call, tens of microseconds, then counts once per flush instead of once
 * per campaign); on Redis Cluster a call must stay within one slot, so it carries one campaign.
 * Every key the script touches is declared in KEYS.
 *
 * KEYS, per campaign: res, days, d:<day 1>…d:<day n>, e:<event 1>…e:<event m>
 * ARGV: batchId, counterTtlSeconds, daysTtlSeconds, eventTtlMs, nCampaigns, then per campaign:
 *       nDays, day names…, nEvents, (amount, requestId, dayIndex)…, nUpserts,
 *       (requestId, value)…, nDeletes, requestId…
 * Returns, per campaign, one character per event ('1' applied, '0' duplicate), campaigns
 * separated by ','.
 */
export const applyScript = `
local batch = ARGV[1]
local ttl = tonumber(ARGV[2])
local daysTtl = tonumber(ARGV[3])
local eventTtl = ARGV[4]
local goneTtl = ARGV[5]
local nCampaigns = tonumber(ARGV[6])
local p = 7
local k = 0
local results = {}
for c = 1, nCampaigns do
  local nDays = tonumber(ARGV[p]); p = p + 1
  local dayNames = {}
  local dayTotals = {}
  for j = 1, nDays do dayNames[j] = ARGV[p]; dayTotals[j] = 0; p = p + 1 end
  local kRes, kDays = KEYS[k + 1], KEYS[k + 2]
  local kEvents = k + 2 + nDays
  local n = tonumber(ARGV[p]); p = p + 1
  local out = {}
  for i = 1, n do
    local amount, req, j = tonumber(ARGV[p]), ARGV[p + 1], tonumber(ARGV[p + 2])
    p = p + 3
    -- A negative day index: the reservation is another instance's ("settled elsewhere").
    local elsewhere = j < 0
    if elsewhere then j = -j end
    local kEvent = KEYS[kEvents + i]
    -- The event settles its reservation only when applied: a duplicate changes nothing at all.
    if redis.call('SET', kEvent, batch, 'NX', 'PX', eventTtl) then
      dayTotals[j] = dayTotals[j] + amount
      out[i] = '1'
      if req ~= '' and redis.call('HDEL', kRes, req) == 0 and elsewhere then
        -- Its holder has not written it yet: remember it is settled, so that it is never written.
        redis.call('SET', kRes .. ':gone:' .. req, '1', 'PX', goneTtl)
      end
    elseif redis.call('GET', kEvent) == batch then
      out[i] = '1'
      if req ~= '' then redis.call('HDEL', kRes, req) end
    else
      out[i] = '0'
    end
  end
  -- Amounts are integers below 2^53 and so are their sums (the caller checks): exact in a Lua
  -- number, and written with %d so that no exponent notation reaches INCRBY.
  local touched = false
  for j = 1, nDays do
    if dayTotals[j] > 0 then
      local total = string.format('%d', dayTotals[j])
      redis.call('INCRBY', KEYS[k + 2 + j], total)
      redis.call('EXPIRE', KEYS[k + 2 + j], ttl)
      redis.call('HINCRBY', kDays, dayNames[j], total)
      touched = true
    end
  end
  if touched then redis.call('EXPIRE', kDays, daysTtl) end
  local nu = tonumber(ARGV[p]); p = p + 1
  for i = 1, nu do
    if redis.call('DEL', kRes .. ':gone:' .. ARGV[p]) == 0 then redis.call('HSET', kRes, ARGV[p], ARGV[p + 1]) end
    p = p + 2
  end
  local nd = tonumber(ARGV[p]); p = p + 1
  for i = 1, nd do redis.call('HDEL', kRes, ARGV[p]); p = p + 1 end
  if nu > 0 then redis.call('EXPIRE', kRes, ttl) end
  results[c] = table.concat(out)
  k = kEvents + n
end
return table.concat(results, ',')
`;

/** A single Redis or a Redis Cluster: the store speaks to both through the same commands. */
export type RedisClient = Redis | Cluster;

type PacerRedis = RedisClient & {
  pacerApply(...args: (string | number)[]): Promise<string>;
};

type ApplyPipeline = { pacerApply(...args: (string | number)[]): unknown; exec(): Promise<[Error | null, unknown][] | null> };

export interface RedisStoreOptions {
  prefix: string;
  /** Redis Cluster: one campaign per script call (a call's keys must share a slot). */
  cluster?: boolean;
  counterTtlSeconds: number;
  /** Labels log lines ('shard 3', 'admin'). */
  label: string;
  /**
   * PACER_REDIS_WAIT_REPLICAS: after a flush's script calls, each node pipeline ends with
   * WAIT <n> and ROLE, and the flush fails unless min(n, replicas the node has connected)
   * acknowledged it (see waitReplicasNote). 0 (the default): no WAIT, as before.
   */
  waitReplicas?: number;
  /**
   * How long the store remembers a reservation settled by a spend that reached it before the
   * reservation did (another instance's, with budget leases): PACER_RESERVATION_TTL_MS, after which
   * that reservation would have expired anyway. Default limits.reservationTtlMs.
   */
  reservationTtlMs?: number;
}

/**
 * Redis replication is asynchronous: a write the master acknowledged may not have reached the
 * replica that a failover promotes, and is then lost. With PACER_REDIS_WAIT_REPLICAS=n > 0 every
 * write the pacer relies on (a flush's script calls, a lease grant) is followed, in the same
 * pipeline on the same node connection, by WAIT n limits.redisWaitTimeoutMs and ROLE; the call
 * counts as done only when WAIT answers at least min(n, replicas connected per ROLE). Fewer is a
 * failed call: a flush is retried under its batch ID (applied at most once), a lease grant is not
 * used. A node with no replica connected (its replica was promoted after the old master died, or
 * the replica is down) is not waited for: no failover can lose what only it holds, and waiting for
 * a replica that is not there would stop the counters. The price: a replica whose link is down but
 * which may still be promoted is not waited for either (Redis' own min-replicas-to-write closes
 * that, by refusing writes instead).
 */
export class NotReplicatedError extends Error {
  readonly code = 'PACER_ERR_NOT_REPLICATED';
  constructor(acked: number, wanted: number) {
    super(`WAIT: ${acked} of ${wanted} replicas acknowledged within ${limits.redisWaitTimeoutMs} ms`);
    this.name = 'NotReplicatedError';
  }
}

/**
 * Runs a pipeline; on Redis Cluster, one that has not answered within redisCallTimeoutMs (its
 * node is gone and the client still queues for it) makes the client learn the slot map again,
 * so that the calls after it go to the replica promoted in the lost master's place.
 */
export async function execRefreshing<T>(cluster: Cluster | null, pipeline: { exec(): Promise<T> }): Promise<T> {
  if (cluster === null) return pipeline.exec();
  const timer = setTimeout(() => void cluster.refreshSlotsCache(), limits.redisCallTimeoutMs);
  try {
    return await pipeline.exec();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A script call with WAIT (PACER_REDIS_WAIT_REPLICAS) that its node answered ASK: the slot is being
 * migrated and the call's keys are on the importing node already. ioredis redirects neither a
 * pipeline whose other commands succeeded (WAIT and ROLE did) nor one it did not send itself, so
 * the call is sent here to the node the ASK names, as ASKING, the script (EVAL: that node may not
 * have it cached), WAIT and ROLE on that node's connection, so that WAIT still follows the write
 * it confirms. Answers the script's reply once the replicas have it; throws the node's error
 * otherwise (TRYAGAIN while the call's keys are split between the two nodes: the caller waits and
 * starts over). Without following ASK, every call of a migrating slot failed until the slot moved
 * (test/cluster/resharding.test.ts: each migration sent the pacers' spend to the spool and let
 * their leases of that campaign lapse).
 */
export async function evalAsking(cluster: Cluster, ask: Error, lua: string, keysAndArgs: (string | number)[], replicas: number): Promise<unknown> {
  const m = /^ASK \d+ (\S+):(\d+)$/.exec(ask.message);
  const node = m === null ? undefined : cluster.nodes('master').find((n) => n.options.host === m[1] && n.options.port === Number(m[2]));
  if (node === undefined) throw ask;
  const p = node.pipeline() as unknown as { asking(): unknown; eval(...a: (string | number)[]): unknown; exec(): Promise<[Error | null, unknown][] | null> };
  p.asking();
  p.eval(lua, ...keysAndArgs);
  if (replicas > 0) queueWait(p, replicas);
  const replies = await p.exec();
  if (replies === null || replies.length !== (replicas > 0 ? 4 : 2)) throw new Error('redis pipeline returned no replies');
  const [err, reply] = replies[1]!;
  if (err !== null) throw err;
  if (replicas > 0) checkReplicated(replies[2]!, replies[3]!, replicas);
  return reply;
}

/** Queues WAIT and ROLE after a pipeline's writes (checkReplicated reads their replies). */
export function queueWait(pipeline: unknown, replicas: number): void {
  const p = pipeline as { wait(n: number, ms: number): unknown; role(): unknown };
  p.wait(replicas, limits.redisWaitTimeoutMs);
  p.role();
}

/**
 * Throws unless WAIT's reply covers min(wanted, replicas connected as ROLE lists them). The two
 * replies are the last two of the pipeline queueWait ended.
 */
export function checkReplicated(wait: [Error | null, unknown], role: [Error | null, unknown], wanted: number): void {
  if (wait[0] !== null) throw wait[0];
  if (role[0] !== null) throw role[0];
  const r = role[1] as unknown[];
  if (!Array.isArray(r) || r[0] !== 'master') throw new Error(`WAIT: the node answered ROLE ${String(r?.[0])}, not master`);
  const connected = Array.isArray(r[2]) ? r[2].length : 0;
  const acked = Number(wait[1]);
  const need = Math.min(wanted, connected);
  if (!(acked >= need)) throw new NotReplicatedError(acked, need);
}

/**
 * Opens the client the configuration names: ioredis' Cluster client for PACER_REDIS_CLUSTER, a
 * single-node client for PACER_REDIS_URL.
 */
export function openConfiguredRedis(config: Pick<PacerConfig, 'redisUrl' | 'redisCluster'>, label: string): RedisClient {
  if (config.redisCluster !== null) return openRedisCluster(config.redisCluster, label);
  return openRedis(config.redisUrl!, label);
}

/** Logs the first error of an outage and the recovery, once each, whatever the client kind. */
function watchConnection(redis: RedisClient, label: string): void {
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    log('warn', 'redis connection error', { who: label, error: err.message });
  });
  redis.on('ready', () => {
    if (down) log('info', 'redis connection restored', { who: label });
    down = false;
  });
}

/**
 * A Redis Cluster client with the same failure behaviour as the single-node one: commands fail at
 * once while the cluster is unreachable (the spool takes over), MOVED and ASK are followed by
 * ioredis (up to maxRedirections), TRYAGAIN (a multi-key script whose slot is half migrated) and
 * CLUSTERDOWN (a failover in progress) are retried after a short delay.
 */
export function openRedisCluster(nodes: { host: string; port: number }[], label: string): Cluster {
  const cluster = new Cluster(nodes, {
    enableOfflineQueue: false,
    clusterRetryStrategy: (times) => Math.min(50 * times, 1_000),
    maxRedirections: limits.redisClusterRedirectionsMax,
    retryDelayOnTryAgain: limits.redisClusterRetryDelayMs,
    retryDelayOnClusterDown: limits.redisClusterRetryDelayMs,
    retryDelayOnFailover: limits.redisClusterRetryDelayMs,
    slotsRefreshTimeout: 2_000,
    redisOptions: { connectTimeout: 2_000, maxRetriesPerRequest: 1 },
  });
  watchConnection(cluster, label);
  return cluster;
}

/** Opens an ioredis client for the pacer: fail fast while disconnected, reconnect within a second. */
export function openRedis(url: string, label: string): Redis {
  const redis = new Redis(url, {
    // While disconnected a command fails at once instead of queueing without bound: the caller's
    // breaker and spool take over. Commands sent but unanswered are still resent after a
    // reconnect (autoResendUnfulfilledCommands), which is why every write is idempotent.
    enableOfflineQueue: false,
    connectTimeout: 2_000,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(50 * times, 1_000),
  });
  watchConnection(redis, label);
  return redis;
}

/** Resolves when the client is connected, or after timeoutMs (then commands fail until it is). */
export function whenReady(redis: RedisClient, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      resolve(false);
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    redis.once('ready', onReady);
  });
}

/**
 * Real-time counters in Redis. On a single node a flush is one pipeline of EVALSHA calls, one call
 * per `campaignsPerCall` campaigns (a script blocks Redis while it runs, so a very large flush is
 * cut into several calls). On Redis Cluster a call carries one campaign (a script's keys must
 * share a slot and each campaign has its own hash tag), and the calls are grouped into one
 * pipeline per node, by the slot map the client holds: ioredis sends a pipeline to one node only.
 *
 * During a resharding that map is stale for the slots being moved: the node answers MOVED (slot
 * gone) or ASK (slot migrating, key already moved) for those calls while the rest of the pipeline
 * succeeds. ioredis re-sends a pipeline only when every command in it failed the same way, so the
 * calls that failed are re-sent here one by one through the client's ordinary command path, which
 * follows MOVED and ASK and retries TRYAGAIN. Re-sending is safe: the script is idempotent per
 * batch ID and per event ID, so a call that did apply before its reply was lost answers the same.
 */
export class RedisCounterStore implements CounterStore {
  readonly kind = 'redis';
  private readonly redis: PacerRedis;
  private readonly campaignsPerCall: number;
  private readonly cluster: Cluster | null;
  private readonly waitReplicas: number;
  /** Script calls re-sent on their own after MOVED, ASK or the like (Redis Cluster only). */
  resentCalls = 0;

  constructor(
    redis: RedisClient,
    private readonly options: RedisStoreOptions,
  ) {
    if (!('pacerApply' in redis)) redis.defineCommand('pacerApply', { lua: applyScript });
    this.redis = redis as PacerRedis;
    this.cluster = redis instanceof Cluster ? redis : null;
    this.campaignsPerCall = options.cluster === true || this.cluster !== null ? 1 : limits.redisCampaignsPerCall;
    this.waitReplicas = options.waitReplicas ?? 0;
  }

  get client(): RedisClient {
    return this.redis;
  }

  async apply(batch: FlushBatch): Promise<FlushOutcome> {
    const grouped = groupBatch(batch);
    const header: (string | number)[] = [
      batch.batchId,
      this.options.counterTtlSeconds,
      Math.max(limits.lifetimeDaysTtlSeconds, this.options.counterTtlSeconds),
      limits.eventDedupeTtlMs,
      this.options.reservationTtlMs ?? limits.reservationTtlMs,
    ];
    const calls: { part: CampaignOps[]; args: (string | number)[] }[] = [];
    for (let i = 0; i < grouped.campaigns.length; i += this.campaignsPerCall) {
      const part = grouped.campaigns.slice(i, i + this.campaignsPerCall);
      const keys: string[] = [];
      const argv: (string | number)[] = [...header, part.length];
      for (const c of part) this.scriptArgs(c, keys, argv);
      calls.push({ part, args: [keys.length, ...keys, ...argv] });
    }
    const replies = await this.sendCalls(calls.map((c) => c.args));
    const flags: boolean[][] = [];
    replies.forEach((reply, i) => {
      const parts = String(reply).split(',');
      const part = calls[i]!.part;
      if (parts.length !== part.length) throw new Error(`redis script answered for ${parts.length} campaigns, sent ${part.length}`);
      part.forEach((c, ci) => {
        const s = parts[ci]!;
        if (s.length !== c.events.length) throw new Error(`redis script answered ${s.length} flags for ${c.events.length} events`);
        const f: boolean[] = new Array(s.length);
        for (let k = 0; k < s.length; k++) f[k] = s.charCodeAt(k) === 49; // '1'
        flags.push(f);
      });
    });
    return outcomeOf(batch, grouped, flags);
  }

  /** Sends script calls (each its KEYS count, KEYS and ARGV), in pipelines; answers in order. */
  private async sendCalls(calls: (string | number)[][]): Promise<unknown[]> {
    const out: unknown[] = new Array(calls.length);
    const groups = this.cluster === null ? [calls.map((_, i) => i)] : this.byNode(calls);
    await Promise.all(groups.map(async (group) => {
      const pipeline = this.redis.pipeline() as unknown as ApplyPipeline;
      for (const i of group) pipeline.pacerApply(...calls[i]!);
      const wait = this.waitReplicas;
      if (wait > 0) queueWait(pipeline, wait);
      let replies: [Error | null, unknown][] | null;
      try {
        replies = await execRefreshing(this.cluster, pipeline);
      } catch (err) {
        // ioredis refuses a cluster pipeline whose slots its own map (updated by a MOVED a moment
        // ago) places on different nodes: send those calls on their own.
        if (this.cluster === null) throw err;
        if (!/same slots allocation group/.test((err as Error).message)) {
          // A node gone (a master lost before its replica is promoted): learn the slot map again,
          // so that the retry of this batch goes to the promoted replica.
          this.cluster.refreshSlotsCache();
          throw err;
        }
        replies = [...group.map((): [Error, null] => [new Error('MOVED (pipeline split by the client)'), null]), ...(wait > 0 ? [[null, 0], [null, ['master', 0, []]]] as [null, unknown][] : [])];
      }
      if (replies === null || replies.length !== group.length + (wait > 0 ? 2 : 0)) throw new Error('redis pipeline returned no replies');
      const failed: number[] = [];
      replies.slice(0, group.length).forEach(([err, reply], k) => {
        if (err === null) out[group[k]!] = reply;
        else if (this.cluster !== null && redirected(err)) failed.push(group[k]!);
        else throw err;
      });
      // The calls that applied here count only once the node's replicas have them too.
      if (wait > 0 && failed.length < group.length) checkReplicated(replies[group.length]!, replies[group.length + 1]!, wait);
      if (failed.length === 0) return;
      // The slot map moved under this pipeline: learn the new one, and let each call find its node.
      this.cluster!.refreshSlotsCache();
      this.resentCalls += failed.length;
      await Promise.all(failed.map(async (i) => {
        out[i] = wait > 0 ? await this.resendWaited(calls[i]!) : await this.redis.pacerApply(...calls[i]!);
      }));
    }));
    return out;
  }

  /**
   * One re-sent call followed by WAIT on its node (PACER_REDIS_WAIT_REPLICAS > 0): WAIT must run on
   * the connection that wrote, so the call goes in a pipeline of its own rather than through the
   * client's command path, and a redirection is followed here a bounded number of times: MOVED after a slot map refresh, ASK on the importing node (evalAsking),
   * TRYAGAIN (the call's keys split between the two nodes) after a short delay. One that still
   * fails fails the flush, which is retried under its batch ID.
   */
  private async resendWaited(args: (string | number)[]): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      const p = this.redis.pipeline() as unknown as ApplyPipeline;
      p.pacerApply(...args);
      queueWait(p, this.waitReplicas);
      const replies = await execRefreshing(this.cluster, p);
      if (replies === null || replies.length !== 3) throw new Error('redis pipeline returned no replies');
      const [err, reply] = replies[0]!;
      if (err === null) {
        checkReplicated(replies[1]!, replies[2]!, this.waitReplicas);
        return reply;
      }
      if (!redirected(err) || attempt >= limits.redisClusterRedirectionsMax) throw err;
      if (this.cluster !== null && err.message.startsWith('ASK ')) {
        // The slot is migrating and this call's keys have moved: send it where the ASK says.
        try {
          return await evalAsking(this.cluster, err, applyScript, args, this.waitReplicas);
        } catch (e) {
          if (!redirected(e as Error)) throw e;
        }
      } else this.cluster?.refreshSlotsCache();
      await new Promise((r) => setTimeout(r, limits.redisClusterRetryDelayMs));
    }
  }

  /**
   * Groups script calls by the node that serves their slot, as the client's slot map says now.
   * A call's keys share one hash tag, so its first key names its slot.
   */
  private byNode(calls: (string | number)[][]): number[][] {
    const slots = this.cluster!.slots;
    const groups = new Map<string, number[]>();
    calls.forEach((args, i) => {
      const slot = calculateSlot(String(args[1]));
      const node = slots[slot]?.[0] ?? `slot ${slot}`;
      let g = groups.get(node);
      if (g === undefined) groups.set(node, (g = []));
      g.push(i);
    });
    return [...groups.values()];
  }

  /** Appends one campaign's keys and arguments to a script call. */
  private scriptArgs(c: CampaignOps, keys: string[], argv: (string | number)[]): void {
    // The keys of campaignKeys, spelled out here: this runs for every campaign of every flush.
    const tag = `${this.options.prefix}:{${c.campaignId}}:`;
    keys.push(`${tag}res`, `${tag}days`);
    // The local days the events belong to, in order of first appearance: one, or two across a rollover.
    const days: string[] = [];
    for (const e of c.events) {
      if (days.includes(e.day)) continue;
      days.push(e.day);
      keys.push(`${tag}d:${e.day}`);
    }
    for (const e of c.events) keys.push(`${tag}e:${e.eventId}`);
    argv.push(days.length);
    for (const d of days) argv.push(d);
    argv.push(c.events.length);
    let sum = 0;
    for (const e of c.events) {
      const dayIndex = days.indexOf(e.day) + 1;
      argv.push(e.amountMicros, e.requestId, e.settlesElsewhere === true ? -dayIndex : dayIndex);
      sum += e.amountMicros;
    }
    // The script adds a day's amounts in a Lua number: exact while the sum is a safe integer.
    if (!Number.isSafeInteger(sum)) throw new RangeError(`batch amounts of ${c.campaignId} sum past 2^53`);
    argv.push(c.upserts.length);
    for (const r of c.upserts) argv.push(r.requestId, `${r.amountMicros}:${r.expiresAtMs}`);
    argv.push(c.deletes.length);
    for (const d of c.deletes) argv.push(d);
  }

  async load(campaignId: string, day: string, flightStartDay: string | null): Promise<CampaignSnapshot> {
    const k = campaignKeys(this.options.prefix, campaignId);
    if (this.cluster !== null) {
      // Each read on its own, never a pipeline: while the campaign's slot is being migrated some
      // of its keys are on the importing node and the rest on the migrating one. A pipeline of
      // reads answered ASK for one key is re-sent whole by ioredis to the importing node, which
      // answers "no such key" for the keys still on the other node: the reservations came back
      // empty, and money reserved was forgotten (test/cluster/split-slot.test.ts). On its own,
      // each read follows its own redirection.
      const replies = await Promise.all([
        this.redis.get(k.day(day)),
        this.redis.hgetall(k.reservations),
        ...(flightStartDay !== null ? [this.redis.hgetall(k.days)] : []),
      ]);
      return this.snapshotOf(campaignId, day, flightStartDay, replies);
    }
    const p = this.redis.pipeline();
    p.get(k.day(day));
    p.hgetall(k.reservations);
    if (flightStartDay !== null) p.hgetall(k.days);
    const replies = await p.exec();
    if (replies === null) throw new Error('redis pipeline returned no replies');
    for (const [err] of replies) if (err !== null) throw err;
    return this.snapshotOf(campaignId, day, flightStartDay, replies.map((r) => r[1]));
  }

  /**
   * Startup: every campaign's reads in one pipeline on a single Redis. A Redis Cluster pipeline
   * must stay on one node, so there each campaign is loaded on its own (still concurrently).
   */
  async loadMany(requests: readonly LoadRequest[]): Promise<(CampaignSnapshot | Error)[]> {
    if (this.cluster !== null) {
      return Promise.all(requests.map((r) => this.load(r.campaignId, r.day, r.flightStartDay).catch((err: unknown) => err as Error)));
    }
    const p = this.redis.pipeline();
    for (const r of requests) {
      const k = campaignKeys(this.options.prefix, r.campaignId);
      p.get(k.day(r.day));
      p.hgetall(k.reservations);
      if (r.flightStartDay !== null) p.hgetall(k.days);
    }
    const replies = await p.exec();
    if (replies === null) throw new Error('redis pipeline returned no replies');
    const out: (CampaignSnapshot | Error)[] = [];
    let at = 0;
    for (const r of requests) {
      const n = r.flightStartDay !== null ? 3 : 2;
      const mine = replies.slice(at, at + n);
      at += n;
      const err = mine.find(([e]) => e !== null)?.[0];
      if (err != null) {
        out.push(err);
        continue;
      }
      try {
        out.push(this.snapshotOf(r.campaignId, r.day, r.flightStartDay, mine.map((m) => m[1])));
      } catch (e) {
        out.push(e as Error);
      }
    }
    return out;
  }

  /** A campaign's snapshot from its replies: the day counter, the reservations, the flight's days. */
  private snapshotOf(campaignId: string, day: string, flightStartDay: string | null, replies: unknown[]): CampaignSnapshot {
    const k = campaignKeys(this.options.prefix, campaignId);
    // Values are read without judging them: the shard flags a campaign whose counters are out of range.
    const settled = replies[0] === null ? 0 : storedNumber(replies[0]);
    const now = Date.now();
    const reservations: StoredReservation[] = [];
    const expired: string[] = [];
    for (const [requestId, value] of Object.entries((replies[1] ?? {}) as Record<string, string>)) {
      const sep = value.indexOf(':');
      const amountMicros = storedNumber(value.slice(0, sep));
      const expiresAtMs = storedNumber(value.slice(sep + 1));
      // Redis 7.0 has no per-field TTL: the expiry travels in the value and is applied here.
      if (expiresAtMs <= now) expired.push(requestId);
      else reservations.push({ requestId, amountMicros, expiresAtMs });
    }
    if (expired.length > 0) void this.redis.hdel(k.reservations, ...expired).catch(() => undefined);
    let lifetime = 0;
    if (flightStartDay !== null) {
      for (const [d, v] of Object.entries((replies[2] ?? {}) as Record<string, string>)) {
        if (d >= flightStartDay && d < day) lifetime += storedNumber(v);
      }
    }
    return { settledMicros: settled, lifetimeSettledMicros: lifetime, reservations };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

/**
 * Errors of a call sent to a node that does not (or no longer) serve its slot, or whose node went
 * away mid-resharding or failover: the call is re-sent on its own, where ioredis follows them.
 */
function redirected(err: Error): boolean {
  return /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/.test(err.message) || /Connection is closed|ECONNRESET|ECONNREFUSED/.test(err.message);
}
