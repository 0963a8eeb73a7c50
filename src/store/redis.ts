import { Redis } from 'ioredis';
import { limits } from '../../shards/limits.js';
import type { CampaignSnapshot, CounterStore, FlushBatch, FlushOutcome, StoredReservation } from '../../shards/ports.js';
import { log } from '../log.js';
import { type CampaignOps, groupBatch, outcomeOf } from './batch.js';
import { int } from './sql.js';

const dayMs = 86_400_000;

/**
 * Key layout (docs/storage.md). Every key of a campaign carries the campaign ID as its hash tag, so
 * all of them live in one Redis Cluster slot and one script may touch them together.
 *
 *   P:{c}:d:<day>      string  settled micros of the campaign's local day; TTL counterTtlSeconds
 *   P:{c}:days         hash    day → settled micros (lifetime budgets); TTL lifetimeDaysTtlSeconds
 *   P:{c}:res          hash    requestId → "<amount>:<expiresAtMs>" (live reservations)
 *   P:{c}:ev:<bucket>  hash    eventId → batchId; one per UTC day, checked three deep (≥ 48 h)
 */
export function campaignKeys(prefix: string, campaignId: string) {
  const tag = `${prefix}:{${campaignId}}:`;
  return {
    day: (day: string) => `${tag}d:${day}`,
    days: `${tag}days`,
    reservations: `${tag}res`,
    events: (bucket: number) => `${tag}ev:${bucket}`,
  };
}

/**
 * Applies one campaign's part of a flush batch atomically. An event ID is looked up in the last
 * three daily buckets: unseen, it is recorded with this batch's ID and its amount added; seen with
 * this batch's ID, it was applied by an earlier attempt of this very batch (ioredis resends
 * unanswered commands after a reconnect; the flusher retries a batch under its ID; the spool
 * replays it) and is answered "applied" again without counting; seen with another ID, it is a
 * duplicate. So the script is idempotent per batch ID and per event ID at once, and a batch needs
 * no marker key of its own.
 *
 * KEYS: res, days, ev:b, ev:b-1, ev:b-2, d:<day 1>, d:<day 2>…
 * ARGV: batchId, counterTtlSeconds, daysTtlSeconds, bucketExpireAtMs, nDays, day names…,
 *       nEvents, (eventId, amount, requestId, dayIndex)…, nUpserts, (requestId, value)…,
 *       nDeletes, requestId…
 * Returns one character per event: '1' applied, '0' duplicate.
 */
export const applyScript = `
local batch = ARGV[1]
local ttl = tonumber(ARGV[2])
local daysTtl = tonumber(ARGV[3])
local nDays = tonumber(ARGV[5])
local dayNames = {}
local dayTotals = {}
local p = 6
for j = 1, nDays do dayNames[j] = ARGV[p]; dayTotals[j] = 0; p = p + 1 end
local n = tonumber(ARGV[p]); p = p + 1
-- Older buckets that do not exist (a new campaign, a quiet day) need no lookup per event.
local old1 = redis.call('EXISTS', KEYS[4]) == 1
local old2 = redis.call('EXISTS', KEYS[5]) == 1
local out = {}
for i = 1, n do
  local id, amount, req, j = ARGV[p], tonumber(ARGV[p + 1]), ARGV[p + 2], tonumber(ARGV[p + 3])
  p = p + 4
  local seen = redis.call('HGET', KEYS[3], id)
  if not seen and old1 then seen = redis.call('HGET', KEYS[4], id) end
  if not seen and old2 then seen = redis.call('HGET', KEYS[5], id) end
  if seen then
    if seen == batch then out[i] = '1' else out[i] = '0' end
  else
    redis.call('HSET', KEYS[3], id, batch)
    dayTotals[j] = dayTotals[j] + amount
    out[i] = '1'
  end
  if req ~= '' then redis.call('HDEL', KEYS[1], req) end
end
-- Amounts are integers below 2^53 and so are their sums (the caller checks): exact in a Lua
-- number, and written with %d so that no exponent notation reaches INCRBY.
local touched = false
for j = 1, nDays do
  if dayTotals[j] > 0 then
    local total = string.format('%d', dayTotals[j])
    redis.call('INCRBY', KEYS[5 + j], total)
    redis.call('EXPIRE', KEYS[5 + j], ttl)
    redis.call('HINCRBY', KEYS[2], dayNames[j], total)
    touched = true
  end
end
if touched then redis.call('EXPIRE', KEYS[2], daysTtl) end
if n > 0 then redis.call('PEXPIREAT', KEYS[3], ARGV[4]) end
local nu = tonumber(ARGV[p]); p = p + 1
for i = 1, nu do redis.call('HSET', KEYS[1], ARGV[p], ARGV[p + 1]); p = p + 2 end
local nd = tonumber(ARGV[p]); p = p + 1
for i = 1, nd do redis.call('HDEL', KEYS[1], ARGV[p]); p = p + 1 end
if nu > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return table.concat(out)
`;

type PacerRedis = Redis & {
  pacerApply(...args: (string | number)[]): Promise<string>;
};

export interface RedisStoreOptions {
  prefix: string;
  counterTtlSeconds: number;
  /** Labels log lines ('shard 3', 'admin'). */
  label: string;
}

/** Opens an ioredis client for the pacer: fail fast while disconnected, reconnect within a second. */
export function openRedis(url: string, label: string): Redis {
  let down = false;
  const redis = new Redis(url, {
    // While disconnected a command fails at once instead of queueing without bound: the caller's
    // breaker and spool take over. Commands sent but unanswered are still resent after a
    // reconnect (autoResendUnfulfilledCommands), which is why every write is idempotent.
    enableOfflineQueue: false,
    connectTimeout: 2_000,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(50 * times, 1_000),
  });
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    log('warn', 'redis connection error', { who: label, error: err.message });
  });
  redis.on('ready', () => {
    if (down) log('info', 'redis connection restored', { who: label });
    down = false;
  });
  return redis;
}

/** Resolves when the client is connected, or after timeoutMs (then commands fail until it is). */
export function whenReady(redis: Redis, timeoutMs: number): Promise<boolean> {
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

/** Real-time counters in Redis: one EVALSHA per campaign per batch, all in one pipeline. */
export class RedisCounterStore implements CounterStore {
  readonly kind = 'redis';
  private readonly redis: PacerRedis;

  constructor(
    redis: Redis,
    private readonly options: RedisStoreOptions,
  ) {
    if (!('pacerApply' in redis)) redis.defineCommand('pacerApply', { lua: applyScript });
    this.redis = redis as PacerRedis;
  }

  get client(): Redis {
    return this.redis;
  }

  async apply(batch: FlushBatch): Promise<FlushOutcome> {
    const grouped = groupBatch(batch);
    const bucket = Math.floor(batch.atMs / dayMs);
    // The newest bucket must outlive the two days after its own: it is read until then.
    const bucketExpireAtMs = (bucket + limits.dedupeBuckets) * dayMs + 3_600_000;
    const pipeline = this.redis.pipeline() as unknown as PacerRedis & { exec(): Promise<[Error | null, unknown][] | null> };
    for (const c of grouped.campaigns) {
      const { keys, argv } = this.scriptArgs(c, batch.batchId, bucket, bucketExpireAtMs);
      pipeline.pacerApply(keys.length, ...keys, ...argv);
    }
    const replies = await pipeline.exec();
    if (replies === null || replies.length !== grouped.campaigns.length) throw new Error('redis pipeline returned no replies');
    const flags: boolean[][] = [];
    replies.forEach(([err, reply], i) => {
      if (err !== null) throw err;
      const s = String(reply);
      const c = grouped.campaigns[i]!;
      if (s.length !== c.events.length) throw new Error(`redis script answered ${s.length} flags for ${c.events.length} events`);
      const f: boolean[] = new Array(s.length);
      for (let k = 0; k < s.length; k++) f[k] = s.charCodeAt(k) === 49; // '1'
      flags.push(f);
    });
    return outcomeOf(batch, grouped, flags);
  }

  private scriptArgs(c: CampaignOps, batchId: string, bucket: number, bucketExpireAtMs: number): { keys: string[]; argv: (string | number)[] } {
    const k = campaignKeys(this.options.prefix, c.campaignId);
    const keys = [k.reservations, k.days, k.events(bucket), k.events(bucket - 1), k.events(bucket - 2)];
    const dayIndex = new Map<string, number>();
    for (const e of c.events) {
      if (dayIndex.has(e.day)) continue;
      dayIndex.set(e.day, dayIndex.size + 1);
      keys.push(k.day(e.day));
    }
    const argv: (string | number)[] = [
      batchId,
      this.options.counterTtlSeconds,
      Math.max(limits.lifetimeDaysTtlSeconds, this.options.counterTtlSeconds),
      bucketExpireAtMs,
      dayIndex.size,
      ...dayIndex.keys(),
      c.events.length,
    ];
    let sum = 0;
    for (const e of c.events) {
      argv.push(e.eventId, e.amountMicros, e.requestId, dayIndex.get(e.day)!);
      sum += e.amountMicros;
    }
    // The script adds a day's amounts in a Lua number: exact while the sum is a safe integer.
    if (!Number.isSafeInteger(sum)) throw new RangeError(`batch amounts of ${c.campaignId} sum past 2^53`);
    argv.push(c.upserts.length);
    for (const r of c.upserts) argv.push(r.requestId, `${r.amountMicros}:${r.expiresAtMs}`);
    argv.push(c.deletes.length, ...c.deletes);
    return { keys, argv };
  }

  async load(campaignId: string, day: string, flightStartDay: string | null): Promise<CampaignSnapshot> {
    const k = campaignKeys(this.options.prefix, campaignId);
    const p = this.redis.pipeline();
    p.get(k.day(day));
    p.hgetall(k.reservations);
    if (flightStartDay !== null) p.hgetall(k.days);
    const replies = await p.exec();
    if (replies === null) throw new Error('redis pipeline returned no replies');
    for (const [err] of replies) if (err !== null) throw err;
    const settled = replies[0]![1] === null ? 0 : int(replies[0]![1], `${k.day(day)}`);
    const now = Date.now();
    const reservations: StoredReservation[] = [];
    const expired: string[] = [];
    for (const [requestId, value] of Object.entries((replies[1]![1] ?? {}) as Record<string, string>)) {
      const sep = value.indexOf(':');
      const amountMicros = int(value.slice(0, sep), `reservation ${requestId} amount`);
      const expiresAtMs = int(value.slice(sep + 1), `reservation ${requestId} expiry`);
      // Redis 7.0 has no per-field TTL: the expiry travels in the value and is applied here.
      if (expiresAtMs <= now) expired.push(requestId);
      else reservations.push({ requestId, amountMicros, expiresAtMs });
    }
    if (expired.length > 0) void this.redis.hdel(k.reservations, ...expired).catch(() => undefined);
    let lifetime = 0;
    if (flightStartDay !== null) {
      for (const [d, v] of Object.entries((replies[2]![1] ?? {}) as Record<string, string>)) {
        if (d >= flightStartDay && d < day) lifetime += int(v, `${k.days} ${d}`);
      }
      if (!Number.isSafeInteger(lifetime)) throw new RangeError(`lifetime settled of ${campaignId} overflows`);
    }
    return { settledMicros: settled, lifetimeSettledMicros: lifetime, reservations };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
