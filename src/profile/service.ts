import { Piscina } from 'piscina';
import type { FittedProfile } from '../../shards/pacing/profile.js';
import { dayBounds } from '../../shards/time/zone.js';
import { shardOf } from '../hash.js';
import { log } from '../log.js';
import type { CampaignRecord } from '../model/campaign.js';
import { type ConfigStore, globalProfileId, type StoredProfile } from '../store/config-store.js';
import { fitGlobalProfile, fitMinutesPerHourMin, fitRangeMs } from './fit.js';
import type { FitJob } from './task.js';

/** What the service needs of the admin thread: the catalogue and the shards' links. */
export interface ProfileHost {
  get(id: string): CampaignRecord | undefined;
  /** A campaign's slot in the catalogue (a small integer, never reused), when the host has one. */
  slotOf?(id: string): number | undefined;
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

/** A starting profile combined from campaigns like one without a fitted profile of its own. */
export interface SimilarProfile {
  campaignId: string;
  density: (number | null)[];
  fittedAtMs: number;
  /** How many campaigns' fitted profiles it combines. */
  campaigns: number;
}

/** Campaigns are alike when their time zone and weekly schedule (dayparting) are the same. */
export function similarityKey(c: { timezone: string; schedule: unknown }): string {
  return `${c.timezone}\n${JSON.stringify(c.schedule ?? null)}`;
}

/**
 * The combined profile of similar campaigns: each one's weekday shape normalised to a mean of 1
 * (fitGlobalProfile: a big campaign does not drown the others' shape), then scaled per weekday by
 * the campaigns' mean density that weekday, so that the new campaign's own learning (absolute
 * opportunities per ms, src/profile/fit.ts) blends into values of a comparable size.
 */
export function combineSimilar(profiles: readonly FittedProfile[], nowMs: number): FittedProfile | null {
  const shape = fitGlobalProfile(profiles, nowMs);
  if (shape === null) return null;
  const density = shape.density.slice();
  for (let d = 0; d < 7; d++) {
    let level = 0;
    let n = 0;
    for (const p of profiles) {
      const known = p.density.slice(d * 24, d * 24 + 24).filter((v): v is number => typeof v === 'number' && v > 0);
      if (known.length === 0) continue;
      level += known.reduce((a, v) => a + v, 0) / known.length;
      n++;
    }
    for (let h = 0; h < 24; h++) {
      const v = density[d * 24 + h];
      density[d * 24 + h] = typeof v === 'number' && n > 0 ? v * (level / n) : null;
    }
  }
  return { density, fittedAtMs: nowMs };
}

const apiWeekdays = ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'] as const;

/** A stored profile as the admin API shows it: opportunities per minute by weekday, Monday first. */
export function profileToApi(p: StoredProfile): Record<string, unknown> {
  return { campaignId: p.campaignId, fittedAt: new Date(p.fittedAtMs).toISOString(), halfLifeDays: p.halfLifeDays, hoursUsed: p.hoursUsed, unit: 'opportunitiesPerMinute', days: apiDays(p.density), source: 'fitted' };
}

function apiDays(density: readonly (number | null)[]): Record<string, (number | null)[]> {
  const days: Record<string, (number | null)[]> = {};
  apiWeekdays.forEach((name, i) => {
    const weekday = (i + 1) % 7; // shards count weekdays from Sunday
    days[name] = density.slice(weekday * 24, weekday * 24 + 24).map((d) => (d === null ? null : d * 60_000));
  });
  return days;
}

/** A starting profile from similar campaigns as the admin API shows it. */
export function similarToApi(p: SimilarProfile, halfLifeDays: number): Record<string, unknown> {
  return { campaignId: p.campaignId, fittedAt: new Date(p.fittedAtMs).toISOString(), halfLifeDays, hoursUsed: 0, unit: 'opportunitiesPerMinute', days: apiDays(p.density), source: 'similar', similarCampaigns: p.campaigns };
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
/**
 * The local day (its key, YYYY-MM-DD) each campaign was last fitted on: by the catalogue's slot in
 * an Int32Array of day numbers when the host has slots (4 bytes a campaign where a Map entry took
 * about 30 at a million), else in a Map.
 */
class FittedDays {
  private days = new Int32Array(0);
  private readonly byId = new Map<string, string>();
  private count = 0;
  /** The last key turned into a day number: a round asks about the same few keys a million times. */
  private lastKey = '';
  private lastDay = NaN;

  constructor(private readonly host: ProfileHost) {}

  get size(): number {
    return this.count + this.byId.size;
  }

  /** Whether the campaign was last fitted on the local day `key`. */
  isOn(id: string, key: string): boolean {
    const slot = this.host.slotOf?.(id);
    const day = this.dayOf(key);
    if (slot === undefined || day !== day) return this.byId.get(id) === key;
    return slot < this.days.length && this.days[slot] === day;
  }

  set(id: string, key: string): void {
    const slot = this.host.slotOf?.(id);
    const day = this.dayOf(key);
    if (slot === undefined || day !== day) {
      this.byId.set(id, key);
      return;
    }
    if (slot >= this.days.length) {
      const grown = new Int32Array(Math.max(1024, this.days.length * 2, slot + 1));
      grown.set(this.days);
      this.days = grown;
    }
    if (this.days[slot] === 0) this.count++;
    this.days[slot] = day;
  }

  /** Days since 1970-01-01 plus one (0 stays "none") of a YYYY-MM-DD key; NaN if it is not one. */
  private dayOf(key: string): number {
    if (key !== this.lastKey) {
      this.lastKey = key;
      this.lastDay = Date.parse(`${key}T00:00:00Z`) / 86_400_000 + 1;
    }
    return this.lastDay;
  }
}

export class ProfileService {
  private readonly stored = new Map<string, StoredProfile>();
  /** The local day each campaign was last fitted (or tried: a campaign without history) on. */
  private readonly fittedDay: FittedDays;
  /** Starting profiles of campaigns without a fitted one, combined from campaigns like them. */
  private readonly similar = new Map<string, SimilarProfile>();
  /** Combinations by similarity key; cleared whenever a stored profile changes. */
  private readonly combined = new Map<string, { density: (number | null)[]; fittedAtMs: number; campaigns: number } | null>();
  private pool: Piscina<FitJob, Fitted> | null = null;
  private ticking = false;

  constructor(
    private readonly store: ConfigStore,
    private readonly host: ProfileHost,
    private readonly options: ProfileOptions,
  ) {
    this.fittedDay = new FittedDays(host);
  }

  /** Startup, after the catalogue reached the shards: the stored profiles follow it. */
  async start(): Promise<void> {
    for (const p of await this.store.loadProfiles()) this.stored.set(p.campaignId, p);
    this.combined.clear();
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
    // Campaigns without a fitted profile start from the profile of campaigns like them.
    for (const record of this.host.all()) {
      const sim = this.similarFor(record, Date.now());
      if (sim === null) continue;
      const shard = shardOf(sim.campaignId, this.host.shardCount);
      let list = byShard.get(shard);
      if (list === undefined) byShard.set(shard, (list = []));
      list.push({ campaignId: sim.campaignId, profile: { density: sim.density, fittedAtMs: sim.fittedAtMs } });
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

  /** A campaign's profile as GET …/profile shows it: its fitted one, or its starting one from similar campaigns; null without either. */
  toApi(campaignId: string): Record<string, unknown> | null {
    const own = this.stored.get(campaignId);
    if (own !== undefined) return profileToApi(own);
    const sim = this.similar.get(campaignId);
    return sim === undefined ? null : similarToApi(sim, this.options.halfLifeDays);
  }

  /** The density the campaign plans by (fitted, else from similar campaigns), or null. */
  profileOf(campaignId: string): (number | null)[] | null {
    return this.stored.get(campaignId)?.density ?? this.similar.get(campaignId)?.density ?? null;
  }

  /**
   * The starting profile of a campaign without a fitted one: the combination of the fitted profiles
   * of the live campaigns with its time zone and schedule (remembered in this.similar); null when
   * it has its own or there are none like it.
   */
  private similarFor(record: CampaignRecord, nowMs: number): SimilarProfile | null {
    const id = record.config.id;
    if (this.stored.has(id) || record.config.archived === true) {
      this.similar.delete(id);
      return null;
    }
    const combined = this.combinedFor(similarityKey(record.config), nowMs);
    if (combined === null) {
      this.similar.delete(id);
      return null;
    }
    const sim: SimilarProfile = { campaignId: id, density: combined.density, fittedAtMs: combined.fittedAtMs, campaigns: combined.campaigns };
    this.similar.set(id, sim);
    return sim;
  }

  /**
   * The combination for one similarity key, computed once per key until a stored profile changes
   * (so a bulk creation of many alike campaigns scans the stored profiles once, not once each).
   */
  private combinedFor(key: string, nowMs: number): { density: (number | null)[]; fittedAtMs: number; campaigns: number } | null {
    const known = this.combined.get(key);
    if (known !== undefined) return known;
    const like: FittedProfile[] = [];
    for (const p of this.stored.values()) {
      if (p.campaignId === globalProfileId) continue;
      const other = this.host.get(p.campaignId);
      if (other === undefined || other.config.archived === true || similarityKey(other.config) !== key) continue;
      like.push(p);
    }
    const c = like.length === 0 ? null : combineSimilar(like, nowMs);
    const out = c === null ? null : { density: c.density, fittedAtMs: c.fittedAtMs, campaigns: like.length };
    this.combined.set(key, out);
    return out;
  }

  /** A new campaign (Campaigns.onCreated): its shard gets the profile of campaigns like it, if any. */
  async created(record: CampaignRecord, nowMs: number = Date.now()): Promise<void> {
    // A new ID has no history before now, so its first fit is at its next local midnight: the
    // round does not read (and drop) an empty history for each campaign created today.
    this.fittedDay.set(record.config.id, dayBounds(record.config.timezone, nowMs).key);
    const sim = this.similarFor(record, nowMs);
    if (sim === null) return;
    await this.host.send(shardOf(sim.campaignId, this.host.shardCount), [{ campaignId: sim.campaignId, profile: { density: sim.density, fittedAtMs: sim.fittedAtMs } }], null);
  }

  /** After fits: campaigns still without a profile of their own get the new combination of their likes. */
  private async refreshSimilar(nowMs: number): Promise<void> {
    const byShard = new Map<number, { campaignId: string; profile: FittedProfile }[]>();
    // Not spread into an array: the catalogue builds each record as it is read (src/model/table.ts),
    // and a million of them held at once would be hundreds of MB.
    for (const record of this.host.all()) {
      const sim = this.similarFor(record, nowMs);
      if (sim === null) continue;
      const shard = shardOf(sim.campaignId, this.host.shardCount);
      let list = byShard.get(shard);
      if (list === undefined) byShard.set(shard, (list = []));
      list.push({ campaignId: sim.campaignId, profile: { density: sim.density, fittedAtMs: sim.fittedAtMs } });
    }
    await Promise.all([...byShard].map(([shard, list]) => this.host.send(shard, list, null)));
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
    // Fewer rows than one hour needs cannot fit (fitProfile would answer null): answered here, so
    // that the first round after a deployment, whose campaigns have no history yet, does not start
    // the pool's thread (a whole V8 isolate, about 18 MB resident for its 30 s) for nothing.
    if (rows.length < fitMinutesPerHourMin) return null;
    const fitted = await this.runFit({ rows, timeZone, nowMs, halfLifeDays: this.options.halfLifeDays });
    if (fitted === null) return null;
    const stored: StoredProfile = { campaignId, fittedAtMs: fitted.fittedAtMs, halfLifeDays: this.options.halfLifeDays, density: fitted.density, hoursUsed: fitted.hoursUsed };
    await this.store.saveProfiles([stored]);
    this.stored.set(campaignId, stored);
    this.similar.delete(campaignId);
    this.combined.clear();
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
      // Read as it goes (see refreshSimilar); a campaign created meanwhile may be visited too, as
      // a Map's iterator would.
      for (const record of this.host.all()) {
        const { id, timezone, archived } = record.config;
        if (archived === true) continue;
        const today = dayBounds(timezone, nowMs);
        if (this.fittedDay.isOn(id, today.key) || nowMs - today.startMs < this.options.historyLagMs) continue;
        try {
          if ((await this.fit(id, nowMs)) !== null) fitted++;
        } catch (err) {
          log('warn', 'profile fit failed', { campaignId: id, error: (err as Error).message });
        }
      }
      if (fitted > 0) {
        await this.refitGlobal(nowMs);
        await this.refreshSimilar(nowMs);
      }
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
