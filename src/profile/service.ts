import { Piscina } from 'piscina';
import type { FittedProfile } from '../../shards/pacing/profile.js';
import { dayBounds } from '../../shards/time/zone.js';
import { shardOf } from '../hash.js';
import { log } from '../log.js';
import type { CampaignRecord } from '../model/campaign.js';
import { type ConfigStore, globalProfileId, type StoredProfile } from '../store/config-store.js';
import { fitGlobalProfile, fitRangeMs } from './fit.js';
import type { FitJob } from './task.js';

/** What the service needs of the admin thread: the catalogue and the shards' links. */
export interface ProfileHost {
  get(id: string): CampaignRecord | undefined;
  all(): Iterable<CampaignRecord>;
  readonly shardCount: number;
  send(shard: number, profiles: { campaignId: string; profile: FittedProfile }[], global: FittedProfile | null): Promise<number>;
}

export interface ProfileOptions {
  halfLifeDays: number;
  historyRetentionDays: number;
  /** The history reaches the database this long after a minute ends: a midnight fit waits for it. */
  historyLagMs: number;
}

type Fitted = (FittedProfile & { hoursUsed: number }) | null;

const apiWeekdays = ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'] as const;

/** A stored profile as the admin API shows it: opportunities per minute by weekday, Monday first. */
export function profileToApi(p: StoredProfile): Record<string, unknown> {
  const days: Record<string, (number | null)[]> = {};
  apiWeekdays.forEach((name, i) => {
    const weekday = (i + 1) % 7; // shards count weekdays from Sunday
    days[name] = p.density.slice(weekday * 24, weekday * 24 + 24).map((d) => (d === null ? null : d * 60_000));
  });
  return { campaignId: p.campaignId, fittedAt: new Date(p.fittedAtMs).toISOString(), halfLifeDays: p.halfLifeDays, hoursUsed: p.hoursUsed, unit: 'opportunitiesPerMinute', days };
}

/**
 * Durable traffic profiles (ARCHITECTURE.md, "Durable traffic profiles"). The admin thread fits
 * each campaign's profile from its stored minute history, on a piscina pool so that the fit never
 * holds up the admin's event loop, at the campaign's local midnight (once the day's last minutes
 * are written) and on demand; it keeps the result in the database (migrations/0006_profiles.sql) and sends it to
 * the campaign's shard, which plans by it and keeps learning from today's traffic until the next
 * fit. At startup the stored profiles go to the shards right after the catalogue, so a restart
 * forgets nothing learned. The shard-wide fallback is refitted from the campaigns' profiles after
 * each round of fits and sent to every shard.
 */
export class ProfileService {
  private readonly stored = new Map<string, StoredProfile>();
  /** The local day each campaign was last fitted (or tried: a campaign without history) on. */
  private readonly fittedDay = new Map<string, string>();
  private pool: Piscina<FitJob, Fitted> | null = null;
  private ticking = false;

  constructor(
    private readonly store: ConfigStore,
    private readonly host: ProfileHost,
    private readonly options: ProfileOptions,
  ) {}

  /** Startup, after the catalogue reached the shards: the stored profiles follow it. */
  async start(): Promise<void> {
    for (const p of await this.store.loadProfiles()) this.stored.set(p.campaignId, p);
    const byShard = new Map<number, { campaignId: string; profile: FittedProfile }[]>();
    for (const p of this.stored.values()) {
      if (p.campaignId === globalProfileId) continue;
      const record = this.host.get(p.campaignId);
      if (record === undefined) continue;
      this.fittedDay.set(p.campaignId, dayBounds(record.config.timezone, p.fittedAtMs).key);
      const shard = shardOf(p.campaignId, this.host.shardCount);
      let list = byShard.get(shard);
      if (list === undefined) byShard.set(shard, (list = []));
      list.push({ campaignId: p.campaignId, profile: { density: p.density, fittedAtMs: p.fittedAtMs } });
    }
    const g = this.stored.get(globalProfileId);
    const global = g === undefined ? null : { density: g.density, fittedAtMs: g.fittedAtMs };
    await Promise.all(
      Array.from({ length: this.host.shardCount }, (_, shard) => this.host.send(shard, byShard.get(shard) ?? [], global)),
    );
    log('info', 'traffic profiles sent to the shards', { campaigns: this.fittedDay.size, global: global !== null });
  }

  /** The stored profile of a campaign, or null. */
  get(campaignId: string): StoredProfile | null {
    return this.stored.get(campaignId) ?? null;
  }

  /**
   * Fits a campaign's profile now from its stored history, stores it and sends it to its shard.
   * Null (nothing stored or sent) when the history holds no hour with enough observed minutes.
   */
  async fit(campaignId: string, nowMs: number = Date.now()): Promise<StoredProfile | null> {
    const record = this.host.get(campaignId);
    if (record === undefined) return null;
    const timeZone = record.config.timezone;
    this.fittedDay.set(campaignId, dayBounds(timeZone, nowMs).key);
    const range = fitRangeMs(nowMs, this.options.halfLifeDays);
    const fromMs = Math.max(range.fromMs, nowMs - this.options.historyRetentionDays * 86_400_000);
    const { minutes } = await this.store.history(campaignId, fromMs, nowMs);
    const rows = minutes.map((m) => ({ minuteMs: m.minuteMs, decisions: m.decisions, breakerState: m.breakerState, deniedByReason: m.deniedByReason }));
    const fitted = await this.runFit({ rows, timeZone, nowMs, halfLifeDays: this.options.halfLifeDays });
    if (fitted === null) return null;
    const stored: StoredProfile = { campaignId, fittedAtMs: fitted.fittedAtMs, halfLifeDays: this.options.halfLifeDays, density: fitted.density, hoursUsed: fitted.hoursUsed };
    await this.store.saveProfiles([stored]);
    this.stored.set(campaignId, stored);
    await this.host.send(shardOf(campaignId, this.host.shardCount), [{ campaignId, profile: { density: stored.density, fittedAtMs: stored.fittedAtMs } }], null);
    return stored;
  }

  /**
   * The midnight round (every minute, from the admin thread's timer): each campaign whose local day
   * began since its last fit, and whose day's last minutes have reached the database, is fitted;
   * then the shard-wide fallback. Never throws; one round at a time.
   */
  async tick(nowMs: number = Date.now()): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    let fitted = 0;
    try {
      for (const record of [...this.host.all()]) {
        const { id, timezone, archived } = record.config;
        if (archived === true) continue;
        const today = dayBounds(timezone, nowMs);
        if (this.fittedDay.get(id) === today.key || nowMs - today.startMs < this.options.historyLagMs) continue;
        try {
          if ((await this.fit(id, nowMs)) !== null) fitted++;
        } catch (err) {
          log('warn', 'profile fit failed', { campaignId: id, error: (err as Error).message });
        }
      }
      if (fitted > 0) await this.refitGlobal(nowMs);
    } catch (err) {
      log('warn', 'profile round failed', { error: (err as Error).message });
    } finally {
      this.ticking = false;
    }
  }

  private async refitGlobal(nowMs: number): Promise<void> {
    const own = [...this.stored.values()].filter((p) => p.campaignId !== globalProfileId);
    const g = fitGlobalProfile(own, nowMs);
    if (g === null) return;
    const stored: StoredProfile = { campaignId: globalProfileId, fittedAtMs: nowMs, halfLifeDays: this.options.halfLifeDays, density: g.density, hoursUsed: 0 };
    await this.store.saveProfiles([stored]);
    this.stored.set(globalProfileId, stored);
    await Promise.all(Array.from({ length: this.host.shardCount }, (_, shard) => this.host.send(shard, [], g)));
  }

  private runFit(job: FitJob): Promise<Fitted> {
    // One thread is enough: a fit is milliseconds of arithmetic per campaign, and the admin's
    // process shares its cores with the shards. Started on first use, idle threads end.
    this.pool ??= new Piscina<FitJob, Fitted>({ filename: new URL('./task.js', import.meta.url).href, minThreads: 0, maxThreads: 1, idleTimeout: 30_000 });
    return this.pool.run(job);
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
    this.pool = null;
  }
}
