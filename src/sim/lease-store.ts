import type { StoredReservation } from '../../shards/ports.js';
import { checkRequest, type GrantRequest, type LeaseAnswer, type LeaseCalls, LeaseInputError, type LeaseRequest, type LeaseSnapshot, money } from '../store/leases.js';

/**
 * The lease script of src/store/leases.ts in memory, for the fleet simulator (src/sim/fleet.ts):
 * the same arithmetic, step by step and in the script's order, on a clock given to it (the
 * simulated one, standing for Redis' TIME) and the settled counters of a store given to it (the
 * simulator's memory store, which every simulated instance flushes to). test/sim/lease-store.test.ts
 * runs one sequence of calls against this and against the real script on Redis and compares every
 * answer, so the two cannot drift. What it leaves out: key TTLs (a simulated run is days long at
 * most; the script's keys live counterTtlSeconds).
 */
export interface LeaseCounters {
  /** The settled counter of a campaign-day (P:{c}:d:<day>). */
  settledOf(campaignId: string, day: string): number;
  /** The campaign's live reservations in the store (P:{c}:res). */
  reservationsOf(campaignId: string): Iterable<string>;
}

interface Held {
  a: number;
  u: number;
  r: number;
  e: number;
  hu: number;
}

interface DayState {
  budget: number | null;
  version: number | null;
  leases: Map<string, Held>;
}

export class MemoryLeaseStore implements LeaseCalls {
  private readonly days = new Map<string, DayState>();

  constructor(
    private readonly now: () => number,
    private readonly counters: LeaseCounters,
  ) {}

  async grant(req: GrantRequest): Promise<LeaseAnswer> {
    checkRequest(req);
    money('wantMicros', req.wantMicros);
    if (!Number.isSafeInteger(req.ttlMs) || req.ttlMs < 1 || req.ttlMs > 86_400_000) throw new LeaseInputError(`ttlMs must be 1 to 86400000, got ${req.ttlMs}`);
    return this.run('grant', req, req.wantMicros, req.ttlMs);
  }

  async giveBack(req: LeaseRequest): Promise<LeaseAnswer> {
    checkRequest(req);
    return this.run('return', req, 0, 1);
  }

  async missingReservations(campaignId: string, requestIds: readonly string[]): Promise<string[]> {
    if (requestIds.length === 0) return [];
    const live = new Set(this.counters.reservationsOf(campaignId));
    return requestIds.filter((id) => !live.has(id));
  }

  async snapshot(campaignId: string, day: string): Promise<LeaseSnapshot> {
    const now = Math.floor(this.now());
    const st = this.state(campaignId, day);
    const { others, out } = this.scan(st, '', now);
    return { budgetMicros: st.budget ?? 0, settledMicros: this.counters.settledOf(campaignId, day), leasedMicros: others, nowMs: now, leases: out };
  }

  /** Σ live lease money of a campaign-day (the auditor's view: settled + this ≤ budget). */
  leasedOf(campaignId: string, day: string): number {
    const now = Math.floor(this.now());
    return this.scan(this.state(campaignId, day), '', now).others;
  }

  private state(campaignId: string, day: string): DayState {
    const key = `${campaignId}\n${day}`;
    let st = this.days.get(key);
    if (st === undefined) this.days.set(key, (st = { budget: null, version: null, leases: new Map() }));
    return st;
  }

  /** The script's loop over HGETALL: live money of the others, and their expired entries dropped. */
  private scan(st: DayState, holder: string, now: number): { others: number; mine: Held | null; out: LeaseSnapshot['leases'] } {
    let others = 0;
    let mine: Held | null = null;
    const out: LeaseSnapshot['leases'] = [];
    for (const [h, l] of [...st.leases]) {
      let live = 0;
      if (l.e > now) live = l.a;
      else if (l.hu > now) live = Math.min(l.a, l.r);
      if (h === holder) mine = { ...l };
      else if (live > 0) {
        others += live;
        out.push({ holder: h, liveMicros: live, expiresAtMs: l.e });
      } else if (l.e <= now && l.hu <= now) st.leases.delete(h);
    }
    return { others, mine, out };
  }

  private run(op: 'grant' | 'return', req: LeaseRequest, want: number, ttl: number): LeaseAnswer {
    const now = Math.floor(this.now());
    const st = this.state(req.campaignId, req.day);
    if (st.version === null || req.budgetVersion > st.version) {
      st.budget = req.budgetMicros;
      st.version = req.budgetVersion;
    }
    const budget = st.budget ?? 0;
    const settled = this.counters.settledOf(req.campaignId, req.day);
    const { others, mine } = this.scan(st, req.holder, now);

    let amount = 0;
    let lastUsed = 0;
    let holdUntil = 0;
    if (mine !== null) {
      amount = mine.a;
      lastUsed = mine.u;
      holdUntil = mine.hu;
      if (mine.e <= now) amount = mine.hu > now ? Math.min(mine.a, mine.r) : 0;
    }
    if (req.usedTotalMicros > lastUsed) {
      amount = Math.max(0, amount - (req.usedTotalMicros - lastUsed));
      lastUsed = req.usedTotalMicros;
    }
    let promised = Math.min(amount, req.reservedMicros);
    holdUntil = Math.max(req.reservedUntilMs, 0);

    if (op === 'grant') {
      const headroom = budget - settled - others;
      let granted = Math.min(want, headroom);
      if (granted < promised) granted = promised;
      if (granted < 0) granted = 0;
      const expires = now + ttl;
      st.leases.set(req.holder, { a: granted, u: lastUsed, r: req.reservedMicros, e: expires, hu: Math.max(holdUntil, expires) });
      return { grantedMicros: granted, expiresAtMs: expires, settledMicros: settled, leasedByOthersMicros: others, budgetMicros: budget, nowMs: now };
    }
    if (promised > 0 && holdUntil > now) {
      st.leases.set(req.holder, { a: promised, u: lastUsed, r: promised, e: now, hu: holdUntil });
    } else {
      st.leases.delete(req.holder);
      promised = 0;
    }
    return { grantedMicros: promised, expiresAtMs: now, settledMicros: settled, leasedByOthersMicros: others, budgetMicros: budget, nowMs: now };
  }
}

/** The store's live reservation IDs of a campaign, from a CampaignSnapshot's list. */
export function reservationIds(list: readonly StoredReservation[]): string[] {
  return list.map((r) => r.requestId);
}
