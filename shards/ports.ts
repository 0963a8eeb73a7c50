/**
 * The ports through which a shard touches the world. The shard code itself never reads a clock,
 * draws a random number, sets a timer or does IO: src/shard/host.ts plugs in the real ones, the
 * simulator plugs in a simulated clock, a seeded generator and an in-memory store.
 */
import type { BreakerTransition } from './pacing/breaker.js';

export interface Clock {
  now(): number;
}

export interface Timers {
  /** Calls fn once after delayMs; returns a cancel function. */
  after(delayMs: number, fn: () => void): () => void;
}

/** One spend event as the store applies it. */
export interface StoredEvent {
  eventId: string;
  amountMicros: number;
  /** Reservation settled by this event ('' when none): deleted with the event, atomically. */
  requestId: string;
  /**
   * The reservation is not this instance's (budget leases: a win notice sent to another instance
   * than the one that reserved): its holder may write it to the store after this event, so the
   * store remembers that it was settled (src/store/redis.ts, "settled elsewhere").
   */
  settlesElsewhere?: boolean;
}

export interface StoredReservation {
  requestId: string;
  amountMicros: number;
  expiresAtMs: number;
}

/** What one flush writes for one campaign. */
export interface CampaignDelta {
  campaignId: string;
  /** The campaign's local day the settled spend belongs to, 'YYYY-MM-DD'. */
  day: string;
  events: StoredEvent[];
  reservationsAdded: StoredReservation[];
  /** Released or expired reservations (settled ones leave through their event). */
  reservationsRemoved: string[];
}

export interface FlushBatch {
  /** Unique across restarts and instances; the store applies a batch at most once. */
  batchId: string;
  /** Wall-clock ms at which the batch was built (for dedupe buckets and TTLs). */
  atMs: number;
  campaigns: CampaignDelta[];
}

/** Per campaign of the batch, in order: for each event, true when applied, false when a duplicate. */
export type FlushOutcome = boolean[][];

export interface CampaignSnapshot {
  settledMicros: number;
  /** Settled spend of earlier days of a lifetime campaign's flight. */
  lifetimeSettledMicros: number;
  reservations: StoredReservation[];
}

/**
 * Where a shard's counters live: Redis, the embedded database, or memory. Every method may reject;
 * the shard then keeps the data pending and retries (src/shard/host.ts adds the spool for Redis).
 */
export interface CounterStore {
  readonly kind: string;
  apply(batch: FlushBatch): Promise<FlushOutcome>;
  load(campaignId: string, day: string, flightStartDay: string | null): Promise<CampaignSnapshot>;
  /**
   * Many loads in one round trip (startup: Shard.loadMany), where the store can: one answer per
   * request, in order, a snapshot or the error of that load. Stores without it are asked one by one.
   */
  loadMany?(requests: readonly LoadRequest[]): Promise<(CampaignSnapshot | Error)[]>;
  close(): Promise<void>;
}

export interface LoadRequest {
  campaignId: string;
  day: string;
  flightStartDay: string | null;
}

export type ShardEvent =
  | { type: 'breaker'; campaignId: string; transition: BreakerTransition }
  | { type: 'rollover'; campaignId: string; day: string; settledMicros: number; budgetMicros: number }
  | { type: 'fault'; message: string };

export interface ShardPorts {
  clock: Clock;
  /** Uniform in [0, 1), seeded. */
  random(): number;
  timers: Timers;
  store: CounterStore;
  /**
   * Results that complete later than their batch (spend acknowledgements after the flush), for the
   * router the operations came from (the origin handleOps was given; 0 with one router).
   */
  sendResults(results: ArrayBuffer, origin: number): void;
  emit(event: ShardEvent): void;
  /** Unique prefix of this shard's batch IDs (instance and shard, new on every start). */
  batchIdPrefix: string;
}
