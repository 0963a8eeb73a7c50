import { limits } from '../../shards/limits.js';
import { Cluster } from 'ioredis';
import { checkReplicated, evalAsking, execRefreshing, queueWait, type RedisClient } from './redis.js';

/**
 * Budget leases: the primitive that will let several pacer instances share one campaign's day
 * budget with zero overspend (ARCHITECTURE.md, "Budget leases"). Not wired into the shards yet.
 *
 * A lease is a slice of a campaign's day budget that one holder (an instance's shard) may commit
 * without asking anyone. A Lua script on the campaign's hash slot keeps, next to the day's settled
 * counter that the flush script writes (P:{c}:d:<day>):
 *
 *   P:{c}:lb:<day>  hash  budget, version: the day budget of the highest configuration version seen
 *   P:{c}:l:<day>   hash  holder → "amount:usedTotal:reserved:expiresAtMs:holdUntilMs"
 *
 * and grants so that settled + Σ live leases ≤ budget at every moment (a grant is never more than
 * budget − settled − the other leases). Time is Redis' own clock (TIME), one clock for every holder.
 *
 * - amount: money the holder may commit (reserve or spend) beyond what has settled. Its settled
 *   spend leaves the lease as the holder reports it: usedTotal is the holder's cumulative settled
 *   spend of the day, as acknowledged by the store, so a retried call subtracts nothing twice.
 *   Between a flush and the next report that spend counts twice (settled and leased): the error is
 *   on the safe side.
 * - reserved, holdUntilMs: what the holder has promised to bids still in flight, and when the last
 *   of those reservations expires. A lease that expires (its holder died) or is returned keeps
 *   counting min(amount, reserved) until holdUntilMs, because those bids can still win and their
 *   spend will settle wherever their notices arrive; the rest of its money returns at once.
 * - A renewal never takes back money the holder has already promised: the new amount is at least
 *   min(amount, reserved), even when the budget was lowered under it.
 */
export const leaseScript = `
local kDay, kBudget, kLeases = KEYS[1], KEYS[2], KEYS[3]
local op, holder = ARGV[1], ARGV[2]
local budgetArg, versionArg = tonumber(ARGV[3]), tonumber(ARGV[4])
local usedTotal, reserved, reservedUntil = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local want, ttl, keyTtl = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- The budget of the highest configuration version wins: instances that have not yet heard of a
-- budget change cannot widen the day back to the old budget.
local stored = redis.call('HMGET', kBudget, 'budget', 'version')
local budget, version = tonumber(stored[1]), tonumber(stored[2])
if op ~= 'read' and (version == nil or versionArg > version) then
  budget, version = budgetArg, versionArg
  redis.call('HSET', kBudget, 'budget', string.format('%d', budget), 'version', string.format('%d', version))
  redis.call('EXPIRE', kBudget, keyTtl)
end
budget = budget or 0
local settled = tonumber(redis.call('GET', kDay) or '0')

-- What each lease holds now; expired ones keep their reserved part until holdUntil, then go.
local others, mine = 0, nil
local all = redis.call('HGETALL', kLeases)
local out = {}
for i = 1, #all, 2 do
  local h, v = all[i], all[i + 1]
  local a, u, r, e, hu = string.match(v, '^(%d+):(%d+):(%d+):(%d+):(%d+)$')
  a, u, r, e, hu = tonumber(a), tonumber(u), tonumber(r), tonumber(e), tonumber(hu)
  local live = 0
  if e > now then live = a elseif hu > now then live = math.min(a, r) end
  if h == holder then
    mine = { a, u, r, e, hu }
  elseif live > 0 then
    others = others + live
    out[#out + 1] = h
    out[#out + 1] = string.format('%d', live)
    out[#out + 1] = string.format('%d', e)
  elseif e <= now and hu <= now then
    redis.call('HDEL', kLeases, h)
  end
end
if op == 'read' then
  return { string.format('%d', budget), string.format('%d', settled), string.format('%d', others), string.format('%d', now), out }
end

-- The holder's own lease, less the spend it reports settled since its last call.
local amount, lastUsed, holdUntil = 0, 0, 0
if mine ~= nil then
  amount, lastUsed, holdUntil = mine[1], mine[2], mine[5]
  if mine[4] <= now then
    -- Expired while the holder was away: only its still-reserved part was being counted.
    if mine[5] > now then amount = math.min(mine[1], mine[3]) else amount = 0 end
  end
end
if usedTotal > lastUsed then
  amount = math.max(0, amount - (usedTotal - lastUsed))
  lastUsed = usedTotal
end
local promised = math.min(amount, reserved)
holdUntil = math.max(reservedUntil, 0)

if op == 'grant' then
  local headroom = budget - settled - others
  local new = math.min(want, headroom)
  if new < promised then new = promised end
  if new < 0 then new = 0 end
  local expires = now + ttl
  redis.call('HSET', kLeases, holder, string.format('%d:%d:%d:%d:%d', new, lastUsed, reserved, expires, math.max(holdUntil, expires)))
  redis.call('PEXPIRE', kLeases, keyTtl * 1000)
  return { string.format('%d', new), string.format('%d', expires), string.format('%d', settled), string.format('%d', others), string.format('%d', budget), string.format('%d', now) }
end

-- op == 'return': the unreserved money comes back now; the promised part waits for its bids.
if promised > 0 and holdUntil > now then
  redis.call('HSET', kLeases, holder, string.format('%d:%d:%d:%d:%d', promised, lastUsed, promised, now, holdUntil))
else
  redis.call('HDEL', kLeases, holder)
  promised = 0
end
return { string.format('%d', promised), string.format('%d', now), string.format('%d', settled), string.format('%d', others), string.format('%d', budget), string.format('%d', now) }
`;

export interface LeaseRequest {
  campaignId: string;
  /** The campaign's local day, as the counters name it (YYYY-MM-DD). */
  day: string;
  /** Who holds the lease: unique per instance and shard, e.g. `<instanceId>:<shard>`. */
  holder: string;
  /** The day budget in the holder's configuration, and that configuration's version. */
  budgetMicros: number;
  budgetVersion: number;
  /**
   * The holder's settled spend of this campaign-day so far, cumulative, counting only spend the
   * counter store has acknowledged (so it is already in the settled counter).
   */
  usedTotalMicros: number;
  /** Money the holder has reserved for bids still in flight, and when the last of them expires. */
  reservedMicros: number;
  reservedUntilMs: number;
}

export interface GrantRequest extends LeaseRequest {
  /** How much the holder would like to hold (shards/lease-size.ts sizes it). */
  wantMicros: number;
  /** Lifetime of the lease from now (limits.leaseTtlMs). */
  ttlMs: number;
}

export interface LeaseAnswer {
  /** What the holder holds now: it may commit up to this beyond the settled counter. */
  grantedMicros: number;
  /** When the lease runs out (Redis' clock, epoch ms), unless renewed. */
  expiresAtMs: number;
  /** The campaign-day's settled spend from every instance: the global spend pacing needs. */
  settledMicros: number;
  /** Money held by other holders' live leases. */
  leasedByOthersMicros: number;
  /** The day budget the script granted against (of the highest configuration version seen). */
  budgetMicros: number;
  /** Redis' clock when it answered: holders compare expiries with it, not with their own clocks. */
  nowMs: number;
}

export interface LeaseSnapshot {
  budgetMicros: number;
  settledMicros: number;
  leasedMicros: number;
  nowMs: number;
  leases: { holder: string; liveMicros: number; expiresAtMs: number }[];
}

/** A lease request that breaks the contract: a bug in the caller, refused before Redis sees it. */
export class LeaseInputError extends Error {
  readonly code = 'PACER_ERR_LEASE_INPUT';
  constructor(message: string) {
    super(message);
    this.name = 'LeaseInputError';
  }
}

/**
 * The calls the lease keeper (src/shard/lease-keeper.ts) makes: LeaseClient on Redis, and the
 * simulator's in-memory twin of the script (src/sim/lease-store.ts) on a simulated clock.
 */
export type LeaseCalls = Pick<LeaseClient, 'grant' | 'giveBack' | 'missingReservations'>;

type LeaseRedis = RedisClient & { pacerLease(...args: (string | number)[]): Promise<unknown> };

/**
 * The typed client of the lease script. One call is one script run on the campaign's slot, so it
 * works on one Redis and on Redis Cluster alike (ioredis routes it, following MOVED and ASK).
 */
export class LeaseClient {
  private readonly redis: LeaseRedis;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    /** Lease and budget keys expire this long after their last write (counterTtlSeconds). */
    private readonly keyTtlSeconds: number,
    /**
     * PACER_REDIS_WAIT_REPLICAS: a grant or return counts only once this many replicas (or as
     * many as the node has connected, if fewer) acknowledged it (WAIT in the same pipeline). A
     * grant the master answered but a failover lost would let the new master grant the same
     * money to another holder, so an unconfirmed grant fails and is not used: the holder keeps
     * what Lease.sending left it, which the lost record and the older one both cover.
     */
    private readonly waitReplicas = 0,
  ) {
    if (!('pacerLease' in redis)) redis.defineCommand('pacerLease', { numberOfKeys: 3, lua: leaseScript });
    this.redis = redis as LeaseRedis;
  }

  /** Takes a lease, or renews the holder's own: reports usage, gets the new amount and expiry. */
  async grant(req: GrantRequest): Promise<LeaseAnswer> {
    checkRequest(req);
    money('wantMicros', req.wantMicros);
    if (!Number.isSafeInteger(req.ttlMs) || req.ttlMs < 1 || req.ttlMs > 86_400_000) throw new LeaseInputError(`ttlMs must be 1 to 86400000, got ${req.ttlMs}`);
    return answerOf(await this.call('grant', req, req.wantMicros, req.ttlMs));
  }

  /**
   * Gives the lease back (graceful shutdown, or the campaign went idle): its unreserved money is
   * free for others at once; its reserved part stays counted until reservedUntilMs.
   */
  async giveBack(req: LeaseRequest): Promise<LeaseAnswer> {
    checkRequest(req);
    return answerOf(await this.call('return', req, 0, 1));
  }

  /** Budget, settled spend and every live lease of a campaign-day, read in one script run. */
  async snapshot(campaignId: string, day: string): Promise<LeaseSnapshot> {
    const k = this.keys(campaignId, day);
    const r = (await this.redis.pacerLease(k.day, k.budget, k.leases, 'read', '', 0, 0, 0, 0, 0, 0, 1, this.keyTtlSeconds)) as [string, string, string, string, string[]];
    const leases: LeaseSnapshot['leases'] = [];
    for (let i = 0; i < r[4].length; i += 3) leases.push({ holder: r[4][i]!, liveMicros: Number(r[4][i + 1]), expiresAtMs: Number(r[4][i + 2]) });
    return { budgetMicros: Number(r[0]), settledMicros: Number(r[1]), leasedMicros: Number(r[2]), nowMs: Number(r[3]), leases };
  }

  /**
   * Which of these reservations of a campaign the store no longer holds: a spend settled them (at
   * any instance: the flush script deletes a reservation with the event that settles it) or they
   * were released or expired. One HMGET on the campaign's slot.
   */
  async missingReservations(campaignId: string, requestIds: readonly string[]): Promise<string[]> {
    if (requestIds.length === 0) return [];
    const values = await this.redis.hmget(`${this.prefix}:{${campaignId}}:res`, ...requestIds);
    const out: string[] = [];
    for (let i = 0; i < requestIds.length; i++) if (values[i] === null) out.push(requestIds[i]!);
    return out;
  }

  private async call(op: 'grant' | 'return', req: LeaseRequest, want: number, ttlMs: number): Promise<unknown> {
    const k = this.keys(req.campaignId, req.day);
    const args: (string | number)[] = [
      k.day, k.budget, k.leases, op, req.holder, req.budgetMicros, req.budgetVersion,
      req.usedTotalMicros, req.reservedMicros, req.reservedUntilMs, want, ttlMs, this.keyTtlSeconds,
    ];
    if (this.waitReplicas === 0) return this.redis.pacerLease(...args);
    const cluster = this.redis instanceof Cluster ? this.redis : null;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.callWaited(cluster, args);
      } catch (e) {
        const err = e as Error;
        // A slot being migrated (a resharding): ASK is followed to the importing node, TRYAGAIN
        // (the campaign's keys split between the two nodes for a moment) waits and starts over.
        // Bounded by the redirections limit and, above it, by the keeper's call deadline.
        if (cluster === null || attempt >= limits.redisClusterRedirectionsMax || !/^(ASK|TRYAGAIN) /.test(err.message)) throw err;
        if (err.message.startsWith('ASK ')) {
          try {
            const reply = await evalAsking(cluster, err, leaseScript, [3, ...args], this.waitReplicas);
            this.askFollowed++;
            return reply;
          } catch (e2) {
            if (!/^(ASK|TRYAGAIN|MOVED) /.test((e2 as Error).message)) throw e2;
          }
        }
        await new Promise((r) => setTimeout(r, limits.redisClusterRetryDelayMs));
      }
    }
  }

  /** Lease calls answered by the importing node after an ASK (PACER_REDIS_WAIT_REPLICAS only). */
  askFollowed = 0;

  /** The script, WAIT and ROLE in one pipeline on the campaign's node (WAIT follows its write). */
  private async callWaited(cluster: Cluster | null, args: (string | number)[]): Promise<unknown> {
    // WAIT must run on the connection that wrote: the script and WAIT go in one pipeline, which
    // the client sends to the node of the campaign's slot.
    const p = this.redis.pipeline() as unknown as { pacerLease(...a: (string | number)[]): unknown; exec(): Promise<[Error | null, unknown][] | null> };
    p.pacerLease(...args);
    queueWait(p, this.waitReplicas);
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await execRefreshing(cluster, p);
    } catch (e) {
      // A node gone (a master lost before its replica is promoted): learn the slot map again.
      cluster?.refreshSlotsCache();
      throw e;
    }
    if (replies === null || replies.length !== 3) throw new Error('redis pipeline returned no replies');
    const [err, reply] = replies[0]!;
    if (err !== null) {
      // This pipeline is not re-sent by the client. MOVED: learn the map, the keeper retries; ASK
      // and TRYAGAIN: the slot is migrating, and call() follows them.
      if (!/^(ASK|TRYAGAIN) /.test(err.message)) cluster?.refreshSlotsCache();
      throw err;
    }
    checkReplicated(replies[1]!, replies[2]!, this.waitReplicas);
    return reply;
  }

  /** The same hash tag as the counters (src/store/redis.ts campaignKeys): one slot per campaign. */
  private keys(campaignId: string, day: string) {
    const tag = `${this.prefix}:{${campaignId}}:`;
    return { day: `${tag}d:${day}`, budget: `${tag}lb:${day}`, leases: `${tag}l:${day}` };
  }
}

function answerOf(r: unknown): LeaseAnswer {
  const a = (r as string[]).map(Number);
  return { grantedMicros: a[0]!, expiresAtMs: a[1]!, settledMicros: a[2]!, leasedByOthersMicros: a[3]!, budgetMicros: a[4]!, nowMs: a[5]! };
}

const holderPattern = new RegExp(`^[A-Za-z0-9._:-]{1,${limits.leaseHolderLengthMax}}$`);
const dayPattern = /^\d{4}-\d{2}-\d{2}$/;

export function money(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0 || v > limits.dayTotalMicrosMax) {
    throw new LeaseInputError(`${name} must be integer micros from 0 to ${limits.dayTotalMicrosMax}, got ${v}`);
  }
}

export function checkRequest(req: LeaseRequest): void {
  if (!holderPattern.test(req.holder)) throw new LeaseInputError(`holder must be 1-${limits.leaseHolderLengthMax} of A-Z a-z 0-9 . _ : -`);
  if (!dayPattern.test(req.day)) throw new LeaseInputError('day must be YYYY-MM-DD');
  if (req.campaignId.length === 0 || req.campaignId.length > limits.campaignIdLengthMax || /[{}]/.test(req.campaignId)) {
    throw new LeaseInputError('campaignId must be 1-64 characters without braces');
  }
  money('budgetMicros', req.budgetMicros);
  money('usedTotalMicros', req.usedTotalMicros);
  money('reservedMicros', req.reservedMicros);
  if (!Number.isSafeInteger(req.budgetVersion) || req.budgetVersion < 0) throw new LeaseInputError('budgetVersion must be a non-negative integer');
  if (!Number.isSafeInteger(req.reservedUntilMs) || req.reservedUntilMs < 0) throw new LeaseInputError('reservedUntilMs must be epoch ms');
}
