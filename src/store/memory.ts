import { limits } from '../../shards/limits.js';
import type { CampaignSnapshot, CounterStore, FlushBatch, FlushOutcome, StoredReservation } from '../../shards/ports.js';

const dayMs = 86_400_000;
/** Event IDs are remembered for three UTC-day buckets: at least 48 hours. */
const dedupeBuckets = 3;
/**
 * Outcomes of applied batches are kept to answer a retried batch ID the same; retries come within
 * seconds (the flusher's backoff tops out at one), so the most recent thousands are plenty and
 * memory stays bounded over a long run.
 */
const batchOutcomesKept = 10_000;

/**
 * Counters in process memory: the store of the simulator, of unit tests and of PACER_STORE=memory.
 * It has the semantics of the durable stores (a batch applied at most once, event IDs deduplicated
 * for at least 48 hours, reservations kept with their expiry) and none of their durability.
 */
export class MemoryStore implements CounterStore {
  readonly kind = 'memory';
  private readonly batches = new Map<string, FlushOutcome>();
  private readonly settled = new Map<string, number>();
  private readonly reservations = new Map<string, Map<string, StoredReservation>>();
  private readonly events = new Map<number, Set<string>>();
  private eventCount = 0;

  constructor(private readonly eventIdsMax: number = limits.memoryStoreEventIdsMax) {}

  /** Past eventIdsMax the oldest event IDs are forgotten: memory stays bounded (docs/storage.md). */
  private forgetOldestEvents(): void {
    for (const set of this.events.values()) {
      for (const key of set) {
        if (this.eventCount <= this.eventIdsMax) return;
        set.delete(key);
        this.eventCount--;
      }
    }
  }

  async apply(batch: FlushBatch): Promise<FlushOutcome> {
    return this.applySync(batch);
  }

  applySync(batch: FlushBatch): FlushOutcome {
    const done = this.batches.get(batch.batchId);
    if (done !== undefined) return done;
    const bucket = Math.floor(batch.atMs / dayMs);
    for (const [b, set] of this.events) {
      if (b > bucket - dedupeBuckets) continue;
      this.eventCount -= set.size;
      this.events.delete(b);
    }
    let today = this.events.get(bucket);
    if (today === undefined) this.events.set(bucket, (today = new Set()));
    const outcome: FlushOutcome = [];
    for (const d of batch.campaigns) {
      let res = this.reservations.get(d.campaignId);
      if (res === undefined) this.reservations.set(d.campaignId, (res = new Map()));
      for (const r of d.reservationsAdded) res.set(r.requestId, r);
      for (const id of d.reservationsRemoved) res.delete(id);
      const flags: boolean[] = [];
      const dayKey = `${d.campaignId}\n${d.day}`;
      for (const e of d.events) {
        const key = `${d.campaignId}\n${e.eventId}`;
        let seen = false;
        for (const set of this.events.values()) {
          if (set.has(key)) {
            seen = true;
            break;
          }
        }
        // A duplicate changes nothing, not even the reservation it names.
        if (seen) {
          flags.push(false);
          continue;
        }
        if (e.requestId !== '') res.delete(e.requestId);
        today.add(key);
        this.eventCount++;
        this.settled.set(dayKey, (this.settled.get(dayKey) ?? 0) + e.amountMicros);
        flags.push(true);
      }
      outcome.push(flags);
    }
    this.forgetOldestEvents();
    this.batches.set(batch.batchId, outcome);
    if (this.batches.size > batchOutcomesKept) this.batches.delete(this.batches.keys().next().value!);
    return outcome;
  }

  async load(campaignId: string, day: string, flightStartDay: string | null): Promise<CampaignSnapshot> {
    let lifetime = 0;
    if (flightStartDay !== null) {
      for (const [key, v] of this.settled) {
        const [id, d] = key.split('\n') as [string, string];
        if (id === campaignId && d >= flightStartDay && d < day) lifetime += v;
      }
    }
    return {
      settledMicros: this.settled.get(`${campaignId}\n${day}`) ?? 0,
      lifetimeSettledMicros: lifetime,
      reservations: [...(this.reservations.get(campaignId)?.values() ?? [])],
    };
  }

  /** Settled spend of a campaign-day, for the simulator's auditor and tests. */
  settledOf(campaignId: string, day: string): number {
    return this.settled.get(`${campaignId}\n${day}`) ?? 0;
  }

  async close(): Promise<void> {}
}
