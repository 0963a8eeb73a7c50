import type { CampaignRecord } from './campaign-schema.js';

/**
 * Where campaign configuration lives (PostgreSQL, the embedded database, or memory). The admin
 * thread is its only user; the hot path never waits on it.
 */
export interface ConfigStore {
  readonly kind: string;
  loadCampaigns(): Promise<CampaignRecord[]>;
  /** Stores a campaign; records the budget change in the audit trail when the budget moved. */
  saveCampaign(record: CampaignRecord, previous: CampaignRecord | null, actor: string): Promise<void>;
  close(): Promise<void>;
}

/** Configuration in memory: for PACER_STORE=memory only; lost on restart. */
export class MemoryConfigStore implements ConfigStore {
  readonly kind = 'memory';
  private readonly campaigns = new Map<string, CampaignRecord>();

  async loadCampaigns(): Promise<CampaignRecord[]> {
    return [...this.campaigns.values()];
  }

  async saveCampaign(record: CampaignRecord): Promise<void> {
    this.campaigns.set(record.config.id, record);
  }

  async close(): Promise<void> {}
}
