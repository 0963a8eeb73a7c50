import type { Campaign } from '../../shards/campaign.js';
import type { ResilientCounterStore } from '../store/resilient.js';
import { replayLeftovers } from '../store/spool.js';
import { settle } from './clock.js';
import type { EventQueue } from './events.js';
import type { FaultPlan, FaultWorld, ScheduledFault } from './faults.js';
import type { Ledger, SentSpend } from './ledger.js';

/** After a pacer restart, the exchange resends the win notices it got no answer for this much later. */
export const restartResendDelayMs = 1_000;
/** A lossy store restart waits this long for a moment with no spend in flight and nothing spooled. */
export const storeLossRetryMs = 100;

/** What the driver needs of the simulation around it (src/sim/run.ts). */
export interface FaultHost {
  readonly campaignId: string;
  readonly queue: EventQueue;
  readonly ledger: Ledger;
  /** Spend sent to the shard and not answered yet, by slot. */
  readonly sentSpends: Map<number, SentSpend>;
  now(): number;
  /** Moves the clock forward (the drain after the day). */
  advanceTo(t: number): void;
  /** The resilient store of the process alive now. */
  resilient(): ResilientCounterStore;
  /** Kills the process alive now: its timers never fire, its calls never reach the store. */
  kill(): void;
  /** Starts the next life of the process: a new shard loads the campaign. */
  startNextLife(): Promise<Campaign>;
  /** The ledger follows the new life: the reservation sweeps are planned again from it. */
  replanSweeps(): void;
}

/**
 * Runs the scheduled faults of a simulation: outages, pacer restarts (half of them timed to a hung
 * call carrying spend, so the process dies with spend in flight) and lossy store restarts, and the
 * drain after the day that lets deadlines, late replies and the spool's replay run out.
 */
export class FaultDriver {
  private outagesOpen = 0;
  private restartOnHang = false;
  private lossAwaitsAck = false;

  constructor(
    private readonly w: FaultWorld,
    private readonly plan: FaultPlan,
    private readonly host: FaultHost,
  ) {
    w.faulty.onHang = (batch) => {
      if (!this.restartOnHang || !batch.campaigns.some((d) => d.events.length > 0)) return;
      this.restartOnHang = false;
      this.push(host.now() + 1, 'restart');
    };
  }

  /** Puts the seeded schedule of [startMs, endMs) on the event queue. */
  schedule(startMs: number, endMs: number): void {
    for (const f of this.w.schedule(startMs, endMs)) this.push(f.t, f.fault);
  }

  private push(t: number, fault: ScheduledFault): void {
    this.host.queue.push({ kind: 'fault', t, seq: this.host.queue.nextSeq(), fault });
  }

  /** A spend was acknowledged "applied": a lossy store restart may be waiting for one. */
  acknowledged(): void {
    if (!this.lossAwaitsAck) return;
    this.lossAwaitsAck = false;
    this.push(this.host.now() + 1, 'storeLoss');
  }

  async run(fault: ScheduledFault): Promise<void> {
    switch (fault) {
      case 'outage':
        return this.outage();
      case 'restart':
        if (!this.restartOnHang && this.host.sentSpends.size === 0 && this.w.random() < 0.5) {
          this.restartOnHang = true;
          return;
        }
        this.restartOnHang = false;
        return this.restart();
      case 'storeLoss':
        return this.storeLoss();
      default: {
        const bad: never = fault;
        throw new RangeError(`unknown fault ${String(bad)}`);
      }
    }
  }

  private outage(): void {
    const w = this.w;
    w.report.outages++;
    this.outagesOpen++;
    w.faulty.down = true;
    const ms = 1_000 + Math.floor(w.random() * Math.max(0, this.plan.outageMsMax - 1_000));
    this.host.queue.push({
      kind: 'timer',
      t: this.host.now() + ms,
      seq: this.host.queue.nextSeq(),
      fn: () => {
        w.faulty.down = --this.outagesOpen > 0;
      },
      cancelled: false,
    });
  }

  /** The pacer process dies and starts again: memory is gone, the store and the spool files stay. */
  private async restart(): Promise<void> {
    const { w, host } = this;
    const { ledger, queue, sentSpends } = host;
    w.report.restarts++;
    host.kill();
    // The restart itself sees a healthy store (the admin thread retries its replay and the loads
    // until the store answers; the simulated restart does not advance time).
    w.faulty.enabled = false;
    const now = host.now();
    for (const s of sentSpends.values()) {
      if (!ledger.crashed(s, w.faulty.has(host.campaignId, s.eventId))) continue;
      w.report.resentAfterRestart++;
      queue.push({ kind: 'spend', t: now + restartResendDelayMs, seq: queue.nextSeq(), requestId: s.requestId, eventId: s.eventId, amount: s.amount, resent: true });
    }
    sentSpends.clear();
    // As the admin thread does at startup: spools of earlier lives reach the store before any load.
    await replayLeftovers(w.files.list(), (b) => w.faulty.apply(b), w.files);
    const campaign = await host.startNextLife();
    const snapshot = await w.faulty.backing.load(host.campaignId, campaign.day.bounds.key, null);
    ledger.restarted(snapshot.reservations, now);
    host.replanSweeps();
    w.faulty.enabled = true;
  }

  /**
   * The store restarts and loses its last lossWindowMs of writes. It happens at a moment when
   * every acknowledged event is in the store (no spend in flight, nothing spooled), just after a
   * write was acknowledged (so that there is a loss to measure): what the auditor finds missing
   * afterwards is exactly what the restart lost.
   */
  private async storeLoss(): Promise<void> {
    const { w, host } = this;
    const { ledger } = host;
    const now = host.now();
    const windowAcknowledged = ledger.acknowledgedSince(now - this.plan.lossWindowMs);
    if (windowAcknowledged === 0) {
      this.lossAwaitsAck = true;
      return;
    }
    if (host.sentSpends.size > 0 || host.resilient().spooling) {
      this.push(now + storeLossRetryMs, 'storeLoss');
      return;
    }
    const holds = (eventId: string): boolean => w.faulty.has(host.campaignId, eventId);
    const before = ledger.missingAcknowledged(holds);
    if (before.events > 0) ledger.fail(`${before.events} acknowledged events (${before.micros} micros) missing from the store`, now);
    const settledBefore = this.storedTotal();
    const lost = await w.faulty.restartLosingLastWrites(now);
    const missing = ledger.missingAcknowledged(holds);
    const counted = ledger.storeLost(lost);
    if (counted.micros !== missing.micros) ledger.fail(`the store lost ${counted.micros} acknowledged micros, the auditor finds ${missing.micros} missing`, now);
    if (missing.micros > windowAcknowledged) {
      ledger.fail(`the store lost ${missing.micros} acknowledged micros, more than the ${windowAcknowledged} of its last ${this.plan.lossWindowMs} ms`, now);
    }
    w.report.storeRestarts++;
    w.report.lostAcknowledgedMicros += missing.micros;
    w.report.lostAcknowledgedEvents += missing.events;
    w.report.storeSettledDropMicros += settledBefore - this.storedTotal();
    w.report.windowAcknowledgedMicros += windowAcknowledged;
  }

  private storedTotal(): number {
    let sum = 0;
    for (const key of this.host.ledger.days.keys()) sum += this.w.faulty.backing.settledOf(this.host.campaignId, key);
    return sum;
  }

  /**
   * Past the day's end the faults stop; only the timers run (deadlines, late replies, the spool's
   * probe) until every spend is answered and the spool is replayed, so the final audit is exact.
   * check runs after each timer (it rethrows an audit failure raised in a callback).
   */
  async drain(check: () => void): Promise<void> {
    const { w, host } = this;
    w.faulty.enabled = false;
    w.faulty.down = false;
    while (host.sentSpends.size > 0 || host.resilient().spooling) {
      const e = host.queue.pop();
      if (e === undefined) break;
      if (e.kind !== 'timer' || e.cancelled) continue;
      host.advanceTo(e.t);
      e.fn();
      await settle();
      check();
    }
  }

  /** After the final audit: every acknowledged event is in the store; the counts go to the report. */
  finish(): void {
    const { w, host } = this;
    const missing = host.ledger.missingAcknowledged((eventId) => w.faulty.has(host.campaignId, eventId));
    if (missing.events > 0) host.ledger.fail(`${missing.events} acknowledged events (${missing.micros} micros) missing from the store at the end`, host.now());
    Object.assign(w.report, w.faulty.counts);
  }
}
