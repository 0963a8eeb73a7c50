import { limits } from '../../shards/limits.js';
import type { CampaignSnapshot, CounterStore, FlushBatch, FlushOutcome, Timers } from '../../shards/ports.js';
import { sfc32 } from '../../shards/rng.js';
import { MemoryStore } from '../store/memory.js';
import { ResilientCounterStore } from '../store/resilient.js';
import { spoolFileName } from '../store/spool.js';
import { MemorySpoolFs } from './memfs.js';

/**
 * Store faults for the simulator, all drawn from the run's seed. Per call, the store may refuse
 * (a connection error), hang (never answer: the resilient store's deadline cuts it off), write and
 * lose the reply (the caller sees a timeout or an error, so its retry must be idempotent), or write
 * and answer after the deadline. Besides, at seeded instants: outages (every call refused for a
 * while), restarts of the pacer process (the shard's memory is dropped and reloaded from the
 * store) and, when asked, a restart of the store that loses its last second of writes (Redis with
 * `appendfsync everysec`).
 */
export interface FaultPlan {
  /** Share of store calls refused at once. */
  rejectRate: number;
  /** Share of store calls that never answer. */
  hangRate: number;
  /** Share of store calls that write and whose reply is lost. */
  lostReplyRate: number;
  /** Share of store calls that write and answer only after the call's deadline. */
  lateReplyRate: number;
  /** Outages per simulated day, each up to outageMsMax long. */
  outagesPerDay: number;
  outageMsMax: number;
  /** Restarts of the pacer process per simulated day. */
  restartsPerDay: number;
  /** Store restarts per simulated day that lose the last lossWindowMs of writes. */
  storeLossesPerDay: number;
  lossWindowMs: number;
}

/** What `--faults` turns on: a few faults per thousand calls, a few outages and restarts a day. */
export const defaultFaults: FaultPlan = {
  rejectRate: 0.002,
  hangRate: 0.001,
  lostReplyRate: 0.002,
  lateReplyRate: 0.002,
  outagesPerDay: 6,
  outageMsMax: 30_000,
  restartsPerDay: 4,
  storeLossesPerDay: 0,
  // Redis's appendfsync everysec: a crash loses up to one second of writes (redis.io, persistence).
  lossWindowMs: 1_000,
};

/** The store behind the faults: a store with the durable stores' semantics, readable by the auditor. */
export interface SimBackingStore extends CounterStore {
  settledOf(campaignId: string, day: string): number;
}

export interface FaultCounts {
  calls: number;
  rejected: number;
  hung: number;
  lostReplies: number;
  lateReplies: number;
}

/** One event the store holds, by campaignId + '\n' + eventId. */
export interface HeldEvent {
  amount: number;
  day: string;
}

export class FaultyStore implements CounterStore {
  readonly kind = 'faulty';
  backing: SimBackingStore;
  /** Faults are drawn only while enabled (off while a restart reloads, and for the final drain). */
  enabled = true;
  /** During an outage every call is refused. */
  down = false;
  readonly counts: FaultCounts = { calls: 0, rejected: 0, hung: 0, lostReplies: 0, lateReplies: 0 };
  /** The events the store holds, as its answers said: for the auditor's durability checks. */
  held = new Map<string, HeldEvent>();
  /** Called when a call starts to hang (a restart may be waiting for one, to die with spend in flight). */
  onHang: (batch: FlushBatch) => void = () => {};
  /** Every write with its instant, kept only when a lossy restart may need to drop the last ones. */
  private journal: { atMs: number; batch: FlushBatch }[] = [];

  constructor(
    private readonly makeBacking: () => SimBackingStore,
    private readonly plan: FaultPlan,
    private readonly random: () => number,
    private readonly now: () => number,
    private readonly timers: Timers,
    private readonly callTimeoutMs: number,
  ) {
    this.backing = makeBacking();
  }

  async apply(batch: FlushBatch): Promise<FlushOutcome> {
    this.counts.calls++;
    if (!this.enabled) return this.write(batch);
    if (this.down) return this.refuse();
    const p = this.plan;
    const u = this.random();
    if (u < p.rejectRate) return this.refuse();
    if (u < p.rejectRate + p.hangRate) {
      this.counts.hung++;
      this.onHang(batch);
      return new Promise(() => {});
    }
    if (u < p.rejectRate + p.hangRate + p.lostReplyRate) {
      this.counts.lostReplies++;
      await this.write(batch);
      // Half the lost replies end in a connection reset, half in silence (the deadline fires).
      if (this.random() < 0.5) throw new Error('injected fault: connection reset after the write');
      this.onHang(batch);
      return new Promise(() => {});
    }
    if (u < p.rejectRate + p.hangRate + p.lostReplyRate + p.lateReplyRate) {
      this.counts.lateReplies++;
      const outcome = await this.write(batch);
      const delay = this.callTimeoutMs + 1 + Math.floor(this.random() * this.callTimeoutMs);
      return new Promise((resolve) => this.timers.after(delay, () => resolve(outcome)));
    }
    return this.write(batch);
  }

  private refuse(): never {
    this.counts.rejected++;
    throw new Error('injected fault: connection refused');
  }

  private async write(batch: FlushBatch): Promise<FlushOutcome> {
    if (this.plan.storeLossesPerDay > 0) this.journal.push({ atMs: this.now(), batch });
    const outcome = await this.backing.apply(batch);
    this.remember(batch, outcome);
    return outcome;
  }

  private remember(batch: FlushBatch, outcome: FlushOutcome): void {
    batch.campaigns.forEach((d, di) => {
      d.events.forEach((e, ei) => {
        if (outcome[di]![ei]) this.held.set(d.campaignId + '\n' + e.eventId, { amount: e.amountMicros, day: d.day });
      });
    });
  }

  load(campaignId: string, day: string, flightStartDay: string | null): Promise<CampaignSnapshot> {
    if (this.enabled && this.down) return Promise.reject(new Error('injected fault: connection refused'));
    return this.backing.load(campaignId, day, flightStartDay);
  }

  has(campaignId: string, eventId: string): boolean {
    return this.held.has(campaignId + '\n' + eventId);
  }

  /**
   * The store restarts from what it had made durable lossWindowMs ago: a new backing store gets
   * every earlier write again, in order. Returns the events it no longer holds.
   */
  async restartLosingLastWrites(nowMs: number): Promise<Map<string, HeldEvent>> {
    const before = this.held;
    const kept = this.journal.filter((w) => w.atMs < nowMs - this.plan.lossWindowMs);
    this.backing = this.makeBacking();
    this.held = new Map();
    this.journal = kept;
    for (const w of kept) this.remember(w.batch, await this.backing.apply(w.batch));
    const lost = new Map<string, HeldEvent>();
    for (const [key, e] of before) if (!this.held.has(key)) lost.set(key, e);
    return lost;
  }

  async close(): Promise<void> {}
}

/**
 * The store as one life of the process reaches it: once that process has died, its calls (a
 * flush or a replay that a late reply set off) never reach the store, as a dead process writes
 * nothing.
 */
function deadAfterRestart(store: CounterStore, alive: () => boolean): CounterStore {
  return {
    kind: store.kind,
    apply: (batch) => (alive() ? store.apply(batch) : new Promise(() => {})),
    load: (campaignId, day, flightStartDay) => (alive() ? store.load(campaignId, day, flightStartDay) : new Promise(() => {})),
    close: () => store.close(),
  };
}

/** The production memory store as the simulator's backing store. */
export function memoryBacking(): SimBackingStore {
  return new MemoryStore();
}

/** What the faults did over a run, and what the auditor measured through them. */
export interface FaultReport extends FaultCounts {
  outages: number;
  /** Pacer process restarts (memory dropped, counters reloaded from the store). */
  restarts: number;
  /** Win notices unanswered when the process died and not in the store: the exchange resent them. */
  resentAfterRestart: number;
  /** Times the resilient store opened its breaker and spooled. */
  spoolPeriods: number;
  /** Resends the spool answered "applied" and its replay took back out of memory. */
  lateDuplicateCorrections: number;
  /** Store restarts that lost their last lossWindowMs of writes. */
  storeRestarts: number;
  /** Acknowledged spend the store no longer held after those restarts, as the auditor counted it. */
  lostAcknowledgedMicros: number;
  lostAcknowledgedEvents: number;
  /** The same loss in the store's own totals (settled before the restart minus after). */
  storeSettledDropMicros: number;
  /** Acknowledged spend of the lossWindowMs before each lossy restart (the loss's upper bound). */
  windowAcknowledgedMicros: number;
  /** Errors the resilient store logged (each one is also an audit failure). */
  errors: string[];
}

export type ScheduledFault = 'outage' | 'restart' | 'storeLoss';

/**
 * The faulty store, the spool's in-memory file system and the seeded schedule of a run. The
 * per-call draws and the schedule come from their own sfc32 stream of the seed.
 */
export function faultWorld(
  seed: number,
  plan: FaultPlan,
  backing: () => SimBackingStore,
  now: () => number,
  timers: Timers,
) {
  const random = sfc32(seed, 0xfa017, 0x9e3779b9, 0x85ebca6b);
  const faulty = new FaultyStore(backing, plan, random, now, timers, limits.redisCallTimeoutMs);
  const files = new MemorySpoolFs();
  const report: FaultReport = {
    ...faulty.counts,
    outages: 0,
    restarts: 0,
    resentAfterRestart: 0,
    spoolPeriods: 0,
    lateDuplicateCorrections: 0,
    storeRestarts: 0,
    lostAcknowledgedMicros: 0,
    lostAcknowledgedEvents: 0,
    storeSettledDropMicros: 0,
    windowAcknowledgedMicros: 0,
    errors: [],
  };
  return {
    faulty,
    files,
    report,
    random,
    /** The resilient store of one life of the process, with its own spool file, as in production. */
    resilientStore(life: number, lifeTimers: Timers, alive: () => boolean): ResilientCounterStore {
      return new ResilientCounterStore(deadAfterRestart(faulty, alive), {
        label: `sim life ${life}`,
        callTimeoutMs: limits.redisCallTimeoutMs,
        probeIntervalMs: limits.storeProbeIntervalMs,
        spoolPath: `/sim/spool/${spoolFileName(life.toString(36).padStart(6, '0'), 0)}`,
        spoolBytesMax: limits.spoolBytesMax,
        dedupeEventsMax: limits.spoolDedupeEventsMax,
        onDegraded: (degraded) => {
          if (degraded) report.spoolPeriods++;
        },
        timers: lifeTimers,
        files,
        log: (level, msg, fields) => {
          if (level === 'error') report.errors.push(`${msg} ${JSON.stringify(fields)}`);
        },
      });
    },
    /** The instants of the scheduled faults over [startMs, endMs), in order. */
    schedule(startMs: number, endMs: number): { t: number; fault: ScheduledFault }[] {
      const days = (endMs - startMs) / 86_400_000;
      const out: { t: number; fault: ScheduledFault }[] = [];
      const draw = (fault: ScheduledFault, perDay: number): void => {
        const n = Math.round(perDay * days);
        for (let i = 0; i < n; i++) out.push({ t: startMs + Math.floor(random() * (endMs - startMs)), fault });
      };
      draw('outage', plan.outagesPerDay);
      draw('restart', plan.restartsPerDay);
      draw('storeLoss', plan.storeLossesPerDay);
      return out.sort((a, b) => a.t - b.t);
    },
  };
}

export type FaultWorld = ReturnType<typeof faultWorld>;
