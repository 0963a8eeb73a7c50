import { CampaignIndex } from './id-index.js';
import { Campaign, type CampaignHooks, type SettledReservation } from './campaign.js';
import { BoundedSet } from './bounded-set.js';
import { ShardColumns } from './columns.js';
import { ExpiryQueue } from './expiry.js';
import { Flusher, type FlushSettled, pendingKey, type ReplyTo } from './flusher.js';
import { ConfigInterner } from './intern.js';
import { Lease, type LeaseGrantMessage } from './lease.js';
import { limits } from './limits.js';
import { isMicros } from './money.js';
import { type FittedProfile, GlobalProfile } from './pacing/profile.js';
import type { CampaignSnapshot, ShardPorts } from './ports.js';
import { Shadow, type ShadowStatus, wantsShadow } from './pacing/shadow.js';
import { OpStatus, Reason, reasonNames } from './reasons.js';
import { dayBounds } from './time/zone.js';
import type { CampaignConfig, CampaignStatus } from './types.js';
import { DecideFlag, OpKind, OpReader, ResultWriter, SpendFlag } from './wire.js';

/**
 * Monotonic totals of a shard since it started, for metrics (campaign counters reset every day).
 * Incremented on the hot path with plain array and field writes; read at scrape time.
 */
export class ShardTotals {
  /** Decisions by reason code (index = Reason). */
  readonly decisions = new Float64Array(reasonNames.length);
  spendApplied = 0;
  spendDuplicate = 0;
  spendFailed = 0;
  spendOverloaded = 0;
  settledMicros = 0;
  /** Spooled events found duplicates at replay, and the money taken back for them. */
  spendLateDuplicates = 0;
  revertedMicros = 0;
  releases = 0;
  expiredReservations = 0;
  /** Spends refused because they would take a kept total past limits.dayTotalMicrosMax. */
  spendRefused = 0;
  /** Operations answered NOT_READY (the campaign's counters not loaded yet). */
  notReady = 0;
  /** Campaigns loaded with stored counters outside the money bounds (kept paused). */
  countersOutOfRange = 0;
  /** Decisions of shadows (shadow strategies and SHADOW mode) by the reason they would have answered. */
  readonly shadowDecisions = new Float64Array(reasonNames.length);
  /** Lease calls answered, failed (error or timeout) and leases given back (src/shard/lease-keeper.ts). */
  leaseGrants = 0;
  leaseFailures = 0;
  leaseGiveBacks = 0;
  /** Reservations found settled (or released) at another instance and dropped here. */
  leaseSettledElsewhere = 0;
  /** Breaker transitions by `${to} ${reason}`. */
  readonly breakerTransitions = new Map<string, number>();
}

export interface ShardOptions {
  reservationTtlMs: number;
  flushIntervalMs: number;
  /** Defaults: limits.reservationsPerCampaignMax, reservationsPerShardMax, eventIdsRememberedMax. */
  reservationsPerCampaignMax?: number;
  reservationsPerShardMax?: number;
  eventIdsRememberedMax?: number;
  /**
   * The process sets it: until catalogueLoaded() an unknown campaign may be one the admin has not
   * sent yet, so it is answered NOT_READY rather than UNKNOWN_CAMPAIGN.
   */
  awaitCatalogue?: boolean;
  /**
   * Several instances share budgets (PACER_LEASES=on): every campaign decides within a budget
   * lease that the host's lease keeper renews (handleLease); without one it allows nothing.
   */
  leases?: boolean;
  /**
   * Whether the store answers from its spool now (its Redis is away; src/store/resilient.ts): a
   * spend acknowledged from the spool is in no settled counter yet, so a spend for another
   * instance's reservation stays paid by this lease (see settled()). Default: never.
   */
  spooling?: () => boolean;
}

/** Per-campaign counters since the last summary, for the admin's per-minute history. */
export interface CampaignSummary {
  campaignId: string;
  day: string;
  decisions: number;
  allowed: number;
  deniedByReason: Record<string, number>;
  spendEvents: number;
  settledMicros: number;
  duplicateEvents: number;
  unmatchedEvents: number;
  expiredReservations: number;
  budgetMicros: number;
  throttle: number;
  breakerState: string;
  /** The shadow's counters since the last summary (campaigns with a shadow or in SHADOW mode). */
  shadow?: ShadowSummary;
}

/** A shadow's counters since the last summary: its decisions, and its would-be spend (observed + estimated). */
export interface ShadowSummary {
  strategy: string;
  decisions: number;
  allowed: number;
  deniedByReason: Record<string, number>;
  settledMicros: number;
  estimatedMicros: number;
}

/** Which budget a budget operation may not lower below committed money; null when forced. */
export type BudgetFloor = 'daily' | 'lifetime' | null;

/** A budget operation's answer: whether it applied, the money it was checked against, the status. */
export interface BudgetOutcome {
  applied: boolean;
  /** Today's settled + reserved (daily), or the flight's settled + today's reserved (lifetime). */
  committedMicros: number;
  status: CampaignStatus;
}

/**
 * One shard actor: it owns the campaigns whose IDs hash to it and is the only code that touches
 * their money. Hot-path operations arrive as binary batches (handleOps) and are answered in one
 * batch; spend acknowledgements follow once their flush reached the store (group commit).
 * Configuration arrives as messages (upsert, reset); the shard never waits on the admin.
 */
export class Shard {
  readonly campaigns = new CampaignIndex();
  readonly globalProfile = new GlobalProfile();
  /** Where the shard's campaigns keep their numbers (shards/columns.ts). */
  readonly columns = new ShardColumns();
  readonly flusher: Flusher;
  readonly totals = new ShardTotals();
  private readonly expiries = new ExpiryQueue();
  private readonly reader = new OpReader();
  private readonly writer = new ResultWriter();
  /** Late results by origin (the router thread they go back to), created on first use. */
  private readonly lateWriters: ResultWriter[] = [];
  private readonly loading = new Map<string, Promise<void>>();
  /** Campaigns the admin sent whose counters are not loaded yet (load in progress or failed). */
  private readonly unloaded = new Set<string>();
  private catalogueComplete: boolean;
  /** Applied event IDs (campaignId + '\n' + eventId), for duplicates without a store trip; the oldest forgotten first. */
  private readonly remembered: BoundedSet<string>;
  private readonly liveReservations = { count: 0 };
  /**
   * Campaigns whose lease a decision asked for since the keeper last let it go: the keeper walks
   * these, not every campaign of the shard (most of a million campaigns are idle at any moment).
   */
  readonly leasesInDemand = new Set<Campaign>();
  private readonly reservationsPerCampaignMax: number;
  private readonly reservationsPerShardMax: number;
  private readonly hooks: CampaignHooks;
  /** Shares what configurations have in common (breaker, schedule, strings) between campaigns. */
  private readonly interner = new ConfigInterner();

  constructor(
    private readonly ports: ShardPorts,
    private readonly options: ShardOptions,
  ) {
    this.catalogueComplete = options.awaitCatalogue !== true;
    this.reservationsPerCampaignMax = options.reservationsPerCampaignMax ?? limits.reservationsPerCampaignMax;
    this.reservationsPerShardMax = options.reservationsPerShardMax ?? limits.reservationsPerShardMax;
    this.remembered = new BoundedSet(options.eventIdsRememberedMax ?? limits.eventIdsRememberedMax);
    this.hooks = {
      columns: this.columns,
      globalProfile: this.globalProfile,
      liveReservations: this.liveReservations,
      expiries: this.expiries,
      onBreaker: (c, transition) => {
        const key = `${transition.to} ${transition.reason}`;
        this.totals.breakerTransitions.set(key, (this.totals.breakerTransitions.get(key) ?? 0) + 1);
        ports.emit({ type: 'breaker', campaignId: c.id, transition });
      },
      onRollover: (c, day, settled, budget) =>
        ports.emit({ type: 'rollover', campaignId: c.id, day, settledMicros: settled, budgetMicros: budget }),
    };
    this.flusher = new Flusher(
      ports.store,
      ports.timers,
      ports.batchIdPrefix,
      () => ports.clock.now(),
      (s) => this.settled(s),
      (message) => ports.emit({ type: 'fault', message }),
      options.flushIntervalMs,
    );
  }

  // ---- hot path -------------------------------------------------------------------------------

  /**
   * Decides and applies a batch of operations; returns the results that are ready now. `origin`
   * names the router thread the batch came from (slots are that router's own numbers), so that
   * results completing later go back to it: several routers share every shard (PACER_ROUTERS).
   */
  handleOps(data: ArrayBuffer, origin = 0): ArrayBuffer {
    const now = this.ports.clock.now();
    const r = this.reader.reset(data);
    const w = this.writer;
    const random = this.ports.random;
    const ttl = this.options.reservationTtlMs;
    while (r.next()) {
      const c = this.campaigns.get(r.campaignId);
      switch (r.kind) {
        case OpKind.DECIDE: {
          if (c === undefined) {
            const reason = this.isLoading(r.campaignId) ? Reason.NOT_READY : Reason.UNKNOWN_CAMPAIGN;
            this.totals.decisions[reason]!++;
            w.decide(r.slot, reason, 0, 0, 0);
            break;
          }
          const reservable =
            c.reservations.size < this.reservationsPerCampaignMax && this.liveReservations.count < this.reservationsPerShardMax;
          const reason = c.decide(now, r.micros, r.requestId, random, ttl, reservable);
          if (c.lease !== null && !c.lease.tracked) {
            c.lease.tracked = true;
            this.leasesInDemand.add(c);
          }
          if (c.lastReservedNew) this.flusher.reservationAdded(c, r.requestId, r.micros, now + ttl);
          this.totals.decisions[reason]!++;
          if (c.shadow === null) {
            w.decide(r.slot, reason, c.lastFlags, c.controller.throttle, finite(c.pacingIndex));
            break;
          }
          const would = c.shadow.decide(c, now, r.micros, r.requestId, ttl);
          this.totals.shadowDecisions[would]!++;
          const shadowMode = c.shadow.unenforced;
          w.decide(r.slot, reason, shadowMode ? c.lastFlags | DecideFlag.SHADOW : c.lastFlags, c.controller.throttle, finite(c.pacingIndex), shadowMode ? would : 0);
          break;
        }
        case OpKind.SPEND: {
          if (c === undefined) {
            w.spend(r.slot, this.unknownStatus(r.campaignId), 0);
            break;
          }
          const key = pendingKey(c.id, r.eventId);
          const pending = this.flusher.findPending(key);
          if (pending !== undefined) {
            // A resend of an event still on its way to the store: answered with its outcome.
            (pending.followers ??= []).push({ origin, slot: r.slot });
            break;
          }
          if (this.remembered.has(key)) {
            // A resend of an event already stored changes nothing, whatever requestId it names.
            this.totals.spendDuplicate++;
            c.countDuplicate();
            // Spend is always answered on the late path, as if after a flush (clients see no difference).
            this.lateTo(origin).spend(r.slot, OpStatus.DUPLICATE, 0);
            break;
          }
          if (!isMicros(r.micros) || c.settled + r.micros > limits.dayTotalMicrosMax) {
            this.totals.spendRefused++;
            w.spend(r.slot, OpStatus.AMOUNT_REFUSED, 0);
            break;
          }
          if (this.flusher.pendingEvents >= limits.pendingEventsMax) {
            this.totals.spendOverloaded++;
            w.spend(r.slot, OpStatus.OVERLOADED, 0);
            break;
          }
          const flags = c.applySpend(now, r.micros, r.requestId);
          // Taken at once: the shadow's spend below is a campaign's applySpend too.
          const settledReservation = c.takeLastSettled();
          if (c.shadow !== null && (flags & SpendFlag.MATCHED_RESERVATION) !== 0) c.shadow.spent(now, r.micros, r.requestId);
          // Every spend received here counts against this shard's lease until the store has it, a
          // spend for a reservation it does not hold too: spooled meanwhile, it is in no settled
          // counter yet. Once stored, a spend naming a reservation this shard does not hold leaves
          // this lease (settled(), below): the lease that promised that money pays for it (its
          // holder finds the reservation gone from the store: settledElsewhere).
          c.lease?.spend(c.day.bounds.key, r.micros);
          this.flusher.addSpend({
            campaign: c,
            eventId: r.eventId,
            key,
            amount: r.micros,
            // With leases an unmatched requestId goes to the store too, which settles the
            // reservation another instance made for it.
            requestId: (flags & SpendFlag.MATCHED_RESERVATION) !== 0 || c.lease !== null ? r.requestId : '',
            origin,
            slot: r.slot,
            flags,
            day: c.day.bounds.key,
            followers: null,
            settledReservation,
          });
          break;
        }
        case OpKind.RELEASE: {
          if (c === undefined) {
            w.release(r.slot, this.unknownStatus(r.campaignId));
            break;
          }
          const released = c.release(r.requestId);
          if (released) {
            c.shadow?.released(r.requestId);
            this.totals.releases++;
            this.flusher.reservationRemoved(c, r.requestId);
          }
          w.release(r.slot, released ? OpStatus.RELEASED : OpStatus.NOT_FOUND);
          break;
        }
        default: {
          const bad: never = r.kind;
          throw new RangeError(`unknown op kind ${String(bad)}`);
        }
      }
    }
    this.sendLate();
    return w.take();
  }

  private lateTo(origin: number): ResultWriter {
    return (this.lateWriters[origin] ??= new ResultWriter(true));
  }

  /** Sends the late results gathered for each router. */
  private sendLate(): void {
    const writers = this.lateWriters;
    for (let origin = 0; origin < writers.length; origin++) {
      const w = writers[origin];
      if (w !== undefined && w.count > 0) this.ports.sendResults(w.take(), origin);
    }
  }

  /** Whether an unknown campaign may be one whose counters are still being loaded. */
  private isLoading(campaignId: string): boolean {
    const loading = !this.catalogueComplete || this.unloaded.has(campaignId);
    if (loading) this.totals.notReady++;
    return loading;
  }

  private unknownStatus(campaignId: string): typeof OpStatus.NOT_READY | typeof OpStatus.UNKNOWN_CAMPAIGN {
    return this.isLoading(campaignId) ? OpStatus.NOT_READY : OpStatus.UNKNOWN_CAMPAIGN;
  }

  /** The admin has sent every campaign of its catalogue: an unknown campaign is now unknown. */
  catalogueLoaded(): void {
    this.catalogueComplete = true;
  }

  /** Live reservations of all campaigns of this shard. */
  get reservationCount(): number {
    return this.liveReservations.count;
  }

  private remember(key: string): void {
    this.remembered.add(key);
  }

  /**
   * The store found an event that settled a reservation in memory to be a duplicate: the
   * reservation was never the event's to settle, so it is live again (unless it expired meanwhile).
   */
  private restoreSettled(c: Campaign, s: SettledReservation): void {
    const now = this.ports.clock.now();
    const { requestId, reservation } = s;
    if (this.campaigns.get(c.id) !== c) return;
    if (reservation.expiresAtMs <= now) {
      this.flusher.reservationRemoved(c, requestId);
      return;
    }
    if (!c.restoreReservation(requestId, reservation.amount, reservation.expiresAtMs)) return;
    this.flusher.reservationAdded(c, requestId, reservation.amount, reservation.expiresAtMs);
  }

  private spoolingNow(): boolean {
    return this.options.spooling?.() ?? false;
  }

  /** Answers the spend events of a flushed batch. */
  private settled(s: FlushSettled): void {
    for (let i = 0; i < s.spends.length; i++) {
      const e = s.spends[i]!;
      if (e.slot === carrySlot) continue; // nobody waits for it; a duplicate was carried before
      const w = this.lateTo(e.origin);
      const followers: ReplyTo[] | null = e.followers;
      if (s.applied === null) {
        this.totals.spendFailed++;
        w.spend(e.slot, OpStatus.STORE_FAILED, 0);
        if (followers !== null) for (const f of followers) this.lateTo(f.origin).spend(f.slot, OpStatus.STORE_FAILED, 0);
        e.followers = null;
        continue;
      }
      const applied = s.applied[i]!;
      const settledRes = e.settledReservation;
      if (settledRes !== null) e.campaign.releaseHold(settledRes.hold);
      e.settledReservation = null;
      if (applied) {
        this.totals.spendApplied++;
        this.totals.settledMicros += e.amount;
        // An applied spend counts in what this shard's settled holds (others' spend is the settled
        // counter less that), and in this lease unless it named a reservation this shard does not
        // hold. That one is paid by the lease that reserved it, which finds it settled
        // (settledElsewhere); paid here as well, it left two leases, and the money it freed in
        // this one was covering this holder's own reservations (settled + reserved passed a
        // budget by up to 1.4%, test/cluster/instances.test.ts). A spend that names no
        // reservation is paid here; one whose reservation expired before it came (a late notice)
        // was paid by the reserving lease at the expiry (sweep).
        // Acknowledged from the spool, it is in no settled counter yet and the reserving instance
        // still finds its reservation in the store: this lease goes on paying for it, or nothing
        // would cover it once that reservation expired there.
        const lease = e.campaign.lease;
        if (lease !== null) {
          if (e.requestId !== '' && (e.flags & SpendFlag.MATCHED_RESERVATION) === 0 && !this.spoolingNow()) lease.unspend(e.day, e.amount);
          else lease.ack(e.day, e.amount);
          lease.ackHere(e.day, e.amount);
        }
      } else {
        this.totals.spendDuplicate++;
        e.campaign.lease?.unspend(e.day, e.amount);
        e.campaign.revertSpend(this.ports.clock.now(), e.amount, e.flags, e.day);
        if (settledRes !== null) this.restoreSettled(e.campaign, settledRes);
      }
      this.remember(e.key);
      if (!s.answered) w.spend(e.slot, applied ? OpStatus.APPLIED : OpStatus.DUPLICATE, applied ? e.flags : 0);
      if (followers !== null) {
        for (const f of followers) {
          this.totals.spendDuplicate++;
          e.campaign.countDuplicate();
          this.lateTo(f.origin).spend(f.slot, OpStatus.DUPLICATE, 0);
        }
      }
    }
    this.sendLate();
  }

  /**
   * The store, replaying its spool after an outage, found that an event the spool had answered
   * "applied" had reached the store before (a resend of an event stored earlier): it counted it
   * once, so memory gives the amount back. Nothing to do once the campaign's day has rolled over.
   */
  revertLateDuplicate(campaignId: string, day: string, amountMicros: number): void {
    this.totals.spendLateDuplicates++;
    this.totals.revertedMicros += amountMicros;
    this.campaigns.get(campaignId)?.revertSpend(this.ports.clock.now(), amountMicros, 0, day);
  }

  /**
   * A lease answer from the host's lease keeper. It applies only to the campaign and day it was
   * asked for (a campaign reloaded or rolled over since asks again).
   */
  handleLease(msg: LeaseGrantMessage): void {
    const c = this.campaigns.get(msg.campaignId);
    const lease = c?.lease;
    if (c === undefined || lease === undefined || lease === null) return;
    if (lease.seq !== msg.seq) return;
    if (lease.day !== msg.day) {
      lease.failed();
      return;
    }
    const now = this.ports.clock.now();
    lease.granted(msg.sentAtMs, now, msg.usedMicros, msg.grantedMicros, msg.ttlMs, msg.settledMicros);
    // The breaker trips on global spend: other instances' spend arrives with the renewal.
    c.breaker.onCommitted(now, c.settled + lease.othersMicros + c.reserved, c.budget);
  }

  /**
   * The lease keeper found these reservations of a campaign gone from the store: a spend that
   * arrived at another instance settled them there (or they were released there). They leave this
   * shard, and their amounts count as this holder's settled spend for its lease, so that the lease
   * that promised the money is the one it leaves (the spend's instance did not count it in its own).
   * Returns how many were dropped.
   */
  settledElsewhere(campaignId: string, day: string, requestIds: readonly string[]): number {
    const c = this.campaigns.get(campaignId);
    const lease = c?.lease;
    if (c === undefined || lease === undefined || lease === null || lease.day !== day) return 0;
    let dropped = 0;
    for (const id of requestIds) {
      const r = c.reservations.get(id);
      if (r === undefined) continue;
      const amount = r.amount;
      c.release(id);
      this.flusher.reservationRemoved(c, id);
      lease.spend(day, amount);
      lease.ack(day, amount);
      dropped++;
    }
    this.totals.leaseSettledElsewhere += dropped;
    return dropped;
  }

  /** Expires due reservations; called every reservationSweepMs. */
  sweep(): void {
    const now = this.ports.clock.now();
    for (let e = this.expiries.popDue(now); e !== undefined; e = this.expiries.popDue(now)) {
      if (this.campaigns.get(e.campaign.id) !== e.campaign) continue;
      const amount = e.campaign.expire(e.requestId, e.expiresAtMs);
      if (amount >= 0) {
        // With leases, an expired reservation leaves its lease as if spent: a win notice may have
        // reached another instance after this shard last looked in the store (settledElsewhere), and
        // that spend is paid by this lease only (settled()). Taken for spent, its money returns to
        // the other holders at the next renewal, which is right either way: spent, the settled
        // counter holds it; not spent, nobody holds it any more. Dropped instead, the lease kept its
        // money free for new bids while the settled counter held the spend too.
        const lease = e.campaign.lease;
        if (lease !== null && amount > 0) lease.expired(e.campaign.day.bounds.key, amount);
        e.campaign.shadow?.expired(e.requestId, e.expiresAtMs);
        this.totals.expiredReservations++;
        this.flusher.reservationRemoved(e.campaign, e.requestId);
      }
    }
  }

  // ---- control plane --------------------------------------------------------------------------

  /**
   * Creates or reconfigures a campaign. A campaign new to this shard first loads today's counters
   * and live reservations from the store, so a restart forgets no money.
   */
  async upsert(received: CampaignConfig): Promise<void> {
    const config = this.interner.compact(received);
    const inProgress = this.loading.get(config.id);
    if (inProgress !== undefined) await inProgress;
    const existing = this.campaigns.get(config.id);
    if (existing !== undefined) {
      if (config.version < existing.version) return;
      const now = this.ports.clock.now();
      if (config.timezone !== existing.timezone && dayBounds(config.timezone, now).key !== existing.day.bounds.key) {
        await this.changeZone(existing, config);
        return;
      }
      existing.reconfigure(config, now);
      this.syncShadow(existing, now);
      return;
    }
    // Until its counters are loaded the campaign is answered NOT_READY, also when the load fails
    // (the admin retries it): a win notice must hear "retry", never "unknown campaign".
    this.unloaded.add(config.id);
    const load = this.load(config);
    this.loading.set(config.id, load);
    try {
      await load;
      this.unloaded.delete(config.id);
    } finally {
      this.loading.delete(config.id);
    }
  }

  /**
   * Startup: many campaigns in one message, each loaded as upsert() would, concurrently (the
   * store's connection pipelines their reads). Answers with the IDs whose load failed (store down):
   * they stay NOT_READY and the admin sends them again. One message and one short answer per batch
   * instead of a request and a full status per campaign.
   */
  async loadMany(received: readonly CampaignConfig[]): Promise<string[]> {
    const failed: string[] = [];
    // Known or already loading: an upsert each. New: one store call for all of them, when it can.
    const fresh: CampaignConfig[] = [];
    const freshIds = new Set<string>();
    const others: Promise<void>[] = [];
    for (const r of received) {
      if (this.ports.store.loadMany !== undefined && !this.campaigns.has(r.id) && !this.loading.has(r.id) && !freshIds.has(r.id)) {
        freshIds.add(r.id);
        fresh.push(this.interner.compact(r));
      } else {
        others.push(this.upsert(r).catch(() => void failed.push(r.id)));
      }
    }
    if (fresh.length > 0) {
      const now = this.ports.clock.now();
      const requests = fresh.map((config) => ({ campaignId: config.id, day: dayBounds(config.timezone, now).key, flightStartDay: flightStartDayOf(config) }));
      const all = this.ports.store.loadMany!(requests);
      fresh.forEach((config, i) => {
        this.unloaded.add(config.id);
        const mine = all.then((snapshots) => {
          const s = snapshots[i];
          if (s === undefined || s instanceof Error) throw s ?? new Error('no snapshot');
          this.install(config, s);
        });
        this.loading.set(config.id, mine);
        others.push(mine.then(
          () => void this.unloaded.delete(config.id),
          () => void failed.push(config.id),
        ).finally(() => this.loading.delete(config.id)));
      });
    }
    await Promise.all(others);
    return failed;
  }

  /**
   * A time-zone change to another local date: what the store holds under the new day's key is
   * loaded first (the campaign keeps its old zone until then; if the store is down the change
   * fails and the admin retries it), then today's spend is carried into the new day, in memory
   * and, through a spend record of its own, in the store. That record is written in the flush
   * order: any spend acknowledged after the change was stored with or after it.
   */
  private async changeZone(c: Campaign, config: CampaignConfig): Promise<void> {
    const newDay = dayBounds(config.timezone, this.ports.clock.now()).key;
    const snapshot = await this.ports.store.load(config.id, newDay, null);
    if (this.campaigns.get(config.id) !== c || config.version < c.version) return;
    const carried = c.changeZone(config, this.ports.clock.now(), snapshot.settledMicros);
    this.syncShadow(c, this.ports.clock.now());
    if (carried === 0) return;
    // The carry is this holder's spend of the new day as far as its lease is concerned.
    c.lease?.spend(c.day.bounds.key, carried);
    this.flusher.addSpend({
      campaign: c,
      // '#' is outside the event ID alphabet clients may use, so this ID never meets a client's.
      eventId: `#zone#${config.version}`,
      key: pendingKey(c.id, `#zone#${config.version}`),
      amount: carried,
      requestId: '',
      origin: 0,
      slot: carrySlot,
      flags: 0,
      day: c.day.bounds.key,
      followers: null,
      settledReservation: null,
    });
  }

  private async load(config: CampaignConfig): Promise<void> {
    const now = this.ports.clock.now();
    const day = dayBounds(config.timezone, now).key;
    this.install(config, await this.ports.store.load(config.id, day, flightStartDayOf(config)));
  }

  /** A campaign new to this shard, with the counters and reservations the store holds for it. */
  private install(config: CampaignConfig, snapshot: CampaignSnapshot): void {
    const at = this.ports.clock.now();
    const c = new Campaign(config, at, this.hooks);
    c.restore(snapshot.settledMicros, snapshot.lifetimeSettledMicros, at);
    if (this.options.leases === true) c.lease = new Lease(c.day.bounds.key, c.settled);
    let badReservations = 0;
    for (const r of snapshot.reservations) {
      if (!(r.expiresAtMs > at)) continue; // expired, or not a number
      if (!isMicros(r.amountMicros) || c.reserved + r.amountMicros > limits.dayTotalMicrosMax) {
        badReservations++;
        continue;
      }
      c.restoreReservation(r.requestId, r.amountMicros, r.expiresAtMs);
    }
    if (badReservations > 0 && c.countersFault === null) {
      c.countersFault = `${badReservations} stored reservations out of range were not restored: correct them in the store and restart`;
    }
    if (c.countersFault !== null) {
      this.totals.countersOutOfRange++;
      this.ports.emit({ type: 'fault', message: `campaign ${config.id} kept paused: ${c.countersFault}` });
    }
    this.syncShadow(c, at);
    this.campaigns.set(config.id, c);
  }

  /**
   * Gives a campaign the shadow its configuration asks for (shards/pacing/shadow.ts), reconfigures
   * the one it has, or drops it: the one place shadows are made.
   */
  private syncShadow(c: Campaign, nowMs: number): void {
    if (!wantsShadow(c.config)) {
      c.shadow?.dispose();
      c.shadow = null;
    } else if (c.shadow === null) c.shadow = new Shadow(c.config, c, nowMs, this.hooks);
    else c.shadow.reconfigure(c.config, nowMs);
  }

  status(campaignId: string): (CampaignStatus & { shadow?: ShadowStatus }) | null {
    const c = this.campaigns.get(campaignId);
    if (c === undefined) return null;
    const now = this.ports.clock.now();
    const s: CampaignStatus & { shadow?: ShadowStatus } = c.status(now);
    if (c.shadow !== null) s.shadow = c.shadow.status(now);
    return s;
  }

  resetBreaker(campaignId: string): CampaignStatus | null {
    const c = this.campaigns.get(campaignId);
    if (c === undefined) return null;
    const now = this.ports.clock.now();
    c.resetBreaker(now);
    return c.status(now);
  }

  /**
   * A budget operation from the admin: the check against committed money and the change run in one
   * turn of the actor, so no decision or spend slips between them. The admin serialises writes to a
   * campaign, so the configuration applies whatever its version (it may be a revert). Null while the
   * campaign is not loaded here.
   */
  setBudget(received: CampaignConfig, floor: BudgetFloor): BudgetOutcome | null {
    const config = this.interner.compact(received);
    const c = this.campaigns.get(config.id);
    if (c === undefined) return null;
    const now = this.ports.clock.now();
    // Roll the day over first: yesterday's settled money must not block today's budget.
    c.refresh(now);
    const today = c.settled + c.reserved;
    const committedMicros = floor === 'lifetime' ? c.lifetimeBefore + today : today;
    const budget = floor === 'lifetime' ? (config.lifetimeBudgetMicros ?? Infinity) : config.dailyBudgetMicros;
    if (floor !== null && budget < committedMicros) return { applied: false, committedMicros, status: c.status(now) };
    c.reconfigure(config, now);
    this.syncShadow(c, now);
    return { applied: true, committedMicros, status: c.status(now) };
  }

  /**
   * Profiles the admin thread fitted from the stored history (shards/pacing/profile.ts): each
   * campaign's replaces what it learned and replans its day; `global`, when given, replaces the
   * shard's fallback. A campaign still loading gets its profile once loaded; one not on this shard
   * is skipped. Returns how many campaigns took a profile.
   */
  async loadProfiles(profiles: readonly { campaignId: string; profile: FittedProfile }[], global: FittedProfile | null): Promise<number> {
    if (global !== null) this.globalProfile.load(global);
    let loaded = 0;
    for (const { campaignId, profile } of profiles) {
      const inProgress = this.loading.get(campaignId);
      if (inProgress !== undefined) await inProgress.catch(() => undefined);
      const c = this.campaigns.get(campaignId);
      if (c === undefined) continue;
      c.loadProfile(profile, this.ports.clock.now());
      c.shadow?.sim.loadProfile(profile, this.ports.clock.now());
      loaded++;
    }
    return loaded;
  }

  /** Counters since the last call, for the history; campaigns without activity are left out. */
  summaries(): CampaignSummary[] {
    const out: CampaignSummary[] = [];
    for (const c of this.campaigns.values()) {
      // Taken, not reset: the campaign allocates new counters on its next count (an idle one holds none).
      const s = c.takeSummary();
      if (s === null) continue;
      if (s.decisions === 0 && s.spendEvents === 0 && s.duplicateEvents === 0 && s.expiredReservations === 0) continue;
      const shadow = c.shadow === null ? undefined : shadowSummary(c.shadow);
      out.push({
        campaignId: c.id,
        day: c.day.bounds.key,
        decisions: s.decisions,
        allowed: s.allowed,
        deniedByReason: s.deniedByReason(),
        spendEvents: s.spendEvents,
        settledMicros: s.settledMicros,
        duplicateEvents: s.duplicateEvents,
        unmatchedEvents: s.unmatchedEvents,
        expiredReservations: s.expiredReservations,
        budgetMicros: c.budget,
        throttle: c.controller.throttle,
        breakerState: c.breaker.state,
        ...(shadow === undefined ? {} : { shadow }),
      });
    }
    return out;
  }

  /** Writes everything pending to the store (graceful shutdown). */
  async drain(): Promise<void> {
    await this.flusher.drain();
  }
}

/** The slot of a spend record the shard writes itself (a time-zone carry): never answered. */
const carrySlot = -1;

/**
 * The first local day whose settled spend counts toward a lifetime budget. Without a startAt the
 * flight began when the campaign was created, so every day the store holds for it counts: a
 * restart must not forget earlier days (the flight's start is not stored anywhere else).
 */
export const flightFromFirstDay = '0001-01-01';

function flightStartDayOf(config: CampaignConfig): string | null {
  if (config.lifetimeBudgetMicros === null) return null;
  return config.startAtMs === null ? flightFromFirstDay : dayBounds(config.timezone, config.startAtMs).key;
}

function shadowSummary(shadow: Shadow): ShadowSummary {
  const { counters, estimatedMicros } = shadow.takeSummary();
  return {
    strategy: shadow.strategy,
    decisions: counters?.decisions ?? 0,
    allowed: counters?.allowed ?? 0,
    deniedByReason: counters?.deniedByReason() ?? {},
    settledMicros: counters?.settledMicros ?? 0,
    estimatedMicros,
  };
}

function finite(x: number): number {
  return Number.isFinite(x) ? x : 0;
}

