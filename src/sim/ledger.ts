import type { Campaign } from '../../shards/campaign.js';
import type { StoredReservation } from '../../shards/ports.js';

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
  /**
   * Σ resends the spool answered "applied" because it could not tell them from new events (their
   * original reached the store before the outage): memory holds them until the replay corrects it.
   */
  awaitingCorrection: number;
  /** Σ acknowledged spend a lossy store restart dropped (docs/storage.md, "Losing the last second"). */
  lost: number;
  /** Σ of that lost spend the running shard still holds in memory (gone at its next restart). */
  memoryOnly: number;
}

/** The store's view the auditor reads: settled spend per campaign-day. */
export interface AuditedStore {
  settledOf(campaignId: string, day: string): number;
}

export interface SentSpend {
  eventId: string;
  requestId: string;
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
  /** Events the store acknowledged as applied, with their amount and day (durability checks). */
  readonly acked = new Map<string, { amount: number; day: string; atMs: number }>();
  /** Copies of an eventId sent and not yet answered by the store. */
  private readonly inFlight = new Map<string, number>();
  /** Events the store answered at least once (the shard remembers them: limits.eventIdsRememberedMax). */
  private readonly answeredOnce = new Set<string>();
  readonly days = new Map<string, DayMoney>();
  lateEvents = 0;
  duplicates = 0;
  private lastAnsweredDay = '';

  constructor(readonly seed: number) {}

  /** mode SHADOW: the campaign enforces nothing, so its spend is not held to its budget (the shadow's is, by its own actor). */
  unenforced = false;

  day(key: string): DayMoney {
    let d = this.days.get(key);
    if (d === undefined) this.days.set(key, (d = { settled: 0, late: 0, pendingDuplicates: 0, acknowledged: 0, awaitingCorrection: 0, lost: 0, memoryOnly: 0 }));
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
      return { eventId, requestId, amount, day, duplicate: true, inMemory, matched: false };
    }
    this.applied.add(eventId);
    const matched = this.release(requestId);
    if (!matched) {
      money.late += amount;
      this.lateEvents++;
    }
    money.settled += amount;
    return { eventId, requestId, amount, day, duplicate: false, inMemory: false, matched };
  }

  /** The store answered a spend. */
  answered(s: SentSpend, applied: boolean, nowMs = 0): void {
    this.landed(s);
    this.lastAnsweredDay = s.day;
    this.answeredOnce.add(s.eventId);
    if (applied && s.duplicate) {
      // Only the spool answers a duplicate "applied" (see spoolAnsweredDuplicate in src/sim/run.ts).
      const money = this.day(s.day);
      money.pendingDuplicates -= s.amount;
      money.awaitingCorrection += s.amount;
    } else if (applied) {
      this.day(s.day).acknowledged += s.amount;
      this.acked.set(s.eventId, { amount: s.amount, day: s.day, atMs: nowMs });
    } else if (s.inMemory) this.day(s.day).pendingDuplicates -= s.amount;
  }

  private landed(s: SentSpend): void {
    const left = (this.inFlight.get(s.eventId) ?? 1) - 1;
    if (left === 0) this.inFlight.delete(s.eventId);
    else this.inFlight.set(s.eventId, left);
  }

  /** The spool's replay took a resend it had answered "applied" back out of memory. */
  corrected(day: string, amount: number, nowMs: number): void {
    const money = this.day(day);
    if (money.awaitingCorrection < amount) this.fail(`day ${day}: a correction of ${amount} for spend the spool never answered applied`, nowMs);
    money.awaitingCorrection -= amount;
  }

  /**
   * The pacer process died with this spend unanswered: its memory is gone. An event the store
   * holds stays applied; any other is forgotten and, as the exchange resends a win notice that was
   * not acknowledged, sent again. Returns true when it must be resent.
   */
  crashed(s: SentSpend, inStore: boolean): boolean {
    this.landed(s);
    const money = this.day(s.day);
    if (s.duplicate) {
      if (s.inMemory) money.pendingDuplicates -= s.amount;
      return false;
    }
    if (inStore) return false;
    this.applied.delete(s.eventId);
    money.settled -= s.amount;
    if (!s.matched) {
      money.late -= s.amount;
      this.lateEvents--;
    }
    return true;
  }

  /**
   * After a restart the shard holds what the store holds: the live reservations it loads (a
   * reservation whose flush never left is gone, and a spend for it will be late), no duplicate in
   * memory, no lost spend in memory.
   */
  restarted(stored: StoredReservation[], nowMs: number): void {
    // The shard's remembered event IDs live in its memory and are gone with it.
    this.answeredOnce.clear();
    this.reservations.clear();
    this.reservedSum = 0;
    const live = stored.filter((r) => r.expiresAtMs > nowMs).sort((a, b) => a.expiresAtMs - b.expiresAtMs);
    for (const r of live) {
      this.reservations.set(r.requestId, { amount: r.amountMicros, expiresAtMs: r.expiresAtMs });
      this.reservedSum += r.amountMicros;
    }
    for (const [key, money] of this.days) {
      if (money.pendingDuplicates !== 0) this.fail(`day ${key}: ${money.pendingDuplicates} micros of duplicates pending across a restart`, nowMs);
      money.awaitingCorrection = 0;
      money.memoryOnly = 0;
    }
  }

  /**
   * A store restart dropped these events (key campaignId + '\n' + eventId): they leave the
   * ledger's settled spend (the store will take them as new if they are ever resent) and are
   * counted as lost; the running shard still holds them in memory until it restarts.
   * Returns the acknowledged spend lost, in micros and events.
   */
  storeLost(events: Map<string, { amount: number; day: string }>): { micros: number; events: number } {
    let micros = 0;
    let count = 0;
    for (const [key, e] of events) {
      const eventId = key.slice(key.indexOf('\n') + 1);
      this.applied.delete(eventId);
      const money = this.day(e.day);
      money.settled -= e.amount;
      money.lost += e.amount;
      money.memoryOnly += e.amount;
      if (this.acked.delete(eventId)) {
        money.acknowledged -= e.amount;
        micros += e.amount;
        count++;
      }
    }
    return { micros, events: count };
  }

  /** Σ spend acknowledged at or after sinceMs. */
  acknowledgedSince(sinceMs: number): number {
    let micros = 0;
    for (const a of this.acked.values()) if (a.atMs >= sinceMs) micros += a.amount;
    return micros;
  }

  /** Σ acknowledged spend the store does not hold (the durability check after every fault). */
  missingAcknowledged(holds: (eventId: string) => boolean): { micros: number; events: number } {
    let micros = 0;
    let events = 0;
    for (const [id, a] of this.acked) {
      if (!holds(id)) {
        micros += a.amount;
        events++;
      }
    }
    return { micros, events };
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
    const inMemory = money.settled + money.pendingDuplicates + money.awaitingCorrection + money.memoryOnly;
    if (c.settled !== inMemory) {
      this.fail(
        `day ${key}: actor settled ${c.settled} ≠ Σ applied events ${money.settled} + pending duplicates ${money.pendingDuplicates}` +
          ` + awaiting correction ${money.awaitingCorrection} + lost by the store ${money.memoryOnly}`,
        nowMs,
      );
    }
    // Spend a lossy store restart dropped (money.lost) was spent all the same, and a shard that
    // reloads after it may spend it again: the cap then holds with that loss as a stated tolerance.
    if (!this.unenforced && money.settled + money.lost + this.reservedSum > c.budget + money.late + money.lost) {
      this.fail(
        `day ${key}: settled ${money.settled + money.lost} + reserved ${this.reservedSum} exceeds budget ${c.budget} + late spend ${money.late}` +
          (money.lost > 0 ? ` + spend the store lost ${money.lost}` : ''),
        nowMs,
      );
    }
  }

  /** After the store answered a batch: settled in the store == Σ events it acknowledged. */
  checkStore(c: Campaign, store: AuditedStore, nowMs: number): void {
    for (const key of [c.day.bounds.key, this.lastAnsweredDay]) {
      if (key === '') continue;
      const stored = store.settledOf(c.id, key);
      const acknowledged = this.day(key).acknowledged;
      if (stored !== acknowledged) this.fail(`day ${key}: store settled ${stored} ≠ Σ acknowledged events ${acknowledged}`, nowMs);
    }
  }

  /**
   * With store faults the store may lag what was acknowledged (spend in the spool) or lead it
   * (a write whose reply was lost), so after every answer the auditor checks the bound that holds
   * through every fault: the store never holds more than Σ distinct events sent (no double count).
   * Exact equality is checked once the faults stop and everything has drained (checkFinal).
   */
  checkStoreBound(c: Campaign, store: AuditedStore, nowMs: number): void {
    for (const key of [c.day.bounds.key, this.lastAnsweredDay]) {
      if (key === '') continue;
      const stored = store.settledOf(c.id, key);
      const settled = this.day(key).settled;
      if (stored > settled) this.fail(`day ${key}: store settled ${stored} > Σ distinct events sent ${settled} (spend counted twice)`, nowMs);
    }
  }

  /** The first live reservation's expiry (insertion order is expiry order), or Infinity. */
  nextExpiryMs(): number {
    const first = this.reservations.values().next();
    return first.done === true ? Infinity : first.value.expiresAtMs;
  }

  /** After the final flush: every day's stored total equals the ledger's. */
  checkFinal(c: Campaign, store: AuditedStore, nowMs: number): void {
    c.checkInvariants();
    for (const [key, money] of this.days) {
      const stored = store.settledOf(c.id, key);
      if (stored !== money.settled) this.fail(`day ${key}: store settled ${stored} ≠ Σ applied events ${money.settled} after the final flush`, nowMs);
      if (money.pendingDuplicates !== 0) this.fail(`day ${key}: ${money.pendingDuplicates} micros of duplicates never taken back`, nowMs);
      if (money.awaitingCorrection !== 0) this.fail(`day ${key}: ${money.awaitingCorrection} micros answered applied by the spool never corrected`, nowMs);
    }
  }

  fail(message: string, nowMs: number): never {
    throw new AuditFailure(message, this.seed, nowMs);
  }
}
