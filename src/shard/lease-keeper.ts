import type { Campaign } from '../../shards/campaign.js';
import type { Lease } from '../../shards/lease.js';
import { leaseRenewAtMs, leaseWantMicros } from '../../shards/lease-size.js';
import { limits } from '../../shards/limits.js';
import type { Clock, Timers } from '../../shards/ports.js';
import type { Shard } from '../../shards/shard.js';
import type { LeaseAnswer, LeaseCalls } from '../store/leases.js';

export interface LeaseKeeperOptions {
  /** The lease holder's name: `<instanceId>:<shard>`, new on every start. */
  holder: string;
  reservationTtlMs: number;
  /** True while the counter store spools (Redis away): acknowledged spend is not in Redis yet. */
  spooling: () => boolean;
  onFault: (message: string) => void;
}

/**
 * Takes, renews and gives back the budget leases of one shard's campaigns, in the background
 * (ARCHITECTURE.md, "Budget leases"). It runs on the shard's thread, next to the flusher, with the
 * shard's clock and timers; the decision path never waits on it: answers reach the shard through
 * Shard.handleLease, and a lease not renewed in time expires on the shard's clock.
 *
 * Every tick it looks at each campaign a decision asked for lately: a lease is asked for when the
 * campaign has none, when half its life has passed, or when half of it is committed. A campaign
 * no decision asked for in leaseIdleMs gives its lease back. While the store spools, nothing is
 * asked: the spend acknowledged from the spool is not in the settled counter the script reads.
 *
 * What it reports as promised to bids (`reservedMicros`) is the whole amount it asks for: the
 * shard may reserve all of it before the next renewal, and if this process dies those bids can
 * still win. So a dead holder's lease stays counted until the reservations it could have made
 * expire (lease lifetime + reservation TTL); a holder that shuts down gracefully reports its real
 * reservations and frees the rest at once.
 */
export class LeaseKeeper {
  private cancel: (() => void) | null = null;
  private inFlight = 0;
  /** Redis' clock minus the shard's, from the last answer (the script's expiries are Redis time). */
  private offsetMs = 0;
  private stopped = false;
  private faultLoggedAtMs = -Infinity;

  constructor(
    private readonly shard: Shard,
    private readonly client: LeaseCalls,
    private readonly clock: Clock,
    private readonly timers: Timers,
    private readonly options: LeaseKeeperOptions,
  ) {}

  start(): void {
    this.arm();
  }

  private arm(): void {
    if (this.stopped) return;
    this.cancel = this.timers.after(limits.leaseKeeperTickMs, () => {
      this.cancel = null;
      try {
        this.tick();
      } finally {
        this.arm();
      }
    });
  }

  /** One look at every lease of the shard. */
  tick(): void {
    if (this.options.spooling()) {
      this.holdAll();
      return;
    }
    const now = this.clock.now();
    const demand = this.shard.leasesInDemand;
    for (const c of demand) {
      if (this.inFlight >= limits.leaseGrantsInFlightMax) return;
      const lease = c.lease;
      if (lease === null || this.shard.campaigns.get(c.id) !== c) {
        demand.delete(c);
        continue;
      }
      if (lease.inFlight) continue;
      if (lease.day !== c.day.bounds.key) lease.rollover(c.day.bounds.key);
      // Idle, but with spend applied here that the store has not confirmed (c.held): that money is
      // committed against this lease, and a give-back with no reservation left would return it to
      // the other holders at once, before the flush lands (settled then passed a budget under CPU
      // starvation, test/cluster/instances.test.ts). Renewed as usual until the flush is confirmed.
      if (now - lease.askedAtMs > limits.leaseIdleMs && c.held === 0) {
        if (lease.expiresAtMs > now && lease.amountMicros > 0) void this.giveBack(c, lease);
        else {
          // Given back (or never granted): out of the walk until a decision asks again.
          demand.delete(c);
          lease.tracked = false;
        }
        continue;
      }
      if (this.due(c, lease, now)) void this.grant(c, lease, now);
    }
  }

  /**
   * While the store spools, spend acknowledged from the spool is in no settled counter yet. If the
   * lease that covered it ran out meanwhile, the script would stop counting that money and could
   * grant it to another holder before the spool replays: overspend (the master-loss drill saw it).
   * So each lease is held instead of renewed: the same amount, rebased on the usage last reported
   * (lease.baseMicros, which the store had applied), with a new expiry; nothing new is asked. The
   * lease record then keeps counting everything this holder committed, spooled spend included,
   * and the shard goes on deciding within what it already holds. A lease whose campaign-day node
   * is away is retried every tick until that node (or its promoted replica) answers. Nothing is
   * given back while spooling: a return would report spooled spend as settled.
   */
  private holdAll(): void {
    const now = this.clock.now();
    for (const c of this.shard.leasesInDemand) {
      if (this.inFlight >= limits.leaseGrantsInFlightMax) return;
      const lease = c.lease;
      if (lease === null || this.shard.campaigns.get(c.id) !== c || lease.inFlight) continue;
      if (lease.day !== c.day.bounds.key) continue;
      const committed = lease.committed(c.reserved + c.held);
      if (lease.amountMicros <= 0 && committed <= 0) continue;
      if (now < lease.expiresAtMs && now < leaseRenewAtMs(lease.expiresAtMs - limits.leaseTtlMs, lease.expiresAtMs)) continue;
      void this.hold(c, lease, now, Math.min(limits.dayTotalMicrosMax, Math.max(lease.amountMicros, committed)));
    }
  }

  private async hold(c: Campaign, lease: Lease, now: number, amount: number): Promise<void> {
    const used = lease.baseMicros;
    const day = lease.day;
    const seq = lease.sending(used, amount);
    this.inFlight++;
    let answer: LeaseAnswer;
    try {
      answer = await this.deadline(
        this.client.grant({
          campaignId: c.id,
          day,
          holder: this.options.holder,
          budgetMicros: c.budget,
          budgetVersion: c.version,
          usedTotalMicros: used,
          reservedMicros: amount,
          reservedUntilMs: Math.round(now + this.offsetMs + limits.leaseTtlMs + this.options.reservationTtlMs),
          wantMicros: amount,
          ttlMs: limits.leaseTtlMs,
        }),
      );
    } catch (err) {
      this.shard.totals.leaseFailures++;
      if (lease.seq === seq) lease.failed();
      this.fault(`lease for ${c.id} not held while spooling: ${(err as Error).message}`);
      return;
    } finally {
      this.inFlight--;
    }
    const answeredAt = this.clock.now();
    this.offsetMs = answer.nowMs - (now + answeredAt) / 2;
    this.shard.totals.leaseGrants++;
    this.shard.handleLease({
      type: 'lease',
      campaignId: c.id,
      seq,
      day,
      sentAtMs: now,
      usedMicros: used,
      grantedMicros: Math.min(answer.grantedMicros, amount),
      ttlMs: Math.max(0, Math.min(limits.leaseTtlMs, answer.expiresAtMs - answer.nowMs)),
      settledMicros: answer.settledMicros,
    });
  }

  private due(c: Campaign, lease: Lease, now: number): boolean {
    if (now >= lease.expiresAtMs) return true;
    if (now >= leaseRenewAtMs(lease.expiresAtMs - limits.leaseTtlMs, lease.expiresAtMs)) return true;
    // Running dry: renew early, but not more often than a tick apart from the last answer.
    // Of the part that was free at the grant (the lease less what was already committed then).
    const used = lease.committed(c.reserved + c.held);
    const held = Math.min(lease.amountMicros, this.heldAtSend.get(lease) ?? 0);
    const free = lease.amountMicros - held;
    return now - lease.grantedAtMs >= limits.leaseKeeperTickMs * 4 && (used - held >= free * limits.leaseRenewUsedShare || lease.bidMaxMicros > lease.amountMicros - used);
  }

  /** What each lease had committed (reserved + held + spent, absolute) when its last grant was sent. */
  private readonly committedAtSend = new WeakMap<Lease, number>();
  /** What was committed against each lease (beyond its new base) when its last grant was sent. */
  private readonly heldAtSend = new WeakMap<Lease, number>();

  /**
   * The amount to ask for: what is committed against the lease now (reserved, held, and spend
   * not yet reported, which the holder keeps whatever it asks) plus about a second of new
   * commitments (shards/lease-size.ts) at the larger of the recent rate and the plan's. The
   * recent rate is how fast committed money grew since the last grant: reservations replaced by
   * spend, released or expired free the lease as new ones fill it, so the net growth is the spend
   * rate in a steady state. (Sizing on the reserved stock as if it were a rate left a lease no room
   * for new reservations at a renewal, and seven times too much at an early one: the fleet
   * simulator, docs/pacing.md, "Fleet".)
   */
  private want(c: Campaign, lease: Lease, now: number): number {
    const dtMs = Math.max(limits.leaseKeeperTickMs, now - lease.grantedAtMs);
    const absolute = c.reserved + c.held + lease.spentMicros;
    const before = this.committedAtSend.get(lease);
    const grown = before === undefined ? c.reserved + c.held + lease.spentMicros - lease.spentAtGrantMicros : absolute - before;
    const recent = Number.isFinite(dtMs) ? (Math.max(0, grown) * 1000) / dtMs : 0;
    const curve = c.day.curve;
    const plan = c.budget * Math.max(0, curve.fraction(now + 1000) - curve.fraction(now)) * lease.share;
    const window = leaseWantMicros({
      recentSpendMicrosPerS: Number.isFinite(recent) ? recent : 0,
      planMicrosPerS: plan,
      bidMaxMicros: lease.bidMaxMicros,
      dailyBudgetMicros: c.budget,
    });
    const held = Math.max(0, c.reserved + c.held + lease.spentMicros - lease.usedMicros);
    this.committedAtSend.set(lease, absolute);
    this.heldAtSend.set(lease, held);
    return Math.min(limits.dayTotalMicrosMax, held + window);
  }

  private async grant(c: Campaign, lease: Lease, now: number): Promise<void> {
    const want = this.want(c, lease, now);
    const used = lease.usedMicros;
    const day = lease.day;
    const seq = lease.sending(used, want);
    const promised = Math.min(limits.dayTotalMicrosMax, Math.max(want, c.reserved + c.held));
    this.inFlight++;
    let answer: LeaseAnswer;
    try {
      answer = await this.deadline(
        this.client.grant({
          campaignId: c.id,
          day,
          holder: this.options.holder,
          budgetMicros: c.budget,
          budgetVersion: c.version,
          usedTotalMicros: used,
          reservedMicros: promised,
          reservedUntilMs: Math.round(now + this.offsetMs + limits.leaseTtlMs + this.options.reservationTtlMs),
          wantMicros: want,
          ttlMs: limits.leaseTtlMs,
        }),
      );
    } catch (err) {
      this.shard.totals.leaseFailures++;
      if (lease.seq === seq) lease.failed();
      this.fault(`lease for ${c.id} not renewed: ${(err as Error).message}`);
      return;
    } finally {
      this.inFlight--;
    }
    const answeredAt = this.clock.now();
    this.offsetMs = answer.nowMs - (now + answeredAt) / 2;
    this.shard.totals.leaseGrants++;
    this.shard.handleLease({
      type: 'lease',
      campaignId: c.id,
      seq,
      day,
      sentAtMs: now,
      usedMicros: used,
      grantedMicros: answer.grantedMicros,
      ttlMs: Math.max(0, Math.min(limits.leaseTtlMs, answer.expiresAtMs - answer.nowMs)),
      settledMicros: answer.settledMicros,
    });
    await this.reconcile(c, day, answeredAt);
  }

  /**
   * Looks in the store for this shard's older reservations of the campaign: those gone were
   * settled by a spend that reached another instance, and leave this shard's lease as spend.
   */
  private async reconcile(c: Campaign, day: string, now: number): Promise<void> {
    if (c.reservations.size === 0) return;
    if (this.options.spooling()) return;
    const madeBefore = now - limits.leaseReconcileAfterMs;
    const ids: string[] = [];
    for (const [id, r] of c.reservations) {
      // Oldest first (insertion order): the first young one ends the look.
      if (r.expiresAtMs - this.options.reservationTtlMs > madeBefore) break;
      // Only a reservation the store has acknowledged can be missing from it: one whose write is
      // still building or in flight (a starved or slow flush) is absent because it is not written
      // yet. Taken for settled elsewhere, it would leave this lease as spend that no counter
      // holds, and other holders could be granted its money while it stays live. (Found by reading
      // the code while looking for the overspend of test/cluster/instances.test.ts under CPU
      // starvation, which had another cause: shards/shard.ts, settled().)
      if (this.shard.flusher.unstored(c, id)) continue;
      ids.push(id);
      if (ids.length >= limits.leaseReconcileBatchMax) break;
    }
    if (ids.length === 0) return;
    let missing: string[];
    try {
      missing = await this.deadline(this.client.missingReservations(c.id, ids));
    } catch (err) {
      this.fault(`reservations of ${c.id} not reconciled: ${(err as Error).message}`);
      return;
    }
    if (missing.length > 0 && !this.options.spooling()) this.shard.settledElsewhere(c.id, day, missing);
  }

  /** Gives one lease back: what is not reserved returns to the other holders at once. */
  private async giveBack(c: Campaign, lease: Lease): Promise<void> {
    const seq = lease.sending(lease.usedMicros, 0);
    lease.givenBack();
    let until = 0;
    for (const r of c.reservations.values()) until = Math.max(until, r.expiresAtMs);
    this.inFlight++;
    try {
      await this.deadline(
        this.client.giveBack({
          campaignId: c.id,
          day: lease.day,
          holder: this.options.holder,
          budgetMicros: c.budget,
          budgetVersion: c.version,
          usedTotalMicros: lease.usedMicros,
          reservedMicros: Math.min(limits.dayTotalMicrosMax, c.reserved + c.held),
          reservedUntilMs: until > 0 ? Math.round(until + this.offsetMs) : 0,
        }),
      );
      this.shard.totals.leaseGiveBacks++;
    } catch (err) {
      this.shard.totals.leaseFailures++;
      this.fault(`lease for ${c.id} not given back: ${(err as Error).message}`);
    } finally {
      this.inFlight--;
      if (lease.seq === seq) lease.failed();
    }
  }

  /**
   * Graceful shutdown, after the last flush: stops renewing and gives every lease back, so the
   * other instances get this one's unreserved money at once instead of after its expiry.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.cancel !== null) this.cancel();
    this.cancel = null;
    if (this.options.spooling()) return;
    const now = this.clock.now();
    const calls: Promise<void>[] = [];
    for (const c of this.shard.campaigns.values()) {
      const lease = c.lease;
      if (lease === null || lease.expiresAtMs <= now) continue;
      calls.push(this.giveBack(c, lease));
    }
    await Promise.all(calls);
  }

  /** At most one fault message a second: Redis away fails every campaign's renewal at once. */
  private fault(message: string): void {
    const now = this.clock.now();
    if (now - this.faultLoggedAtMs < 1_000) return;
    this.faultLoggedAtMs = now;
    this.options.onFault(message);
  }

  private deadline<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancel = this.timers.after(limits.leaseCallTimeoutMs, () => reject(new Error(`no answer in ${limits.leaseCallTimeoutMs} ms`)));
      p.then(
        (v) => {
          cancel();
          resolve(v);
        },
        (e: unknown) => {
          cancel();
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }
}
