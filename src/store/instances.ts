import { limits } from '../../shards/limits.js';
import type { RedisClient } from './redis.js';

/**
 * The instance registry: every pacer with a Redis store registers itself under its key prefix and
 * renews that entry every second (docs/operations.md, "Instances sharing a Redis"), so that an
 * instance can tell whether it shares the counters with others.
 *
 * Why: without budget leases (PACER_LEASES=off, the default) an instance caps every budget from its
 * own memory. Two such instances on one Redis prefix each allow a campaign its whole budget, and
 * together spend up to twice it, silently. With leases on, an instance is safe next to other
 * leased ones only: an unleased one beside it spends outside every lease. So an instance refuses
 * to serve when it would share the prefix with an instance it cannot share budgets with:
 *
 *   this instance   another live one   conflict
 *   leases off      any                yes: each would allow the full budget
 *   leases on       leases off         yes: the other spends outside the leases
 *   leases on       leases on          no
 *
 * One hash per prefix, `PREFIX:instances` (one slot, so a script reads and writes it atomically on
 * Redis Cluster too): field = the instance's stable name (PACER_INSTANCE_NAME, by default host name
 * and data directory, so a restart of the same instance finds its own entry and replaces it),
 * value = "<instanceId>|<leases 0/1>|<sinceMs>|<expiresAtMs>", in Redis' clock. An entry not
 * renewed within limits.instanceTtlMs (the process died) is ignored and deleted by the next call.
 */
export const instancesScript = `
local k = KEYS[1]
local op, name, id, leases, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local since = now
local mine = nil
local out = {}
local all = redis.call('HGETALL', k)
for i = 1, #all, 2 do
  local n, v = all[i], all[i + 1]
  local vid, vl, vs, ve = string.match(v, '^([^|]+)|([01])|(%d+)|(%d+)$')
  if vid == nil or tonumber(ve) <= now then
    redis.call('HDEL', k, n)
  else
    if n == name then
      mine = vid
      if vid == id then since = tonumber(vs) end
    end
    if n ~= name or vid ~= id then
      out[#out + 1] = n
      out[#out + 1] = vid
      out[#out + 1] = vl
      out[#out + 1] = vs
    end
  end
end
if op == 'beat' then
  redis.call('HSET', k, name, id .. '|' .. leases .. '|' .. string.format('%d', since) .. '|' .. string.format('%d', now + ttl))
  redis.call('PEXPIRE', k, ttl * 3)
elseif op == 'leave' and mine == id then
  redis.call('HDEL', k, name)
end
return { string.format('%d', now), string.format('%d', since), out }
`;

export interface InstanceEntry {
  /** The stable name (PACER_INSTANCE_NAME, or host name and data directory). */
  name: string;
  /** The process start (config.instanceId). */
  instanceId: string;
  leases: boolean;
  /** When this process first registered, in Redis' clock. */
  sinceMs: number;
}

export interface RegistryAnswer {
  nowMs: number;
  /** When this process first registered (nowMs if it has not yet). */
  sinceMs: number;
  /** Every other live entry, including an entry under this name from another process start. */
  others: InstanceEntry[];
}

type RegistryRedis = RedisClient & { pacerInstances(...args: (string | number)[]): Promise<unknown> };

export class InstanceRegistry {
  private readonly redis: RegistryRedis;
  private readonly key: string;

  constructor(
    redis: RedisClient,
    prefix: string,
    readonly self: { name: string; instanceId: string; leases: boolean },
  ) {
    if (!('pacerInstances' in redis)) redis.defineCommand('pacerInstances', { numberOfKeys: 1, lua: instancesScript });
    this.redis = redis as RegistryRedis;
    this.key = `${prefix}:instances`;
  }

  /** Reads the live entries without registering (an instance waiting to start). */
  check(): Promise<RegistryAnswer> {
    return this.call('check');
  }

  /** Registers or renews this process's entry and reads the others. */
  beat(): Promise<RegistryAnswer> {
    return this.call('beat');
  }

  /** Removes this process's entry (graceful shutdown): a successor need not wait for its expiry. */
  async leave(): Promise<void> {
    await this.call('leave');
  }

  private async call(op: 'check' | 'beat' | 'leave'): Promise<RegistryAnswer> {
    const r = (await this.redis.pacerInstances(this.key, op, this.self.name, this.self.instanceId, this.self.leases ? '1' : '0', limits.instanceTtlMs)) as [string, string, string[]];
    const others: InstanceEntry[] = [];
    for (let i = 0; i + 3 < r[2].length; i += 4) {
      others.push({ name: r[2][i]!, instanceId: r[2][i + 1]!, leases: r[2][i + 2] === '1', sinceMs: Number(r[2][i + 3]) });
    }
    return { nowMs: Number(r[0]), sinceMs: Number(r[1]), others };
  }
}

/**
 * The live entries this instance cannot share a prefix with (the table above). An entry under this
 * instance's own name from another process start is its own earlier run (killed, and restarted
 * before the entry expired; or still draining in a restart that overlaps it), never a conflict:
 * names must be unique per instance, which the default (host name and data directory) is.
 */
export function conflictsOf(self: { name: string; leases: boolean }, others: readonly InstanceEntry[]): InstanceEntry[] {
  return others.filter((o) => o.name !== self.name && (!self.leases || !o.leases));
}

/** Of two conflicting instances, the one that registered later gives way (ties: the larger name). */
export function givesWay(sinceMs: number, name: string, other: InstanceEntry): boolean {
  return sinceMs > other.sinceMs || (sinceMs === other.sinceMs && name > other.name);
}

/** The operator's message: who conflicts, why it is unsafe, and the two fixes. */
export function conflictMessage(self: { name: string; leases: boolean }, prefix: string, conflicts: readonly InstanceEntry[]): string {
  const who = conflicts
    .slice(0, 3)
    .map((o) => `${JSON.stringify(o.name)} (leases ${o.leases ? 'on' : 'off'})`)
    .join(', ');
  const more = conflicts.length > 3 ? ` and ${conflicts.length - 3} more` : '';
  const why = self.leases
    ? 'an instance without leases decides from its own memory, outside every lease, so together they could overspend'
    : 'without leases each instance allows every budget in full from its own memory, so together they could spend a budget several times';
  return `PACER_ERR_INSTANCE_CONFLICT: this instance ${JSON.stringify(self.name)} (leases ${self.leases ? 'on' : 'off'}) shares the Redis key prefix ${JSON.stringify(prefix)} with the live instance ${who}${more}; ${why}. Set PACER_LEASES=on on every instance that shares this prefix, or give this one its own PACER_REDIS_KEY_PREFIX`;
}

export interface GuardHooks {
  /** The conflict that keeps this instance from serving, or null once there is none. */
  onConflict(message: string | null): void;
  /** Serving already, this instance must stop: it registered after a live instance it conflicts with. */
  onGiveWay(message: string): void;
  log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/**
 * Runs the registry for the process (in the admin thread, src/admin/worker.ts, which reports the
 * conflict to main for /readyz and stops the process on onGiveWay): at startup, waits until no live instance
 * conflicts (not registering meanwhile, so a waiting instance disturbs nobody), then registers and
 * renews every instanceHeartbeatMs. A conflict found while serving (two instances that started at
 * the same moment, or one that started while Redis was away) stops the one that registered later.
 * Its timers are real ones: this is the process around the shards, not shard code.
 */
export class InstanceGuard {
  private stopped = false;
  private registered = false;
  private loggedAtMs = -Infinity;
  private beating: Promise<void> | null = null;

  constructor(
    private readonly registry: InstanceRegistry,
    private readonly prefix: string,
    private readonly hooks: GuardHooks,
    private readonly onClose: () => void,
  ) {}

  /** Resolves when this instance may serve: no conflict, or Redis unreachable at startup. */
  async start(): Promise<void> {
    const deadline = Date.now() + limits.instanceStartCheckMs;
    let answered = false;
    while (!this.stopped) {
      let conflicts: InstanceEntry[];
      try {
        conflicts = conflictsOf(this.registry.self, (await within(this.registry.check(), limits.instanceStartCheckMs)).others);
        answered = true;
      } catch (err) {
        if (answered || Date.now() < deadline) {
          await sleep(200);
          continue;
        }
        this.hooks.log('warn', 'instance registry not reachable: starting without checking for other instances on this Redis prefix; checked once Redis answers', { error: (err as Error).message });
        break;
      }
      if (conflicts.length === 0) break;
      const message = conflictMessage(this.registry.self, this.prefix, conflicts);
      this.hooks.onConflict(message);
      this.logConflict('error', `${message}. Not serving until it is gone (checked every ${limits.instanceHeartbeatMs} ms).`);
      await sleep(limits.instanceHeartbeatMs);
    }
    if (this.loggedAtMs > -Infinity) this.hooks.log('info', 'instance conflict gone: starting');
    this.loggedAtMs = -Infinity;
    this.hooks.onConflict(null);
    this.beating = this.beat();
  }

  private async beat(): Promise<void> {
    while (!this.stopped) {
      try {
        const a = await within(this.registry.beat(), limits.instanceHeartbeatMs * 2);
        this.registered = true;
        this.check(a);
      } catch {
        // Redis away: the counter store says so on its own; the entry is renewed when it answers.
      }
      if (this.stopped) break;
      await sleep(limits.instanceHeartbeatMs);
    }
  }

  private check(a: RegistryAnswer): void {
    const conflicts = conflictsOf(this.registry.self, a.others);
    if (conflicts.length === 0) return;
    const message = conflictMessage(this.registry.self, this.prefix, conflicts);
    if (conflicts.some((o) => givesWay(a.sinceMs, this.registry.self.name, o))) {
      this.stopped = true;
      this.hooks.log('error', `${message}. This instance registered after it, so it stops (exit code 78).`, { code: 'PACER_ERR_INSTANCE_CONFLICT' });
      this.hooks.onGiveWay(message);
      return;
    }
    this.logConflict('warn', `${message}. The other instance registered later and stops.`);
  }

  private logConflict(level: 'warn' | 'error', message: string): void {
    const now = Date.now();
    if (now - this.loggedAtMs < limits.instanceConflictLogMs) return;
    this.loggedAtMs = now;
    this.hooks.log(level, message, { code: 'PACER_ERR_INSTANCE_CONFLICT' });
  }

  /** Graceful shutdown, after the last flush: the entry goes, so a successor starts at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.beating?.catch(() => undefined);
    if (this.registered) await within(this.registry.leave(), 500).catch(() => undefined);
    this.onClose();
  }
}
