import type { Campaign } from '../../shards/campaign.js';
import type { MemoryStore } from '../store/memory.js';

/**
 * The auditor's own ledger of one campaign, kept from what the simulator sent and was answered,
 * never from the actor's state: live reservations with their expiry, settled spend per local day,
 * the late spend the pacer could not refuse (a win notice after its reservation expired), and the
 * duplicates the actor holds in memory until the store rejects them. After every step of the
 * simulation `check` compares it with the actor and the store (TigerBeetle's VOPR auditor).
 */
export class AuditFailure extends Error {
  readonly code = 'PACER_ERR_AUDIT';
  constructor(
    message: string,
    readonly seed: number,
    readonly atMs: number,
  ) {
    super(`audit failed at ${new Date(atMs).toISOString()} (seed ${seed}): ${message}`);
    this.name = 'AuditFailure';
  }
}

interface DayMoney {
  /** Σ spend events applied (each eventId once). */
  settled: number;
  /** Σ spend applied without a live reservation (the stated tolerance). */
  late: number;
  /** Σ resent events the actor applied in memory and will take back when the store answers. */
  pendingDuplicates: number;
  /** Σ spend the store acknowledged as applied. */
  acknowledged: number;
}

export interface SentSpend {
  eventId: string;
  amount: number;
  day: string;
  duplicate: boolean;
  /** For a duplicate: applied in memory (the original had reached the store) rather than joined to it. */
  inMemory: boolean;
  matched: boolean;
}

export class Ledger {
  readonly reservations = new Map<string, { amount: number; expiresAtMs: number }>();
  reservedSum = 0;
  private readonly applied = new Set<string>();
  /** Copies of an eventId sent and not yet answered by the store. */
  private readonly inFlight = new Map<string, number>();
  /** Events the store answered at least once (the shard remembers them: limits.eventIdsRememberedMax). */
  private readonly answeredOnce = new Set<string>();
  readonly days = new Map<string, DayMoney>();
  lateEvents = 0;
  duplicates = 0;
  private lastAnsweredDay = '';

  constructor(readonly seed: number) {}

  day(key: string): DayMoney {
    let d = this.days.get(key);
    if (d === undefined) this.days.set(key, (d = { settled: 0, late: 0, pendingDuplicates: 0, acknowledged: 0 }));
    return d;
  }

  reserve(requestId: string, amount: number, expiresAtMs: number, nowMs: number): void {
    if (this.reservations.has(requestId)) throw new AuditFailure(`request ${requestId} reserved twice`, this.seed, nowMs);
    this.reservations.set(requestId, { amount, expiresAtMs });
    this.reservedSum += amount;
  }

  /** A loss notice: true when a live reservation was released (what the actor must answer). */
  release(requestId: string): boolean {
    const r = this.reservations.get(requestId);
    if (r === undefined) return false;
    this.reservations.delete(requestId);
    this.reservedSum -= r.amount;
    return true;
  }

  /** The shard's sweep at nowMs expires every reservation due by then. */
  expire(nowMs: number): void {
    for (const [id, r] of this.reservations) {
      if (r.expiresAtMs > nowMs) break; // one TTL for all, so insertion order is expiry order
      this.reservations.delete(id);
      this.reservedSum -= r.amount;
    }
  }

  /** A win notice as it is sent; `day` is the campaign's local day at that instant. */
  spend(eventId: string, requestId: string, amount: number, day: string): SentSpend {
    const money = this.day(day);
    const copies = this.inFlight.get(eventId) ?? 0;
    this.inFlight.set(eventId, copies + 1);
    if (this.applied.has(eventId)) {
      this.duplicates++;
      // The shard remembers the events the store answered: a resend of one changes nothing in memory.
      const inMemory = copies === 0 && !this.answeredOnce.has(eventId);
      if (inMemory) money.pendingDuplicates += amount;
      return { eventId, amount, day, duplicate: true, inMemory, matched: false };
    }
    this.applied.add(eventId);
    const matched = this.release(requestId);
    if (!matched) {
      money.late += amount;
      this.lateEvents++;
    }
    money.settled += amount;
    return { eventId, amount, day, duplicate: false, inMemory: false, matched };
  }

  /** The store answered a spend. */
  answered(s: SentSpend, applied: boolean): void {
    const left = (this.inFlight.get(s.eventId) ?? 1) - 1;
    if (left === 0) this.inFlight.delete(s.eventId);
    else this.inFlight.set(s.eventId, left);
    this.lastAnsweredDay = s.day;
    this.answeredOnce.add(s.eventId);
    if (applied) this.day(s.day).acknowledged += s.amount;
    else if (s.inMemory) this.day(s.day).pendingDuplicates -= s.amount;
  }

  /**
   * The invariants, after every step: reservations balance (reserved == Σ live reservations, as
   * the ledger knows them); settled == Σ applied events in the actor (plus duplicates it has yet to
   * take back); and settled spend stays within the budget plus the stated tolerance, the late
   * spend: settled + reserved ≤ budget + late. (The store is checked whenever it answers.)
   */
  check(c: Campaign, nowMs: number): void {
    if (c.reserved !== this.reservedSum || c.reservations.size !== this.reservations.size) {
      this.fail(`reservations do not balance: actor reserved ${c.reserved} in ${c.reservations.size}, ledger ${this.reservedSum} in ${this.reservations.size}`, nowMs);
    }
    const key = c.day.bounds.key;
    const money = this.day(key);
    if (c.settled !== money.settled + money.pendingDuplicates) {
      this.fail(`day ${key}: actor settled ${c.settled} ≠ Σ applied events ${money.settled} + pending duplicates ${money.pendingDuplicates}`, nowMs);
    }
    if (money.settled + this.reservedSum > c.budget + money.late) {
      this.fail(`day ${key}: settled ${money.settled} + reserved ${this.reservedSum} exceeds budget ${c.budget} + late spend ${money.late}`, nowMs);
    }
  }

  /** After the store answered a batch: settled in the store == Σ events it acknowledged. */
  checkStore(c: Campaign, store: MemoryStore, nowMs: number): void {
    for (const key of [c.day.bounds.key, this.lastAnsweredDay]) {
      if (key === '') continue;
      const stored = store.settledOf(c.id, key);
      const acknowledged = this.day(key).acknowledged;
      if (stored !== acknowledged) this.fail(`day ${key}: store settled ${stored} ≠ Σ acknowledged events ${acknowledged}`, nowMs);
    }
  }

  /** The first live reservation's expiry (insertion order is expiry order), or Infinity. */
  nextExpiryMs(): number {
    const first = this.reservations.values().next();
    return first.done === true ? Infinity : first.value.expiresAtMs;
  }

  /** After the final flush: every day's stored total equals the ledger's. */
  checkFinal(c: Campaign, store: MemoryStore, nowMs: number): void {
    c.checkInvariants();
    for (const [key, money] of this.days) {
      const stored = store.settledOf(c.id, key);
      if (stored !== money.settled) this.fail(`day ${key}: store settled ${stored} ≠ Σ applied events ${money.settled} after the final flush`, nowMs);
      if (money.pendingDuplicates !== 0) this.fail(`day ${key}: ${money.pendingDuplicates} micros of duplicates never taken back`, nowMs);
    }
  }

  fail(message: string, nowMs: number): never {
    throw new AuditFailure(message, this.seed, nowMs);
  }
}
