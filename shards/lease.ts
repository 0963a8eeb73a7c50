import { limits } from './limits.js';

/**
 * One campaign's budget lease as its shard holds it (ARCHITECTURE.md, "Budget leases"). The lease
 * keeper in the shard host (src/shard/lease-keeper.ts) takes and renews it in the background with
 * the script in src/store/leases.ts; the shard only reads it on the decision path, never waits.
 *
 * Accounting: `amountMicros` is what this holder may commit beyond `baseMicros`, the cumulative
 * settled spend it had reported with the grant (acknowledged by the store, so in the settled
 * counter the script reads). So the money this holder has committed against its lease is
 *
 *   reserved + held + (spent − base)
 *
 * where `spent` is its spend of the day applied in memory (acknowledged or not). A decision is
 * allowed only while that plus the bid fits in the amount and the lease has not expired on the
 * shard's clock; past its expiry the lease holds nothing, so a shard cut off from Redis stops
 * allowing rather than overspend. All times are the shard's clock; nothing here reads one.
 */
export class Lease {
  /** The campaign's local day the lease is for; a rollover starts a new one. */
  day: string;
  amountMicros = 0;
  baseMicros = 0;
  expiresAtMs = -Infinity;
  /** This holder's spend of the day applied in memory, and the part the store acknowledged. */
  spentMicros = 0;
  ackedMicros = 0;
  /**
   * Reservations of this holder that expired here, taken for spent (Shard.sweep: a notice may
   * have settled one at another instance unseen). They leave the lease as usage reported to the
   * store, but not this holder's share of the spend (most were lost bids).
   */
  returnedMicros = 0;
  private returnedAtSend = 0;
  /**
   * Settled spend of other holders since this campaign-day was loaded here, as of the last
   * renewal: the campaign paces and trips its breaker on its own spend plus this.
   */
  othersMicros = 0;
  /**
   * Spend applied here and acknowledged by the store: what of the settled counter this shard's
   * own `settled` holds. Unlike `ackedMicros` (the lease's view) it includes win notices for
   * other instances' reservations (unmatched here) and excludes this holder's reservations found
   * settled elsewhere; others' spend is the settled counter less this, so the campaign's
   * settled + others is the global spend, neither counting a notice twice nor missing one.
   */
  settledHereMicros = 0;
  private settledHereAtSend = 0;
  /** The last time a decision asked the lease (the keeper keeps leases of campaigns in demand). */
  askedAtMs = -Infinity;
  /** The largest bid asked since the last grant (a lease must cover one bid). */
  bidMaxMicros = 0;
  /** In the shard's set of leases in demand (Shard.leasesInDemand), which the keeper walks. */
  tracked = false;
  /** A grant is on its way: the keeper sends at most one per campaign. */
  inFlight = false;
  /** When the last grant was sent and answered, and the spend at that time (for the spend rate). */
  grantedAtMs = -Infinity;
  spentAtGrantMicros = 0;
  /** The settled counter of the day as loaded here (others' spend is measured from it). */
  loadedSettledMicros: number;
  /** Local and other holders' spend, exponentially decayed: this holder's share of the traffic. */
  private shareLocal = 0;
  private shareOthers = 0;
  private shareAtMs: number | null = null;
  renewals = 0;
  /** Numbers the grants sent: an answer to an abandoned (timed-out) grant is ignored. */
  seq = 0;

  constructor(day: string, loadedSettledMicros: number) {
    this.day = day;
    this.loadedSettledMicros = loadedSettledMicros;
  }

  /** Committed against the lease: reserved and held money plus spend beyond the reported base. */
  committed(reservedAndHeld: number): number {
    return reservedAndHeld + (this.spentMicros - this.baseMicros);
  }

  /** Whether the lease covers one more bid on top of what is committed (the hard cap). */
  covers(nowMs: number, day: string, reservedAndHeld: number, bidMicros: number): boolean {
    if (day !== this.day) this.rollover(day);
    this.askedAtMs = nowMs;
    if (bidMicros > this.bidMaxMicros) this.bidMaxMicros = bidMicros;
    if (nowMs >= this.expiresAtMs) return false;
    const used = this.committed(reservedAndHeld);
    return used + bidMicros <= this.amountMicros && (bidMicros > 0 || used < this.amountMicros);
  }

  /** The campaign's day rolled over: yesterday's lease and spend are not today's. */
  rollover(day: string): void {
    this.day = day;
    this.amountMicros = 0;
    this.baseMicros = 0;
    this.expiresAtMs = -Infinity;
    this.spentMicros = 0;
    this.ackedMicros = 0;
    this.returnedMicros = 0;
    this.returnedAtSend = 0;
    this.othersMicros = 0;
    this.loadedSettledMicros = 0;
    this.spentAtGrantMicros = 0;
    this.settledHereMicros = 0;
    this.settledHereAtSend = 0;
    this.lastLocal = 0;
    this.lastOthers = 0;
  }

  spend(day: string, amountMicros: number): void {
    if (day !== this.day) this.rollover(day);
    this.spentMicros += amountMicros;
  }

  /** The store found a spend a duplicate: it was never acknowledged, so it leaves `spent` only. */
  unspend(day: string, amountMicros: number): void {
    if (day === this.day) this.spentMicros = Math.max(0, this.spentMicros - amountMicros);
  }

  ack(day: string, amountMicros: number): void {
    if (day === this.day) this.ackedMicros += amountMicros;
  }

  /** A reservation expired here: its amount leaves the lease as if spent (see returnedMicros). */
  expired(day: string, amountMicros: number): void {
    if (day !== this.day) this.rollover(day);
    this.spentMicros += amountMicros;
    this.returnedMicros += amountMicros;
  }

  /** What this holder reports as used: the acknowledged spend and the expired reservations. */
  get usedMicros(): number {
    return this.ackedMicros + this.returnedMicros;
  }

  /** A spend applied in this shard's settled was acknowledged by the store (matched here or not). */
  ackHere(day: string, amountMicros: number): void {
    if (day === this.day) this.settledHereMicros += amountMicros;
  }

  /**
   * A grant is being sent, asking for `wantMicros` with the acknowledged total `usedMicros`. Until
   * its answer the lease is rebased on that total and capped at the amount asked for: the script
   * never answers less than min(what is left of the old lease, the amount asked for), so whatever
   * it answers covers what is committed meanwhile.
   */
  sending(usedMicros: number, wantMicros: number): number {
    const left = Math.max(0, this.amountMicros - (usedMicros - this.baseMicros));
    this.amountMicros = Math.min(left, wantMicros);
    this.baseMicros = usedMicros;
    this.inFlight = true;
    this.settledHereAtSend = this.settledHereMicros;
    this.returnedAtSend = this.returnedMicros;
    return ++this.seq;
  }

  /** Given back (the campaign went idle, or shutdown): nothing more is committed against it. */
  givenBack(): void {
    this.amountMicros = 0;
    this.expiresAtMs = -Infinity;
  }

  /**
   * The script's answer to a grant sent at `sentAtMs` (shard clock) with the acknowledged total
   * `usedMicros`. The lease expires `ttlMs` after it was sent: the script granted it later than
   * that, by Redis' clock, so the shard's expiry is never later than Redis'.
   */
  granted(sentAtMs: number, answeredAtMs: number, usedMicros: number, grantedMicros: number, ttlMs: number, settledMicros: number): void {
    this.inFlight = false;
    this.amountMicros = grantedMicros;
    this.baseMicros = usedMicros;
    this.expiresAtMs = sentAtMs + ttlMs;
    this.grantedAtMs = answeredAtMs;
    this.spentAtGrantMicros = this.spentMicros;
    this.bidMaxMicros = 0;
    this.renewals++;
    // The settled counter holds this holder's acknowledged spend, not its expired reservations.
    const others = Math.max(0, settledMicros - this.loadedSettledMicros - (usedMicros - this.returnedAtSend));
    this.updateShare(answeredAtMs, this.ackedMicros, others);
    // Others' spend as of this answer: the settled counter less what this shard's settled holds
    // (see settledHereMicros). It may include a few of this shard's own acknowledgements that
    // reached the counter after the call left (safe side: pacing a little low, not high).
    this.othersMicros = Math.max(0, settledMicros - this.loadedSettledMicros - this.settledHereAtSend);
  }

  /** A grant failed or timed out: the lease keeps what it had, to its expiry. */
  failed(): void {
    this.inFlight = false;
  }

  /**
   * This holder's share of the campaign's spend over the last minutes (limits.leaseShareTauMs),
   * 1 while no other holder has spent: the controller plans this share of the global plan.
   */
  get share(): number {
    const total = this.shareLocal + this.shareOthers;
    if (this.shareOthers <= 0 || total <= 0) return 1;
    return Math.min(1, Math.max(limits.leaseShareMin, this.shareLocal / total));
  }

  private lastLocal = 0;
  private lastOthers = 0;

  private updateShare(nowMs: number, local: number, others: number): void {
    const dl = Math.max(0, local - this.lastLocal);
    const dO = Math.max(0, others - this.lastOthers);
    this.lastLocal = local;
    this.lastOthers = Math.max(this.lastOthers, others);
    const decay = this.shareAtMs === null ? 1 : Math.exp(-Math.max(0, nowMs - this.shareAtMs) / limits.leaseShareTauMs);
    this.shareAtMs = nowMs;
    this.shareLocal = this.shareLocal * decay + dl;
    this.shareOthers = this.shareOthers * decay + dO;
  }
}

/** A lease answer as the keeper hands it to the shard. */
export interface LeaseGrantMessage {
  type: 'lease';
  campaignId: string;
  /** The number `Lease.sending` gave the grant. */
  seq: number;
  day: string;
  sentAtMs: number;
  usedMicros: number;
  grantedMicros: number;
  ttlMs: number;
  /** The campaign-day's settled spend from every holder (the settled counter). */
  settledMicros: number;
}
