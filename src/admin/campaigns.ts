import { limits } from '../../shards/limits.js';
import type { CampaignConfig, CampaignStatus } from '../../shards/types.js';
import { shardOf } from '../hash.js';
import { ApiError } from '../http/errors.js';
import { type CampaignRecord, parseCampaign } from './campaign-schema.js';
import { log } from '../log.js';
import type { BreakerRow, BudgetChange, ConfigStore, MinuteRow } from './registry.js';
import type { ShardLinks } from './shards.js';

/**
 * The campaign service of the admin thread: the in-memory catalogue (loaded from the config store
 * at start), writes that go to the store first and then to the owning shard, and reads of live
 * status from the shard. Writes to one campaign are serialised so versions stay in order.
 */
export class Campaigns {
  private readonly records = new Map<string, CampaignRecord>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly retrying = new Set<string>();
  private closed = false;

  constructor(
    private readonly store: ConfigStore,
    private readonly links: ShardLinks,
    /** limits.campaignsMax, or PACER_CAMPAIGNS_MAX: the catalogue and the shards' state stay bounded. */
    private readonly campaignsMax: number = limits.campaignsMax,
  ) {}

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
  async start(): Promise<void> {
    const records = await this.store.loadCampaigns();
    for (const r of records) this.records.set(r.config.id, r);
    const queue = [...records];
    let warned = false;
    const worker = async (): Promise<void> => {
      for (let r = queue.pop(); r !== undefined; r = queue.pop()) {
        for (let attempt = 1; ; attempt++) {
          try {
            await this.push(r.config);
            break;
          } catch (err) {
            if (!warned) log('warn', 'a campaign could not be loaded on its shard; retrying', { campaignId: r.config.id, error: (err as Error).message });
            warned = true;
            await sleep(Math.min(100 * attempt, 1_000));
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(64, queue.length) }, worker));
    // Until now a shard answers an unknown campaign NOT_READY (it may be one not sent yet).
    await Promise.all(Array.from({ length: this.links.count }, (_, i) => this.links.request(i, { type: 'catalogueLoaded' })));
  }

  private push(config: CampaignConfig): Promise<CampaignStatus> {
    return this.links.request<CampaignStatus>(this.shard(config.id), { type: 'upsert', config });
  }

  get(id: string): CampaignRecord | undefined {
    return this.records.get(id);
  }

  list(): CampaignRecord[] {
    return [...this.records.values()].sort((a, b) => (a.config.id < b.config.id ? -1 : 1));
  }

  /** Creates or replaces a campaign; resolves once its shard runs the new configuration. */
  upsert(body: unknown, actor: string, pathId?: string): Promise<{ record: CampaignRecord; created: boolean; status: CampaignStatus }> {
    const id = typeof body === 'object' && body !== null && typeof (body as { id?: unknown }).id === 'string'
      ? (body as { id: string }).id
      : pathId;
    // Validate before taking the lock so a bad body is answered at once.
    parseCampaign(body, 1, pathId);
    return this.locked(id!, async () => {
      const previous = this.records.get(id!) ?? null;
      if (previous === null && this.records.size >= this.campaignsMax) {
        throw new ApiError('TOO_MANY_CAMPAIGNS', `this pacer holds ${this.records.size} campaigns, its limit (PACER_CAMPAIGNS_MAX); only existing campaigns can be changed`);
      }
      const config = parseCampaign(body, (previous?.config.version ?? 0) + 1, pathId);
      const now = new Date().toISOString();
      const record: CampaignRecord = { config, createdAt: previous?.createdAt ?? now, updatedAt: now };
      try {
        await this.store.saveCampaign(record, previous, actor);
      } catch (err) {
        throw new ApiError('STORE_UNAVAILABLE', `the configuration database refused the write: ${(err as Error).message}`);
      }
      this.records.set(config.id, record);
      let status: CampaignStatus;
      try {
        status = await this.push(config);
      } catch (err) {
        // Stored, but its shard could not load its counters (the counter store is down): the
        // shard gets it as soon as it can, and the client hears that it is not serving yet.
        this.retryPush(config.id);
        throw new ApiError('STORE_UNAVAILABLE', `campaign ${config.id} is saved but not serving yet: ${(err as Error).message}`);
      }
      return { record, created: previous === null, status };
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

  budgetChanges(id: string): Promise<BudgetChange[]> {
    if (!this.records.has(id)) throw new ApiError('UNKNOWN_CAMPAIGN', `no campaign ${JSON.stringify(id)}`);
    return this.store.budgetChanges(id).catch((err: unknown) => {
      throw new ApiError('STORE_UNAVAILABLE', `the configuration database did not answer: ${(err as Error).message}`);
    });
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
    if (!this.records.has(id)) throw new ApiError('UNKNOWN_CAMPAIGN', `no campaign ${JSON.stringify(id)}`);
    const s = await this.links.request<CampaignStatus | null>(this.shard(id), { type: 'resetBreaker', campaignId: id });
    if (s === null) throw new ApiError('NOT_READY', `campaign ${JSON.stringify(id)} is still loading on its shard`);
    return s;
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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
