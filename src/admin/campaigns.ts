import { ConfigInterner } from '../../shards/intern.js';
import { limits } from '../../shards/limits.js';
import type { BudgetFloor, BudgetOutcome } from '../../shards/shard.js';
import type { CampaignConfig, CampaignStatus } from '../../shards/types.js';
import { shardOf } from '../hash.js';
import { ApiError } from '../http/errors.js';
import { log } from '../log.js';
import { type CampaignRecord, campaignIdPattern, parseCampaign, patchCampaign } from '../model/campaign.js';
import { CampaignTable, type ListingFields } from '../model/table.js';
import type { BreakerRow, BudgetChange, ConfigStore, MinuteRow } from '../store/config-store.js';
import { limitOf, type ListPage, listPage, type ListQuery, SortedIds } from './catalogue.js';
import { applyBudgetOp, budgetOpOf, checkPreconditions, noPreconditions, type Preconditions } from './edits.js';
import type { ShardLinks } from './shards.js';

/**
 * The campaign service of the admin thread: the in-memory catalogue (loaded from the config store
 * at start), writes that go to the store first and then to the owning shard, and reads of live
 * status from the shard. Writes to one campaign are serialised so versions stay in order.
 */
export class Campaigns {
  /**
   * Every campaign's record as columns and shared settings (src/model/table.ts): about 150 bytes a
   * campaign with its ID and the sorted IDs, where a record object with its configuration took 375
   * (bench/README.md). get() and all() build records on demand. A store that keeps its campaigns in this thread (the memory store) lends its own
   * table, so the configuration is kept once: every record the catalogue sets, the store has just
   * stored (writes go to the store first), so setting it again changes nothing.
   */
  private readonly records: CampaignTable;
  /** Every campaign's ID (archived ones too), sorted: the listing's index. */
  private readonly ids = new SortedIds();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly retrying = new Set<string>();
  /**
   * Every record of the catalogue holds its configuration with the parts campaigns share (breaker,
   * schedule, zone and strategy strings) shared: the catalogue of a million campaigns holds their
   * IDs, names and numbers, not a million copies of the defaults.
   */
  private readonly interner = new ConfigInterner();
  private closed = false;
  /** Budget changes and archives, told to the live feed (src/admin/live.ts) once they are stored. */
  onLive: (change: LiveChange) => void = () => {};
  /** This instance's ID: breaker resets it records carry it, so it does not apply its own twice. */
  origin = '';

  constructor(
    private readonly store: ConfigStore,
    private readonly links: ShardLinks,
    /** limits.campaignsMax, or PACER_CAMPAIGNS_MAX: the catalogue and the shards' state stay bounded. */
    private readonly campaignsMax: number = limits.campaignsMax,
  ) {
    this.records = store.table ?? new CampaignTable();
  }

  /**
   * Runs once a new campaign's shard serves it, before the create is answered (the profile service
   * sends it the profile of campaigns like it: src/profile/service.ts). Its failure only logs.
   */
  onCreated: ((record: CampaignRecord) => Promise<void>) | null = null;

  get size(): number {
    return this.records.size;
  }

  private shard(id: string): number {
    return shardOf(id, this.links.count);
  }

  /**
   * Loads the catalogue and sends every campaign to its shard (startup). A shard loads a campaign's
   * counters from the counter store before it answers; while that store is down the push is retried
   * (and /readyz stays not ready): serving a campaign without its counters would forget money.
   */
  async start(): Promise<{ readMs: number; loadMs: number }> {
    const t0 = performance.now();
    // The loaded records go into the table and are dropped: the queues below hold IDs, and each
    // batch's configurations are built from the table when it is sent.
    const queues: string[][] = Array.from({ length: this.links.count }, () => []);
    {
      const records = await this.store.loadCampaigns();
      for (const r of records) this.records.set(r);
      this.ids.addMany(records.map((r) => r.config.id));
      for (const r of records) queues[this.shard(r.config.id)]!.push(r.config.id);
    }
    // Per shard, batches of limits.adminLoadBatchCampaigns, a few in flight; a batch's campaigns
    // whose counters could not be loaded (store down) go back on that shard's queue after a pause.
    const t1 = performance.now();
    let warned = false;
    const worker = async (shard: number): Promise<void> => {
      const queue = queues[shard]!;
      for (let attempt = 0; queue.length > 0;) {
        const batch = queue.splice(Math.max(0, queue.length - limits.adminLoadBatchCampaigns));
        const configs = batch.map((id) => this.records.get(id)!.config);
        let failed: readonly string[] = [];
        try {
          const ids = new Set(await this.links.request<string[]>(shard, { type: 'load', configs }, limits.adminLoadBatchTimeoutMs));
          if (ids.size > 0) failed = batch.filter((id) => ids.has(id));
        } catch (err) {
          failed = batch; // the shard did not answer in time: it may still be loading them; a resend is harmless
          if (!warned) log('warn', 'campaigns could not be loaded on their shard; retrying', { shard, error: (err as Error).message });
          warned = true;
        }
        if (failed.length === 0) {
          attempt = 0;
          continue;
        }
        if (!warned) log('warn', 'campaigns could not be loaded on their shard (counter store unavailable?); retrying', { shard, campaigns: failed.length });
        warned = true;
        queue.unshift(...failed);
        await sleep(Math.min(100 * ++attempt, 1_000));
      }
    };
    await Promise.all(queues.flatMap((_, shard) => Array.from({ length: limits.adminLoadBatchesInFlight }, () => worker(shard))));
    // Until now a shard answers an unknown campaign NOT_READY (it may be one not sent yet).
    await Promise.all(Array.from({ length: this.links.count }, (_, i) => this.links.request(i, { type: 'catalogueLoaded' })));
    return { readMs: Math.round(t1 - t0), loadMs: Math.round(performance.now() - t1) };
  }

  private push(config: CampaignConfig): Promise<CampaignStatus> {
    return this.links.request<CampaignStatus>(this.shard(config.id), { type: 'upsert', config });
  }

  /** A campaign's slot in the table (src/model/table.ts): a small integer, never reused. */
  slotOf(id: string): number | undefined {
    return this.records.slotOf(id);
  }

  get(id: string): CampaignRecord | undefined {
    return this.records.get(id);
  }

  /** Every campaign, in no particular order: for the fleet report. */
  all(): Iterable<CampaignRecord> {
    return this.records.values();
  }

  /** The campaigns whose listing fields pass keep, records built only for them: for the fleet report. */
  where(keep: (c: ListingFields) => boolean): Iterable<CampaignRecord> {
    return this.records.where(keep);
  }

  /** The IDs of the campaigns whose listing fields pass keep (no record built). */
  idsWhere(keep: (c: ListingFields) => boolean): string[] {
    return this.records.idsWhere(keep);
  }

  /** One page of the catalogue in ID order (see catalogue.ts). */
  list(query: ListQuery): ListPage {
    return listPage(this.ids, this.records, query);
  }

  /** Refuses one more campaign past campaignsMax (`pending` are new ones already accepted in this call). */
  private roomForOneMore(pending = 0): void {
    if (this.records.size + pending >= this.campaignsMax) {
      throw new ApiError('TOO_MANY_CAMPAIGNS', `this pacer holds ${this.records.size} campaigns, its limit (PACER_CAMPAIGNS_MAX); only existing campaigns can be changed`);
    }
  }

  private existing(id: string): CampaignRecord {
    const r = this.records.get(id);
    if (r === undefined) throw new ApiError('UNKNOWN_CAMPAIGN', `no campaign ${JSON.stringify(id)}`);
    return r;
  }

  /**
   * POST /v1/campaigns (pathId undefined) and PUT /v1/campaigns/:id: creates or replaces a campaign;
   * resolves once its shard runs the new configuration.
   */
  upsert(body: unknown, actor: string, pathId?: string, pre: Preconditions = noPreconditions): Promise<WriteResult> {
    // Validate before taking the lock so a bad body is answered at once.
    const id = parseCampaign(body, 1, pathId).id;
    return this.locked(id, async () => {
      const previous = this.records.get(id) ?? null;
      checkPreconditions(previous, pre, id);
      notArchived(previous);
      if (previous === null) this.roomForOneMore();
      return this.commit(this.next(parseCampaign(body, version(previous), pathId), previous), previous, actor);
    });
  }

  /** PATCH /v1/campaigns/:id with a JSON Merge Patch, validated in full after merging. */
  patch(id: string, patch: unknown, actor: string, pre: Preconditions): Promise<WriteResult> {
    this.existing(id);
    return this.locked(id, async () => {
      const previous = this.existing(id);
      checkPreconditions(previous, pre, id);
      notArchived(previous);
      return this.commit(this.next(patchCampaign(previous.config, patch, version(previous)), previous), previous, actor);
    });
  }

  /** DELETE /v1/campaigns/:id (archive: true) and POST …/restore (archive: false); idempotent. */
  setArchived(id: string, archive: boolean, actor: string, pre: Preconditions): Promise<WriteResult> {
    this.existing(id);
    return this.locked(id, async () => {
      const previous = this.existing(id);
      checkPreconditions(previous, pre, id);
      if ((previous.archivedAt !== null) === archive) {
        return { record: previous, created: false, status: await this.status(id).catch(() => null) };
      }
      const record = this.next({ ...previous.config, archived: archive, version: version(previous) }, previous);
      record.archivedAt = archive ? record.updatedAt : null;
      const out = await this.commit(record, previous, actor);
      this.onLive({ type: 'archive', campaignId: id, archived: archive, version: record.config.version, actor });
      return out;
    });
  }

  /**
   * POST /v1/campaigns/:id/budget. The owning shard checks the new budget against the money
   * committed today and applies it in one step, so the next decision sees it; then the store
   * records it with its audit row. Should the store refuse, the shard gets the old budget back.
   */
  budget(id: string, body: unknown, actor: string, pre: Preconditions): Promise<BudgetResult> {
    const op = budgetOpOf(body);
    this.existing(id);
    return this.locked(id, async () => {
      const previous = this.existing(id);
      checkPreconditions(previous, pre, id);
      notArchived(previous);
      const record = this.next(applyBudgetOp(previous.config, op, version(previous)), previous);
      const field = op.budget === 'daily' ? 'dailyBudgetMicros' : 'lifetimeBudgetMicros';
      const change = { budget: op.budget, oldMicros: previous.config[field], newMicros: record.config[field], actor, reason: op.reason };
      const floor = op.force ? null : op.budget;
      const outcome = await this.shardBudget(record.config, floor);
      if (!outcome.applied) {
        throw new ApiError(
          'BUDGET_BELOW_COMMITTED',
          `a ${op.budget} budget of ${change.newMicros} micros is below the ${outcome.committedMicros} micros already settled and reserved; send "force": true to lower it anyway`,
          { committedMicros: outcome.committedMicros, requestedMicros: change.newMicros },
        );
      }
      try {
        await this.save(record, previous, actor, op.reason);
      } catch (err) {
        await this.shardBudget(previous.config, null).catch(() => this.retryPush(id));
        throw err;
      }
      this.records.set(record);
      this.onLive({ type: 'budget', campaignId: id, version: record.config.version, ...change });
      return { record, created: false, status: outcome.status, change };
    });
  }

  private async shardBudget(config: CampaignConfig, floor: BudgetFloor): Promise<BudgetOutcome> {
    const outcome = await this.links.request<BudgetOutcome | null>(this.shard(config.id), { type: 'budget', config, floor });
    if (outcome === null) throw new ApiError('NOT_READY', `campaign ${JSON.stringify(config.id)} is still loading on its shard`);
    return outcome;
  }

  /** The record of the next version of a campaign. */
  private next(config: CampaignConfig, previous: CampaignRecord | null): CampaignRecord {
    const now = new Date().toISOString();
    return { config: this.interner.config(config), createdAt: previous?.createdAt ?? now, updatedAt: now, archivedAt: previous?.archivedAt ?? null };
  }

  /** Store first (compare-and-set on the version), then the catalogue, then the owning shard. */
  private async commit(record: CampaignRecord, previous: CampaignRecord | null, actor: string): Promise<WriteResult> {
    await this.save(record, previous, actor, null);
    this.catalogue(record);
    let status: CampaignStatus;
    try {
      status = await this.push(record.config);
    } catch (err) {
      // Stored, but its shard could not load its counters (the counter store is down): the
      // shard gets it as soon as it can, and the client hears that it is not serving yet.
      this.retryPush(record.config.id);
      throw new ApiError('STORE_UNAVAILABLE', `campaign ${record.config.id} is saved but not serving yet: ${(err as Error).message}`);
    }
    if (previous === null && this.onCreated !== null) {
      await this.onCreated(record).catch((err: unknown) => log('warn', 'the new campaign\'s starting profile was not sent', { campaignId: record.config.id, error: (err as Error).message }));
    }
    return { record, created: previous === null, status };
  }

  private async save(record: CampaignRecord, previous: CampaignRecord | null, actor: string, reason: string | null): Promise<void> {
    let saved: boolean;
    try {
      saved = await this.store.saveCampaign(record, previous, actor, reason);
    } catch (err) {
      throw new ApiError('STORE_UNAVAILABLE', `the configuration database refused the write: ${(err as Error).message}`);
    }
    if (!saved) throw anotherWriter(record.config.id);
  }

  private catalogue(record: CampaignRecord): void {
    // Not `records.has`: a lent table has the record already; adding a present ID changes nothing.
    this.ids.add(record.config.id);
    this.records.set(record);
  }

  /**
   * POST /v1/campaigns/bulk: creates or replaces up to bulkCampaignsMax campaigns, answering per item.
   * Valid items are stored in one transaction, then pushed to their shards in parallel.
   */
  async bulk(body: unknown, actor: string): Promise<BulkItem[]> {
    const items = bulkItemsOf(body);
    const results: BulkItem[] = new Array(items.length);
    const parsed = new Map<string, { index: number; body: unknown }>();
    items.forEach((item, index) => {
      try {
        const id = parseCampaign(item, 1).id;
        if (parsed.has(id)) throw new ApiError('INVALID_FIELD', `campaign ${id} appears twice in this call (first as item ${parsed.get(id)!.index})`);
        parsed.set(id, { index, body: item });
      } catch (err) {
        results[index] = bulkError(item, err);
      }
    });
    await this.lockedMany([...parsed.keys()], () => this.bulkLocked(parsed, actor, results));
    return results;
  }

  private async bulkLocked(parsed: Map<string, { index: number; body: unknown }>, actor: string, results: BulkItem[]): Promise<void> {
    const writes: { index: number; record: CampaignRecord; previous: CampaignRecord | null }[] = [];
    let creating = 0;
    for (const [id, { index, body }] of parsed) {
      const previous = this.records.get(id) ?? null;
      try {
        notArchived(previous);
        if (previous === null) this.roomForOneMore(creating);
        writes.push({ index, record: this.next(parseCampaign(body, version(previous)), previous), previous });
        if (previous === null) creating++;
      } catch (err) {
        results[index] = bulkError(body, err);
      }
    }
    let saved: boolean[];
    try {
      saved = await this.store.saveCampaigns(writes, actor);
    } catch (err) {
      const e = new ApiError('STORE_UNAVAILABLE', `the configuration database refused the write: ${(err as Error).message}`);
      for (const w of writes) results[w.index] = bulkError(w.record.config, e);
      return;
    }
    const fresh: string[] = [];
    const pushed: { w: (typeof writes)[number] }[] = [];
    writes.forEach((w, i) => {
      const id = w.record.config.id;
      if (!saved[i]) return void (results[w.index] = bulkError(w.record.config, anotherWriter(id)));
      if (w.previous === null) fresh.push(id);
      this.records.set(w.record);
      pushed.push({ w });
    });
    this.ids.addMany(fresh);
    // A bounded number in flight: a shard loads a new campaign's counters before it answers, and
    // a thousand loads queued at once would run past the control-request deadline.
    await inParallel(pushed, limits.adminPushConcurrency, async ({ w }) => {
      const id = w.record.config.id;
      try {
        await this.push(w.record.config);
        if (w.previous === null && this.onCreated !== null) {
          await this.onCreated(w.record).catch((err: unknown) => log('warn', 'the new campaign\'s starting profile was not sent', { campaignId: id, error: (err as Error).message }));
        }
        results[w.index] = { id, status: w.previous === null ? 201 : 200, version: w.record.config.version };
      } catch (err) {
        this.retryPush(id);
        results[w.index] = bulkError(w.record.config, new ApiError('STORE_UNAVAILABLE', `saved but not serving yet: ${(err as Error).message}`));
      }
    });
  }

  /** Pushes the latest configuration of a campaign until its shard accepts it. */
  private retryPush(id: string, attempt = 1): void {
    if (this.retrying.has(id) && attempt === 1) return;
    this.retrying.add(id);
    setTimeout(() => {
      const r = this.records.get(id);
      if (r === undefined || this.closed) {
        this.retrying.delete(id);
        return;
      }
      this.push(r.config).then(
        () => this.retrying.delete(id),
        () => this.retryPush(id, attempt + 1),
      );
    }, Math.min(200 * attempt, 2_000)).unref();
  }

  close(): void {
    this.closed = true;
  }

  /** One page of a campaign's budget audit trail, oldest first. */
  async budgetChanges(id: string, query: URLSearchParams): Promise<{ changes: BudgetChange[]; nextCursor: string | null }> {
    this.existing(id);
    const limit = limitOf(query);
    const cursor = query.get('cursor');
    const afterId = cursor === null || cursor === '' ? 0 : changeCursorOf(cursor);
    let changes: BudgetChange[];
    try {
      changes = await this.store.budgetChanges(id, afterId, limit + 1);
    } catch (err) {
      throw new ApiError('STORE_UNAVAILABLE', `the configuration database did not answer: ${(err as Error).message}`);
    }
    const more = changes.length > limit;
    if (more) changes.length = limit;
    return { changes, nextCursor: more ? Buffer.from(`b:${changes[limit - 1]!.id}`).toString('base64url') : null };
  }

  history(id: string, fromMs: number, toMs: number): Promise<{ minutes: MinuteRow[]; breakers: BreakerRow[] }> {
    if (!this.records.has(id)) throw new ApiError('UNKNOWN_CAMPAIGN', `no campaign ${JSON.stringify(id)}`);
    return this.store.history(id, fromMs, toMs).catch((err: unknown) => {
      throw new ApiError('STORE_UNAVAILABLE', `the configuration database did not answer: ${(err as Error).message}`);
    });
  }

  async status(id: string): Promise<CampaignStatus> {
    if (!this.records.has(id)) throw new ApiError('UNKNOWN_CAMPAIGN', `no campaign ${JSON.stringify(id)}`);
    const s = await this.links.request<CampaignStatus | null>(this.shard(id), { type: 'status', campaignId: id });
    if (s === null) throw new ApiError('NOT_READY', `campaign ${JSON.stringify(id)} is still loading on its shard`);
    return s;
  }

  async resetBreaker(id: string): Promise<CampaignStatus> {
    const s = await this.resetBreakerHere(id);
    // Every other instance sharing the database resets its own breaker too (src/store/config-feed.ts).
    await this.store.noteBreakerReset(id, this.origin).catch((err: unknown) => {
      log('warn', 'breaker reset applied here but not recorded for the other instances', { campaignId: id, error: (err as Error).message });
    });
    return s;
  }

  /** Resets the breaker on this instance's shard only (a reset another instance recorded). */
  async resetBreakerHere(id: string): Promise<CampaignStatus> {
    if (!this.records.has(id)) throw new ApiError('UNKNOWN_CAMPAIGN', `no campaign ${JSON.stringify(id)}`);
    const s = await this.links.request<CampaignStatus | null>(this.shard(id), { type: 'resetBreaker', campaignId: id });
    if (s === null) throw new ApiError('NOT_READY', `campaign ${JSON.stringify(id)} is still loading on its shard`);
    return s;
  }

  /** The version this instance holds of a campaign (0: none). */
  versionOf(id: string): number {
    return this.records.versionOf(id) ?? 0;
  }

  /**
   * Stored records another instance wrote (the configuration feed): each one newer than what this
   * instance holds goes into the catalogue and to its shard, as a local write would, under the
   * campaign's lock so that it cannot interleave with a local write. Older or equal versions
   * (this instance's own writes coming back) change nothing. A campaign created elsewhere is taken
   * even past campaignsMax: it is stored, and every instance must serve the same catalogue.
   */
  async applyStored(records: readonly CampaignRecord[]): Promise<number> {
    let applied = 0;
    await inParallel(records, limits.adminPushConcurrency, (record) =>
      this.locked(record.config.id, async () => {
        const id = record.config.id;
        const previous = this.records.get(id) ?? null;
        if (previous !== null && previous.config.version >= record.config.version) return;
        this.catalogue(record);
        applied++;
        try {
          await this.push(record.config);
        } catch {
          this.retryPush(id);
        }
        if (previous !== null && (previous.archivedAt !== null) !== (record.archivedAt !== null)) {
          this.onLive({ type: 'archive', campaignId: id, archived: record.archivedAt !== null, version: record.config.version, actor: remoteActor });
        }
        for (const budget of ['daily', 'lifetime'] as const) {
          const field = budget === 'daily' ? 'dailyBudgetMicros' : 'lifetimeBudgetMicros';
          if (previous === null || previous.config[field] === record.config[field]) continue;
          this.onLive({ type: 'budget', campaignId: id, version: record.config.version, budget, oldMicros: previous.config[field], newMicros: record.config[field], actor: remoteActor, reason: null });
        }
      }),
    );
    return applied;
  }

  /** Runs fn once every ID's earlier writes are done; later writes to any of them wait for it. */
  private lockedMany<T>(ids: string[], fn: () => Promise<T>): Promise<T> {
    const before = ids.map((id) => this.locks.get(id)).filter((p) => p !== undefined);
    const next = Promise.all(before).then(fn, fn);
    const tail = next.catch(() => undefined);
    for (const id of ids) this.locks.set(id, tail);
    void tail.then(() => {
      for (const id of ids) if (this.locks.get(id) === tail) this.locks.delete(id);
    });
    return next;
  }

  private locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(id, tail);
    void tail.then(() => {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    });
    return next;
  }
}

/** The actor the live feed names for a change that arrived from another instance. */
const remoteActor = 'another instance';

/** A stored change the live feed pushes at once. */
export type LiveChange =
  | { type: 'budget'; campaignId: string; version: number; budget: 'daily' | 'lifetime'; oldMicros: number | null; newMicros: number | null; actor: string; reason: string | null }
  | { type: 'archive'; campaignId: string; version: number; archived: boolean; actor: string };

export interface WriteResult {
  record: CampaignRecord;
  created: boolean;
  /** The shard's status after the write; null when the shard did not answer an idempotent no-op. */
  status: CampaignStatus | null;
}

export interface BudgetResult extends WriteResult {
  change: { budget: 'daily' | 'lifetime'; oldMicros: number | null; newMicros: number | null; actor: string; reason: string | null };
}

/** One answer of a bulk call: the item's status code, and its version or its error. */
export type BulkItem =
  | { id: string; status: 200 | 201; version: number }
  | { id: string | null; status: number; error: { code: string; message: string } };

function version(previous: CampaignRecord | null): number {
  return (previous?.config.version ?? 0) + 1;
}

function notArchived(r: CampaignRecord | null): void {
  if (r !== null && r.archivedAt !== null) {
    throw new ApiError('CAMPAIGN_ARCHIVED', `campaign ${r.config.id} is archived: POST /v1/campaigns/${r.config.id}/restore first`);
  }
}

function anotherWriter(id: string): ApiError {
  return new ApiError('CONFLICT', `campaign ${id} was changed in the configuration database by another writer; nothing was changed here`);
}

function bulkItemsOf(body: unknown): unknown[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('INVALID_BODY', 'expected {"campaigns": [...]}');
  const keys = Object.keys(body);
  if (keys.some((k) => k !== 'campaigns')) throw new ApiError('UNKNOWN_FIELD', 'expected only the field campaigns');
  const items = (body as { campaigns?: unknown }).campaigns;
  if (items === undefined) throw new ApiError('MISSING_FIELD', 'campaigns is required');
  if (!Array.isArray(items)) throw new ApiError('INVALID_FIELD', 'campaigns must be an array');
  if (items.length === 0) throw new ApiError('EMPTY_BATCH', 'campaigns must not be empty');
  if (items.length > limits.bulkCampaignsMax) {
    throw new ApiError('BATCH_TOO_LARGE', `campaigns holds ${items.length} items; the limit is ${limits.bulkCampaignsMax}`);
  }
  return items;
}

function bulkError(item: unknown, err: unknown): BulkItem {
  const id = typeof item === 'object' && item !== null && typeof (item as { id?: unknown }).id === 'string' ? (item as { id: string }).id : null;
  const e = err instanceof ApiError ? err : new ApiError('INTERNAL', err instanceof Error ? err.message : String(err));
  return { id: id !== null && campaignIdPattern.test(id) ? id : null, status: e.status, error: { code: e.code, message: e.message } };
}

function changeCursorOf(cursor: string): number {
  const text = /^[A-Za-z0-9_-]{1,40}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const n = /^b:\d{1,15}$/.test(text) ? Number(text.slice(2)) : NaN;
  if (!Number.isSafeInteger(n)) throw new ApiError('INVALID_FIELD', 'cursor is not one this API gave out');
  return n;
}

/** Runs fn over items with at most `width` calls in flight. */
async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
