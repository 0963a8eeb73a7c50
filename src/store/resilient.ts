import { BoundedSet } from '../../shards/bounded-set.js';
import type { CampaignSnapshot, CounterStore, FlushBatch, FlushOutcome, LoadRequest, Timers } from '../../shards/ports.js';
import { log } from '../log.js';
import { realTimers } from '../real-ports.js';
import { nodeSpoolFs, type SpoolFs, type SpoolRecord, SpoolWriter } from './spool.js';

/** A store call that did not answer in time. The call may still complete later: writes are idempotent. */
export class StoreTimeoutError extends Error {
  readonly code = 'PACER_ERR_STORE_TIMEOUT';
  constructor(what: string, ms: number) {
    super(`${what} did not answer within ${ms} ms`);
    this.name = 'StoreTimeoutError';
  }
}

/** The store is known to be down (or the spool still holds batches it has not received). */
export class StoreUnavailableError extends Error {
  readonly code = 'PACER_ERR_STORE_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

export class SpoolFullError extends Error {
  readonly code = 'PACER_ERR_SPOOL_FULL';
  constructor(bytes: number) {
    super(`the spool holds ${bytes} bytes, its limit: spend is not acknowledged until the store returns`);
    this.name = 'SpoolFullError';
  }
}

/** p, or a StoreTimeoutError once ms have passed on timers (the simulator passes its own). */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string, timers: Timers = realTimers): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cancel = timers.after(ms, () => reject(new StoreTimeoutError(what, ms)));
    p.then(
      (v) => {
        cancel();
        resolve(v);
      },
      (err: unknown) => {
        cancel();
        reject(err as Error);
      },
    );
  });
}

export interface ResilientOptions {
  label: string;
  callTimeoutMs: number;
  probeIntervalMs: number;
  spoolPath: string;
  spoolBytesMax: number;
  dedupeEventsMax: number;
  replayChunkBytes?: number;
  onDegraded(degraded: boolean, reason: string): void;
  /** Deadlines and the probe interval run on these (realTimers in production, virtual ones in the simulator). */
  timers: Timers;
  /** The spool's file IO (nodeSpoolFs in production, an in-memory file system in the simulator). */
  files?: SpoolFs;
  /** Where state changes are logged (default: the process log; the simulator counts them instead). */
  log?: typeof log;
}

/**
 * A counter store behind a deadline, a dependency breaker and a spool (docs/storage.md, "Redis
 * unavailable"). Two states:
 *
 * - direct (breaker closed): every batch goes to the store with a deadline. A failure or a
 *   timeout opens the breaker: the batch and every later one go to the spool.
 * - spooling (breaker open): apply() appends the batch to the spool file, syncs it and answers at
 *   once, so spend keeps being acknowledged; resends of events spooled in this outage are found
 *   duplicates through a bounded in-memory set. Every probeIntervalMs the replayer sends the
 *   oldest spooled batches to the store (the half-open probe); when it has replayed all of them it
 *   deletes the file and closes the breaker. load() fails fast while spooling: a campaign cannot
 *   be loaded correctly while some of its spend is only in the spool.
 *
 * Replay may find that an event the spool answered "applied" had reached the store before the
 * outage (a resend of an event stored earlier): the store counts it once, and onLateDuplicate
 * takes its amount back out of the shard's memory.
 */
export class ResilientCounterStore implements CounterStore {
  readonly kind: string;
  private state: 'direct' | 'spooling' = 'direct';
  private readonly spool: SpoolWriter;
  private replayOffset = 0;
  private appending = 0;
  private cancelReplay: (() => void) | null = null;
  private replaying = false;
  private closed = false;
  /** Event IDs spooled in this outage (campaignId + '\n' + eventId), the oldest forgotten past dedupeEventsMax. */
  private readonly spooled: BoundedSet<string>;
  private lastError = '';
  onLateDuplicate: (campaignId: string, day: string, amountMicros: number) => void = () => {};

  constructor(
    private readonly inner: CounterStore,
    private readonly options: ResilientOptions,
  ) {
    this.kind = inner.kind;
    this.spooled = new BoundedSet(options.dedupeEventsMax);
    this.spool = new SpoolWriter(options.spoolPath, options.files ?? nodeSpoolFs);
  }

  private log(...args: Parameters<typeof log>): void {
    (this.options.log ?? log)(...args);
  }

  get spooling(): boolean {
    return this.state === 'spooling';
  }

  /** Bytes in the spool file (pacer_spool_bytes): spend acknowledged and not yet replayed. */
  get spoolBytes(): number {
    return this.spool.size;
  }

  async apply(batch: FlushBatch): Promise<FlushOutcome> {
    if (this.state === 'direct') {
      try {
        return await this.deadline(this.inner.apply(batch), 'apply');
      } catch (err) {
        this.open(err);
      }
    }
    return this.toSpool(batch);
  }

  async load(campaignId: string, day: string, flightStartDay: string | null): Promise<CampaignSnapshot> {
    if (this.state === 'spooling') {
      throw new StoreUnavailableError(`${this.inner.kind} is unavailable (${this.lastError}); campaign ${campaignId} loads when it returns`);
    }
    return this.deadline(this.inner.load(campaignId, day, flightStartDay), 'load');
  }

  async loadMany(requests: readonly LoadRequest[]): Promise<(CampaignSnapshot | Error)[]> {
    if (this.state === 'spooling') {
      throw new StoreUnavailableError(`${this.inner.kind} is unavailable (${this.lastError}); campaigns load when it returns`);
    }
    if (this.inner.loadMany === undefined) {
      return Promise.all(requests.map((r) => this.load(r.campaignId, r.day, r.flightStartDay).catch((err: unknown) => err as Error)));
    }
    return this.deadline(this.inner.loadMany(requests), 'load');
  }

  private deadline<T>(p: Promise<T>, what: string): Promise<T> {
    return withDeadline(p, this.options.callTimeoutMs, `${this.inner.kind} ${what}`, this.options.timers);
  }

  private open(err: unknown): void {
    this.lastError = (err as Error).message;
    if (this.state === 'spooling') return;
    this.state = 'spooling';
    this.log('warn', 'counter store unavailable: spooling spend', { who: this.options.label, store: this.inner.kind, error: this.lastError });
    this.options.onDegraded(true, `${this.inner.kind} unavailable (${this.lastError}); spend acknowledged from the spool`);
    this.scheduleReplay();
  }

  private async toSpool(batch: FlushBatch): Promise<FlushOutcome> {
    if (this.spool.size >= this.options.spoolBytesMax) throw new SpoolFullError(this.spool.size);
    const outcome: FlushOutcome = [];
    const added: string[] = [];
    let answers = '';
    for (const d of batch.campaigns) {
      const flags: boolean[] = [];
      for (const e of d.events) {
        const key = d.campaignId + '\n' + e.eventId;
        const fresh = !this.spooled.has(key);
        if (fresh) {
          this.spooled.add(key);
          added.push(key);
        }
        flags.push(fresh);
        answers += fresh ? '1' : '0';
      }
      outcome.push(flags);
    }
    this.appending++;
    try {
      await this.spool.append({ b: batch, a: answers });
    } catch (err) {
      for (const k of added) this.spooled.delete(k);
      throw err;
    } finally {
      this.appending--;
    }
    // Bounded memory: past dedupeEventsMax the oldest event IDs are forgotten (BoundedSet). A resend
    // of one of those is then answered "applied" and corrected when the spool is replayed.
    return outcome;
  }

  private scheduleReplay(): void {
    if (this.cancelReplay !== null || this.closed) return;
    this.cancelReplay = this.options.timers.after(this.options.probeIntervalMs, () => {
      this.cancelReplay = null;
      void this.replay();
    });
  }

  /** Sends spooled batches to the store in order; closes the breaker when none is left. */
  private async replay(): Promise<void> {
    if (this.closed) return;
    if (this.replaying) {
      // The previous replay is still finishing (removing its file) while a new outage began.
      this.scheduleReplay();
      return;
    }
    this.replaying = true;
    try {
      for (;;) {
        const { records, ends } = await this.spool.read(this.replayOffset, this.options.replayChunkBytes ?? 1 << 20);
        if (records.length === 0) {
          if (this.appending > 0) {
            await new Promise<void>((r) => this.options.timers.after(0, r));
            continue;
          }
          // Everything spooled reached the store and no append is under way: close the breaker
          // now, synchronously, so the next batch goes to the store, not to a file being removed.
          // (The removal is queued behind any append anyway: SpoolWriter serialises its file work.)
          this.state = 'direct';
          this.replayOffset = 0;
          this.spooled.clear();
          this.log('info', 'counter store back: spool replayed', { who: this.options.label, store: this.inner.kind });
          this.options.onDegraded(false, '');
          await this.spool.remove();
          return;
        }
        // The offset advances past each record as soon as the store applied it, so a record is
        // never replayed twice by this process (its late-duplicate correction must apply once).
        for (let i = 0; i < records.length; i++) {
          await this.replayOne(records[i]!);
          this.replayOffset = ends[i]!;
        }
      }
    } catch (err) {
      this.lastError = (err as Error).message;
      this.scheduleReplay();
    } finally {
      this.replaying = false;
    }
  }

  private async replayOne(r: SpoolRecord): Promise<void> {
    const outcome = await this.deadline(this.inner.apply(r.b), 'replay');
    let k = 0;
    r.b.campaigns.forEach((d, di) => {
      d.events.forEach((e, ei) => {
        const answered = r.a.charCodeAt(k++) === 49;
        const stored = outcome[di]![ei]!;
        if (answered && !stored) this.onLateDuplicate(d.campaignId, d.day, e.amountMicros);
        else if (!answered && stored) {
          // Cannot happen while the spooled batch that first carried the event replays before
          // this one; if it does, memory undercounts by this amount until the next restart.
          this.log('error', 'spool answered duplicate but the store applied the event', { who: this.options.label, campaignId: d.campaignId, eventId: e.eventId });
        }
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.cancelReplay !== null) this.cancelReplay();
    this.cancelReplay = null;
    // A spool that still holds batches stays on disk: the next start replays it.
    await this.spool.close();
    await this.inner.close();
  }
}
