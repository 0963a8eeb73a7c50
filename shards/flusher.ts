import type { Campaign, SettledReservation } from './campaign.js';
import { limits } from './limits.js';
import type { CampaignDelta, CounterStore, FlushBatch, FlushOutcome, StoredReservation, Timers } from './ports.js';
import { SpendFlag } from './wire.js';

/** A request waiting for an answer: the router it came from and the slot that router gave it. */
export interface ReplyTo {
  origin: number;
  slot: number;
}

/** A spend event applied in memory and waiting for its batch to reach the store. */
export interface PendingSpend {
  campaign: Campaign;
  eventId: string;
  /** campaignId + '\n' + eventId (pendingKey): built once, for the flusher's and the shard's lookups. */
  key: string;
  amount: number;
  requestId: string;
  /** Where the answer goes: the router (origin, see Shard.handleOps) and its slot. */
  origin: number;
  slot: number;
  flags: number;
  /** The campaign's local day the event was applied to (a duplicate is taken back from that day only). */
  day: string;
  /** Requests that resent this event while it was pending (from any router): answered with its outcome. */
  followers: ReplyTo[] | null;
  /** The reservation the event settled in memory, put back if the store finds a duplicate. */
  settledReservation: SettledReservation | null;
}

interface Job {
  batch: FlushBatch;
  spends: PendingSpend[];
  /** The clients were answered (with a failure) when the batch first failed. */
  answered: boolean;
  /** The last attempt failed and a retry is scheduled. */
  failed: boolean;
  /** The batch's deltas by campaign (the newest day's): which reservations it writes. */
  deltas: Map<Campaign, DeltaBuilder>;
}

interface DeltaBuilder {
  campaign: Campaign;
  day: string;
  events: PendingSpend[];
  /** Reservations written and deleted by this delta: made on the first one (most deltas have none). */
  added: Map<string, StoredReservation> | null;
  removed: Set<string> | null;
}

/** The key of a spend event among a shard's pending and remembered events. */
export function pendingKey(campaignId: string, eventId: string): string {
  return campaignId + '\n' + eventId;
}

export interface FlushSettled {
  spends: PendingSpend[];
  /** Per spend: true applied, false duplicate; null when the store failed (spends are retried). */
  applied: boolean[] | null;
  /** The clients were already answered (with a failure) when this batch first failed. */
  answered: boolean;
}

/**
 * Coalesces a shard's deltas and writes them to the store in one batch per flush: at
 * flushIntervalMs after the first change, or at once when flushEventsMax events wait, whichever
 * comes first. Up to flushInFlightMax batches are in flight at once (the store's connection keeps
 * them in order), so a spend does not wait for the previous batch's round trip; past that, what
 * arrives forms the next batch, so batches grow with load (group commit). A failed batch is
 * retried as it was, under the same ID (the store applies a batch ID at most once, so a retry
 * after a lost reply cannot count twice), and no new batch leaves until it succeeds.
 */
export class Flusher {
  /** Builders of the next batch in order; `current` maps each campaign to its builder for today. */
  private building: DeltaBuilder[] = [];
  private current = new Map<Campaign, DeltaBuilder>();
  private buildingEvents = 0;
  /** Events of the building batch and of the batches in flight, by campaignId + '\n' + eventId. */
  private readonly pending = new Map<string, PendingSpend>();
  private readonly inFlight = new Set<Job>();
  /** Jobs whose last attempt failed and wait for their retry: no new batch leaves meanwhile. */
  private failing = 0;
  private cancelTimer: (() => void) | null = null;
  private seq = 0;
  private retryDelayMs = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly store: CounterStore,
    private readonly timers: Timers,
    private readonly batchIdPrefix: string,
    private readonly now: () => number,
    private readonly onSettled: (s: FlushSettled) => void,
    private readonly onFault: (message: string) => void,
    private readonly flushIntervalMs: number = limits.flushIntervalMs,
    private readonly inFlightMax: number = limits.flushInFlightMax,
  ) {}

  private get saturated(): boolean {
    return this.inFlight.size >= this.inFlightMax || this.failing > 0;
  }

  /** Spend events in memory not yet confirmed by the store. */
  get pendingEvents(): number {
    return this.pending.size;
  }

  /** The pending spend of this key (pendingKey), if any. */
  findPending(key: string): PendingSpend | undefined {
    return this.pending.get(key);
  }

  addSpend(spend: PendingSpend): void {
    const d = this.delta(spend.campaign);
    d.events.push(spend);
    if (spend.requestId !== '') this.removeFrom(d, spend.requestId, false);
    this.pending.set(spend.key, spend);
    this.buildingEvents++;
    this.arm();
  }

  reservationAdded(campaign: Campaign, requestId: string, amountMicros: number, expiresAtMs: number): void {
    const d = this.delta(campaign);
    d.removed?.delete(requestId);
    (d.added ??= new Map()).set(requestId, { requestId, amountMicros, expiresAtMs });
    this.arm();
  }

  reservationRemoved(campaign: Campaign, requestId: string): void {
    this.removeFrom(this.delta(campaign), requestId, true);
    this.arm();
  }

  /**
   * Whether the store may not hold this reservation yet: its write is in the building batch or in
   * a batch the store has not acknowledged. (Absent from the store and not unstored, another
   * instance settled or released it: the lease keeper's reconciliation.)
   */
  unstored(campaign: Campaign, requestId: string): boolean {
    if (this.current.get(campaign)?.added?.has(requestId) === true) return true;
    for (const job of this.inFlight) if (job.deltas.get(campaign)?.added?.has(requestId) === true) return true;
    return false;
  }

  /** A reservation made and dropped within one batch never reaches the store. */
  private removeFrom(d: DeltaBuilder, requestId: string, record: boolean): void {
    if (d.added !== null && d.added.delete(requestId)) return;
    if (record) (d.removed ??= new Set()).add(requestId);
  }

  private delta(campaign: Campaign): DeltaBuilder {
    const day = campaign.day.bounds.key;
    let d = this.current.get(campaign);
    // After a rollover the campaign's new spend belongs to a new day: a new delta.
    if (d === undefined || d.day !== day) {
      d = { campaign, day, events: [], added: null, removed: null };
      this.current.set(campaign, d);
      this.building.push(d);
    }
    return d;
  }

  private arm(): void {
    if (this.buildingEvents >= limits.flushEventsMax) {
      this.flushSoon();
      return;
    }
    if (this.cancelTimer !== null || this.saturated || this.closed) return;
    this.cancelTimer = this.timers.after(this.flushIntervalMs, () => {
      this.cancelTimer = null;
      void this.flush();
    });
  }

  private flushSoon(): void {
    if (this.saturated) return;
    if (this.cancelTimer !== null) {
      this.cancelTimer();
      this.cancelTimer = null;
    }
    void this.flush();
  }

  /** Writes the building batch now (no-op while the flusher is saturated; it follows on completion). */
  async flush(): Promise<void> {
    if (this.saturated) return;
    if (this.building.length === 0) {
      this.wakeIdle();
      return;
    }
    const campaigns: CampaignDelta[] = [];
    const spends: PendingSpend[] = [];
    for (const d of this.building) {
      if (d.events.length === 0 && (d.added?.size ?? 0) === 0 && (d.removed?.size ?? 0) === 0) continue;
      campaigns.push({
        campaignId: d.campaign.id,
        day: d.day,
        events: d.events.map((e) =>
          e.requestId !== '' && (e.flags & SpendFlag.MATCHED_RESERVATION) === 0
            ? { eventId: e.eventId, amountMicros: e.amount, requestId: e.requestId, settlesElsewhere: true }
            : { eventId: e.eventId, amountMicros: e.amount, requestId: e.requestId },
        ),
        reservationsAdded: d.added === null ? [] : [...d.added.values()],
        reservationsRemoved: d.removed === null ? [] : [...d.removed],
      });
      for (const e of d.events) spends.push(e);
    }
    const deltas = this.current;
    this.building = [];
    this.current = new Map();
    this.buildingEvents = 0;
    if (campaigns.length === 0) {
      this.wakeIdle();
      return;
    }
    const batch: FlushBatch = { batchId: `${this.batchIdPrefix}:${++this.seq}`, atMs: this.now(), campaigns };
    const job: Job = { batch, spends, answered: false, failed: false, deltas };
    this.inFlight.add(job);
    await this.send(job);
  }

  private async send(job: Job): Promise<void> {
    let outcome: FlushOutcome;
    try {
      outcome = await this.store.apply(job.batch);
    } catch (err) {
      this.retryDelayMs = Math.min(Math.max(this.retryDelayMs * 2, 10), 1_000);
      this.onFault(`store ${this.store.kind} refused batch ${job.batch.batchId}: ${(err as Error).message}`);
      // The clients hear at once that their events are not recorded yet (a resend is safe: it joins
      // the pending event or is found a duplicate); the batch itself is retried under its ID.
      if (!job.answered) this.onSettled({ spends: job.spends, applied: null, answered: false });
      job.answered = true;
      if (!job.failed) this.failing++;
      job.failed = true;
      this.timers.after(this.retryDelayMs, () => void this.send(job));
      return;
    }
    if (job.failed) this.failing--;
    if (this.failing === 0) this.retryDelayMs = 0;
    const applied: boolean[] = [];
    for (const flags of outcome) for (const f of flags) applied.push(f);
    for (const s of job.spends) this.pending.delete(s.key);
    this.inFlight.delete(job);
    this.onSettled({ spends: job.spends, applied, answered: job.answered });
    // Not awaited: awaited, every send waited for the next batch's, so under steady spend the
    // finished sends (each holding its job and outcome) formed a chain until the flusher next went
    // idle. Measured: the shard's promotion rate did not change (bench/README.md, "What the shard
    // keeps past a scavenge"); nothing else waits on a send.
    if (this.building.length > 0) void this.flush();
    else this.wakeIdle();
  }

  /** Resolves when nothing is building or in flight (graceful shutdown, tests, the simulator). */
  drain(): Promise<void> {
    if (this.inFlight.size === 0 && this.building.length === 0) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    if (!this.saturated) {
      if (this.cancelTimer !== null) {
        this.cancelTimer();
        this.cancelTimer = null;
      }
      void this.flush();
    }
    return done;
  }

  close(): void {
    this.closed = true;
    if (this.cancelTimer !== null) this.cancelTimer();
    this.cancelTimer = null;
  }

  private wakeIdle(): void {
    if (this.inFlight.size > 0 || this.building.length > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
