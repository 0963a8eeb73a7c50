import { limits } from '../../shards/limits.js';
import type { ShadowSummary } from '../../shards/shard.js';
import type { CampaignSnapshot, CounterStore, FlushBatch, FlushOutcome, StoredReservation } from '../../shards/ports.js';
import type { CampaignRecord } from '../model/campaign.js';
import { CampaignTable } from '../model/table.js';
import {
  type BreakerRow,
  type NewBudgetChange,
  type BudgetChange,
  budgetChangesOf,
  type ConfigStore,
  mergeShadow,
  type MinuteRow,
  type SaveItem,
  type StoredProfile,
} from './config-store.js';

const dayMs = 86_400_000;
/** Event IDs are remembered for three UTC-day buckets: at least 48 hours. */
const dedupeBuckets = 3;
/**
 * Outcomes of applied batches are kept to answer a retried batch ID the same; retries come within
 * seconds (the flusher's backoff tops out at one), so the most recent thousands are plenty and
 * memory stays bounded over a long run.
 */
const batchOutcomesKept = 10_000;

/** ',' before every campaign's flags, so that no campaigns ('') and one without events (',') differ. */
function outcomeText(outcome: FlushOutcome): string {
  const parts: string[] = [];
  for (const flags of outcome) {
    parts.push(',');
    for (const f of flags) parts.push(f ? '1' : '0');
  }
  // join makes one flat string (+= would keep a tree of pieces, larger than the array it replaces).
  return parts.join('');
}

function outcomeFromText(text: string): FlushOutcome {
  if (text === '') return [];
  return text.slice(1).split(',').map((part) => Array.from(part, (ch) => ch === '1'));
}

/**
 * Counters in process memory: the store of the simulator, of unit tests and of PACER_STORE=memory.
 * It has the semantics of the durable stores (a batch applied at most once, event IDs deduplicated
 * for at least 48 hours, reservations kept with their expiry) and none of their durability.
 */
export class MemoryStore implements CounterStore {
  readonly kind = 'memory';
  /**
   * Kept as text, one character per event ('1' applied, '0' a duplicate) after a comma for each
   * campaign (outcomeText): an array per campaign of every kept batch held about
   * 180 bytes per campaign of a flush (a million campaigns after one spend each: 180 MB).
   */
  private readonly batches = new Map<string, string>();
  /**
   * The kept batch IDs in the order they were applied (a ring of batchOutcomesKept): the oldest is
   * evicted from here, not from the Map's key order, whose first live key V8 finds only by
   * skipping every entry deleted before it (the simulator's profile: a quarter of its time).
   */
  private readonly batchRing: string[] = [];
  private batchRingNext = 0;
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
    if (done !== undefined) return outcomeFromText(done);
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
      // A campaign without live reservations keeps no map (most have none once settled).
      if (res.size === 0) this.reservations.delete(d.campaignId);
    }
    this.forgetOldestEvents();
    this.batches.set(batch.batchId, outcomeText(outcome));
    if (this.batchRing.length < batchOutcomesKept) this.batchRing.push(batch.batchId);
    else {
      this.batches.delete(this.batchRing[this.batchRingNext]!);
      this.batchRing[this.batchRingNext] = batch.batchId;
      this.batchRingNext = (this.batchRingNext + 1) % batchOutcomesKept;
    }
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

  /** The live reservation IDs of a campaign (the lease script's view of P:{c}:res, src/sim/lease-store.ts). */
  reservationsOf(campaignId: string): Iterable<string> {
    return this.reservations.get(campaignId)?.keys() ?? [];
  }

  async close(): Promise<void> {}
}

/**
 * Configuration in memory: for PACER_STORE=memory only; lost on restart. It is the store of record
 * for the admin's catalogue, which it lends its table of campaigns (src/model/table.ts: columns and
 * shared settings), so the thread keeps each campaign once, not a copy in the store and another in
 * the catalogue; the audit trail is kept as columns (AuditLog below), not as an object and an
 * array per campaign.
 */
export class MemoryConfigStore implements ConfigStore {
  readonly kind = 'memory';
  /** Lent to the admin's catalogue (ConfigStore.table): one copy of every campaign in the thread. */
  readonly table = new CampaignTable();
  private readonly campaigns = this.table;
  private readonly changes = new AuditLog();
  private readonly minutes = new MinuteLog(this.table);
  private breakers: BreakerRow[] = [];
  private readonly profiles = new Map<string, StoredProfile>();

  async loadCampaigns(): Promise<CampaignRecord[]> {
    return [...this.campaigns.values()];
  }

  async saveCampaign(record: CampaignRecord, previous: CampaignRecord | null, actor: string, reason: string | null = null): Promise<boolean> {
    const stored = this.campaigns.versionOf(record.config.id);
    if ((stored ?? null) !== (previous?.config.version ?? null)) return false;
    this.campaigns.set(record);
    for (const c of budgetChangesOf(record, previous, actor, reason)) this.changes.add(this.campaigns.slotOf(record.config.id)!, c);
    return true;
  }

  async saveCampaigns(items: readonly SaveItem[], actor: string): Promise<boolean[]> {
    const out: boolean[] = [];
    for (const { record, previous } of items) out.push(await this.saveCampaign(record, previous, actor));
    return out;
  }

  async budgetChanges(campaignId: string, afterId = 0, limit = Number.MAX_SAFE_INTEGER): Promise<BudgetChange[]> {
    const slot = this.campaigns.slotOf(campaignId);
    return slot === undefined ? [] : this.changes.of(slot, afterId, limit);
  }

  async writeHistory(minutes: MinuteRow[], breakers: BreakerRow[]): Promise<void> {
    for (const m of minutes) this.minutes.add(m);
    this.breakers.push(...breakers);
  }

  async history(campaignId: string, fromMs: number, toMs: number): Promise<{ minutes: MinuteRow[]; breakers: BreakerRow[] }> {
    const minutes = this.minutes.of(campaignId, fromMs, toMs);
    const breakers = this.breakers.filter((b) => b.campaignId === campaignId && b.atMs >= fromMs && b.atMs < toMs);
    return { minutes, breakers };
  }

  async prune(retentionDays: number, nowMs: number): Promise<void> {
    const cutoff = nowMs - retentionDays * 86_400_000;
    this.minutes.prune(cutoff);
    this.breakers = this.breakers.filter((b) => b.atMs >= cutoff);
  }

  async saveProfiles(profiles: readonly StoredProfile[]): Promise<void> {
    for (const p of profiles) this.profiles.set(p.campaignId, { ...p, density: [...p.density] });
  }

  async loadProfiles(campaignIds?: readonly string[]): Promise<StoredProfile[]> {
    const all = [...this.profiles.values()];
    return campaignIds === undefined ? all : all.filter((p) => campaignIds.includes(p.campaignId));
  }

  async ping(): Promise<void> {}

  /** One process, no other instance to tell. */
  async noteBreakerReset(): Promise<void> {}

  async close(): Promise<void> {}
}

/**
 * The memory store's audit trail as columns: a row per budget change (its ID is its row + 1, in the
 * order the changes were made), each row pointing at the campaign's previous one, and the last
 * row of every campaign by the campaign's slot in the store's table. About 60 bytes a change where
 * an object in an array per campaign took about 300.
 */
class AuditLog {
  private rows = 0;
  private at: Float64Array = new Float64Array(0);
  /** NaN: null. */
  private oldMicros: Float64Array = new Float64Array(0);
  private newMicros: Float64Array = new Float64Array(0);
  private version: Float64Array = new Float64Array(0);
  /** 1: lifetime, 0: daily. */
  private lifetime: Uint8Array = new Uint8Array(0);
  /** The campaign's previous row, -1 for none. */
  private prev: Int32Array = new Int32Array(0);
  private readonly actors: string[] = [];
  private readonly reasons: (string | null)[] = [];
  /** `at` texts that epoch ms would not give back exactly, by row. */
  private readonly oddAt = new Map<number, string>();
  /** The last row of each campaign by its slot, -1 for none. */
  private last: Int32Array = new Int32Array(0);
  private readonly actorStrings = new Map<string, string>();

  add(slot: number, c: NewBudgetChange): void {
    const r = this.rows++;
    if (r >= this.at.length) {
      const n = Math.max(64, Math.ceil(this.at.length * 1.5));
      this.at = grow(this.at, n, Float64Array);
      this.oldMicros = grow(this.oldMicros, n, Float64Array);
      this.newMicros = grow(this.newMicros, n, Float64Array);
      this.version = grow(this.version, n, Float64Array);
      this.lifetime = grow(this.lifetime, n, Uint8Array);
      this.prev = grow(this.prev, n, Int32Array);
    }
    if (slot >= this.last.length) this.last = grow(this.last, Math.max(64, Math.ceil(this.last.length * 1.5), slot + 1), Int32Array, -1);
    const ms = Date.parse(c.at);
    if (!Number.isNaN(ms) && new Date(ms).toISOString() === c.at) this.at[r] = ms;
    else {
      this.at[r] = NaN;
      this.oddAt.set(r, c.at);
    }
    this.oldMicros[r] = c.oldMicros ?? NaN;
    this.newMicros[r] = c.newMicros ?? NaN;
    this.version[r] = c.version;
    this.lifetime[r] = c.budget === 'lifetime' ? 1 : 0;
    let actor = this.actorStrings.get(c.actor);
    if (actor === undefined) {
      actor = c.actor;
      if (this.actorStrings.size < 10_000) this.actorStrings.set(actor, actor);
    }
    this.actors.push(actor);
    this.reasons.push(c.reason);
    this.prev[r] = this.last[slot]!;
    this.last[slot] = r;
  }

  /** A campaign's changes with id > afterId, oldest first, at most limit. */
  of(slot: number, afterId: number, limit: number): BudgetChange[] {
    const rows: number[] = [];
    for (let r = slot < this.last.length ? this.last[slot]! : -1; r >= 0 && r + 1 > afterId; r = this.prev[r]!) rows.push(r);
    rows.reverse();
    if (rows.length > limit) rows.length = limit;
    return rows.map((r) => {
      const old = this.oldMicros[r]!;
      const now = this.newMicros[r]!;
      return {
        id: r + 1,
        at: this.oddAt.get(r) ?? new Date(this.at[r]!).toISOString(),
        budget: this.lifetime[r] === 1 ? 'lifetime' : 'daily',
        oldMicros: Number.isNaN(old) ? null : old,
        newMicros: Number.isNaN(now) ? null : now,
        actor: this.actors[r]!,
        reason: this.reasons[r]!,
        version: this.version[r]!,
      };
    });
  }
}

type Column = Float64Array | Uint8Array | Int32Array;

function grow<A extends Column>(a: A, n: number, make: new (n: number) => A, fill = 0): A {
  const b = new make(n);
  if (fill !== 0) b.fill(fill);
  b.set(a);
  return b;
}

/** The numbers of a minute row, one Float64Array column each (MinuteLog). */
const minuteColumns = ['minuteMs', 'decisions', 'allowed', 'denied', 'spendEvents', 'settledMicros', 'duplicateEvents', 'unmatchedEvents', 'expiredReservations', 'budgetMicros', 'throttle'] as const;
/** Summed when two rows of the same campaign and minute meet (mergeMinute); the others: the later row's. */
const summedColumns = new Set<string>(['decisions', 'allowed', 'denied', 'spendEvents', 'settledMicros', 'duplicateEvents', 'unmatchedEvents', 'expiredReservations']);

/**
 * The memory store's minute rows of history as columns: the numbers in Float64Array columns, the
 * day and breaker state as shared strings, the denials by reason and the shadow's figures only
 * where a row has them. Each campaign's rows form a chain from its latest minute back (kept in
 * minute order, so a range is a short walk and a new minute is linked at the head), reached by
 * the campaign's slot in the store's table (a Map for campaigns the table does not hold). About
 * 130 bytes a row where an object, its denials object and its Map key took about 450, and a
 * campaign's history no longer scans every row of every campaign.
 */
class MinuteLog {
  private rows = 0;
  private cols: Float64Array[] = minuteColumns.map(() => new Float64Array(0));
  /** The campaign's row of the minute before, -1 for none. */
  private prev: Int32Array = new Int32Array(0);
  private days: string[] = [];
  private states: string[] = [];
  private extras: (MinuteExtra | undefined)[] = [];
  /** The latest row of each campaign by its slot in the table, -1 for none. */
  private last: Int32Array = new Int32Array(0);
  private readonly lastOther = new Map<string, number>();
  private readonly strings = new Map<string, string>();

  constructor(private readonly table: CampaignTable) {}

  private head(campaignId: string): number {
    const slot = this.table.slotOf(campaignId);
    if (slot !== undefined && this.lastOther.size > 0 && this.lastOther.has(campaignId)) {
      // History written before the campaign was stored: its chain moves to the slot.
      this.setHead(campaignId, this.lastOther.get(campaignId)!);
      this.lastOther.delete(campaignId);
    }
    if (slot === undefined) return this.lastOther.get(campaignId) ?? -1;
    return slot < this.last.length ? this.last[slot]! : -1;
  }

  private setHead(campaignId: string, row: number): void {
    const slot = this.table.slotOf(campaignId);
    if (slot === undefined) {
      this.lastOther.set(campaignId, row);
      return;
    }
    if (slot >= this.last.length) this.last = grow(this.last, Math.max(64, Math.ceil(this.last.length * 1.5), slot + 1), Int32Array, -1);
    this.last[slot] = row;
  }

  private string(s: string): string {
    const known = this.strings.get(s);
    if (known !== undefined) return known;
    if (this.strings.size < 10_000) this.strings.set(s, s);
    return s;
  }

  /** Adds a row, summing it into the campaign's row of the same minute when there is one (mergeMinute's rule). */
  add(m: MinuteRow): void {
    const t = m.minuteMs;
    const head = this.head(m.campaignId);
    // Walk back from the latest minute to the first not after t (minutes come in order: one step).
    let after = -1;
    let r = head;
    while (r >= 0 && this.cols[0]![r]! > t) {
      after = r;
      r = this.prev[r]!;
    }
    if (r >= 0 && this.cols[0]![r]! === t) {
      this.merge(r, m);
      return;
    }
    const row = this.rows++;
    if (row >= this.prev.length) {
      const n = Math.max(64, Math.ceil(this.prev.length * 1.5));
      this.cols = this.cols.map((c) => grow(c, n, Float64Array));
      this.prev = grow(this.prev, n, Int32Array);
    }
    minuteColumns.forEach((k, i) => (this.cols[i]![row] = m[k]));
    this.days.push(this.string(m.day));
    this.states.push(this.string(m.breakerState));
    this.extras.push(extraOf(m));
    this.prev[row] = r;
    if (after < 0) this.setHead(m.campaignId, row);
    else this.prev[after] = row;
  }

  private merge(r: number, m: MinuteRow): void {
    minuteColumns.forEach((k, i) => {
      if (summedColumns.has(k)) this.cols[i]![r]! += m[k];
      else if (k !== 'minuteMs') this.cols[i]![r] = m[k];
    });
    this.days[r] = this.string(m.day);
    this.states[r] = this.string(m.breakerState);
    const have = this.extras[r];
    const more = extraOf(m);
    if (more === undefined) return;
    if (have === undefined) return void (this.extras[r] = more);
    if (more.denied !== null) {
      if (have.denied === null) have.denied = more.denied;
      else for (const [k, v] of Object.entries(more.denied)) have.denied[k] = (have.denied[k] ?? 0) + v;
    }
    mergeShadow(have, more.shadow);
  }

  /** A campaign's rows of [fromMs, toMs), in minute order, as new objects. */
  of(campaignId: string, fromMs: number, toMs: number): MinuteRow[] {
    const out: MinuteRow[] = [];
    const c = this.cols;
    for (let r = this.head(campaignId); r >= 0 && c[0]![r]! >= fromMs; r = this.prev[r]!) {
      if (c[0]![r]! >= toMs) continue;
      const x = this.extras[r];
      const row: MinuteRow = {
        campaignId,
        minuteMs: c[0]![r]!,
        day: this.days[r]!,
        decisions: c[1]![r]!,
        allowed: c[2]![r]!,
        denied: c[3]![r]!,
        deniedByReason: x?.denied == null ? {} : { ...x.denied },
        spendEvents: c[4]![r]!,
        settledMicros: c[5]![r]!,
        duplicateEvents: c[6]![r]!,
        unmatchedEvents: c[7]![r]!,
        expiredReservations: c[8]![r]!,
        budgetMicros: c[9]![r]!,
        throttle: c[10]![r]!,
        breakerState: this.states[r]!,
      };
      if (x?.shadow !== undefined) row.shadow = { ...x.shadow, deniedByReason: { ...x.shadow.deniedByReason } };
      out.push(row);
    }
    return out.reverse();
  }

  /** Drops the rows of minutes before cutoff: the columns are rebuilt with the rows kept. */
  prune(cutoff: number): void {
    const keep: number[] = [];
    for (let r = 0; r < this.rows; r++) if (this.cols[0]![r]! >= cutoff) keep.push(r);
    if (keep.length === this.rows) return;
    const to = new Int32Array(this.rows).fill(-1);
    keep.forEach((r, i) => (to[r] = i));
    const n = Math.max(64, keep.length);
    this.cols = this.cols.map((c) => {
      const out = new Float64Array(n);
      keep.forEach((r, i) => (out[i] = c[r]!));
      return out;
    });
    const prev = new Int32Array(n);
    // A chain is in minute order: a kept row's previous row is kept or older than the cutoff.
    keep.forEach((r, i) => (prev[i] = this.prev[r]! < 0 ? -1 : to[this.prev[r]!]!));
    this.prev = prev;
    this.days = keep.map((r) => this.days[r]!);
    this.states = keep.map((r) => this.states[r]!);
    this.extras = keep.map((r) => this.extras[r]);
    this.rows = keep.length;
    for (let s = 0; s < this.last.length; s++) if (this.last[s]! >= 0) this.last[s] = to[this.last[s]!]!;
    for (const [id, r] of this.lastOther) {
      if (to[r]! < 0) this.lastOther.delete(id);
      else this.lastOther.set(id, to[r]!);
    }
  }
}

/** What a minute row has beyond its numbers: kept only when it has it. */
interface MinuteExtra {
  denied: Record<string, number> | null;
  shadow: ShadowSummary | undefined;
}

function extraOf(m: MinuteRow): MinuteExtra | undefined {
  const denied = Object.keys(m.deniedByReason).length > 0 ? { ...m.deniedByReason } : null;
  const shadow = m.shadow === undefined ? undefined : { ...m.shadow, deniedByReason: { ...m.shadow.deniedByReason } };
  return denied === null && shadow === undefined ? undefined : { denied, shadow };
}
