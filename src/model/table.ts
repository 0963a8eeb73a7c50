import type { CampaignConfig } from '../../shards/types.js';
import type { CampaignRecord } from './campaign.js';
import { IdIndex } from '../../shards/id-index.js';

/**
 * Campaign records kept as columns, not as objects: the admin thread's catalogue
 * (src/admin/campaigns.ts) and the memory configuration store (src/store/memory.ts) hold every
 * campaign of the pacer, a million of them at the scale the pacer is built for, and a
 * CampaignRecord with its configuration object, boxed numbers and timestamp strings costs about
 * 375 bytes each (V8 here does not compress pointers). This table keeps per campaign:
 *
 * - the numbers that differ from one campaign to the next (the two budgets, the flight, the
 *   version, the three timestamps as epoch ms) in Float64Array columns indexed by a slot;
 * - the ID and the name (the ID's own string when the name defaults to it) in two arrays;
 * - everything else (status, zone, strategy, the pacing settings, weights, schedule, breaker,
 *   archived, mode, shadow and any field added later) as the index of a shared, frozen "profile":
 *   campaigns with the same settings share one, counted by reference, dropped with its last user.
 *
 * A record is rebuilt on demand (get, values): a fresh object each time, with its fields in the
 * order the catalogue always gave them (the API's JSON keeps its key order). A caller may change
 * the object it got; the table does not see it (write it back with set). Slots are never freed:
 * campaigns are archived, not deleted.
 *
 * Timestamps are kept as epoch ms when their ISO 8601 text is exactly what toISOString gives back
 * (every timestamp the admin and the stores produce); any other text is kept as it came, aside.
 */
export class CampaignTable {
  /** Slot by ID: an open-addressing table of slots (4 to 8 bytes a campaign where a Map entry took about 46). */
  private readonly slots: IdIndex;
  private readonly ids: string[] = [];
  private readonly names: string[] = [];
  private capacity = 0;
  private daily: Float64Array = new Float64Array(0);
  /** NaN: null. */
  private lifetime: Float64Array = new Float64Array(0);
  private startAt: Float64Array = new Float64Array(0);
  private endAt: Float64Array = new Float64Array(0);
  private version: Float64Array = new Float64Array(0);
  private createdAt: Float64Array = new Float64Array(0);
  private updatedAt: Float64Array = new Float64Array(0);
  private archivedAt: Float64Array = new Float64Array(0);
  private profileOf: Uint32Array = new Uint32Array(0);
  /** Timestamps whose text does not round-trip through epoch ms, by slot. */
  private readonly oddTimes = new Map<number, { createdAt: string; updatedAt: string; archivedAt: string | null }>();

  private readonly profiles: (Profile | undefined)[] = [];
  private profileRefs: Uint32Array = new Uint32Array(0);
  private readonly freeProfiles: number[] = [];
  /** Profile index by its key, for sharing; at most distinctMax keys (past that, profiles are kept unshared). */
  private readonly profileByKey = new Map<string, number>();

  constructor(private readonly distinctMax = 10_000) {
    const ids = this.ids;
    this.slots = new IdIndex((slot) => ids[slot]!);
  }

  get size(): number {
    return this.ids.length;
  }

  has(id: string): boolean {
    return this.slots.get(id) !== undefined;
  }

  /** A campaign's slot: its position in the order campaigns were first stored (never reused). */
  slotOf(id: string): number | undefined {
    return this.slots.get(id);
  }

  /** The stored version of a campaign; undefined when it has none. */
  versionOf(id: string): number | undefined {
    const s = this.slots.get(id);
    return s === undefined ? undefined : this.version[s]!;
  }

  get(id: string): CampaignRecord | undefined {
    const s = this.slots.get(id);
    return s === undefined ? undefined : this.record(s);
  }

  /** What the listing's filters read, without building the record. */
  peek(id: string): { name: string; status: string; strategy: string; archived: boolean } | undefined {
    const s = this.slots.get(id);
    if (s === undefined) return undefined;
    const p = this.profiles[this.profileOf[s]!]!;
    return { name: this.names[s]!, status: p.status, strategy: p.strategy, archived: !Number.isNaN(this.archivedAt[s]!) || this.oddTimes.get(s)?.archivedAt != null };
  }

  /** Every record, in the order the campaigns were first stored; campaigns added while iterating are included. */
  *values(): IterableIterator<CampaignRecord> {
    for (let s = 0; s < this.ids.length; s++) yield this.record(s);
  }

  /**
   * The records whose listing fields pass keep, built only for those (a filter over a million
   * campaigns reads the columns, not a million records).
   */
  *where(keep: (c: ListingFields) => boolean): IterableIterator<CampaignRecord> {
    for (let s = 0; s < this.ids.length; s++) if (keep(this.fields(s))) yield this.record(s);
  }

  /** The IDs whose listing fields pass keep, no record built. */
  idsWhere(keep: (c: ListingFields) => boolean): string[] {
    const out: string[] = [];
    for (let s = 0; s < this.ids.length; s++) if (keep(this.fields(s))) out.push(this.ids[s]!);
    return out;
  }

  private fields(s: number): ListingFields {
    const p = this.profiles[this.profileOf[s]!]!;
    const archived = !Number.isNaN(this.archivedAt[s]!) || this.oddTimes.get(s)?.archivedAt != null;
    return { id: this.ids[s]!, name: this.names[s]!, status: p.status, strategy: p.strategy, archived };
  }

  /** Adds or replaces a campaign's record (the table keeps its values, not the object). */
  set(record: CampaignRecord): void {
    const c = record.config;
    let s = this.slots.get(c.id);
    if (s === undefined) {
      s = this.ids.length;
      this.grow(s + 1);
      this.ids.push(c.id);
      this.names.push(c.id);
      this.slots.add(s);
    } else {
      this.release(this.profileOf[s]!);
    }
    this.names[s] = c.name === c.id ? this.ids[s]! : c.name;
    this.daily[s] = c.dailyBudgetMicros;
    this.lifetime[s] = c.lifetimeBudgetMicros ?? NaN;
    this.startAt[s] = c.startAtMs ?? NaN;
    this.endAt[s] = c.endAtMs ?? NaN;
    this.version[s] = c.version;
    this.profileOf[s] = this.profile(c);
    const created = msOf(record.createdAt);
    const updated = record.updatedAt === record.createdAt ? created : msOf(record.updatedAt);
    const archived = record.archivedAt === null ? NaN : msOf(record.archivedAt);
    if (created === null || updated === null || archived === null) {
      this.createdAt[s] = this.updatedAt[s] = this.archivedAt[s] = NaN;
      this.oddTimes.set(s, { createdAt: record.createdAt, updatedAt: record.updatedAt, archivedAt: record.archivedAt });
    } else {
      this.createdAt[s] = created;
      this.updatedAt[s] = updated;
      this.archivedAt[s] = archived;
      this.oddTimes.delete(s);
    }
  }

  private record(s: number): CampaignRecord {
    const p = this.profiles[this.profileOf[s]!]!;
    const lifetime = this.lifetime[s]!;
    const startAt = this.startAt[s]!;
    const endAt = this.endAt[s]!;
    // The order of the fields is the one the catalogue's configurations always had (ConfigInterner).
    const config: CampaignConfig = {
      id: this.ids[s]!,
      name: this.names[s]!,
      status: p.status,
      dailyBudgetMicros: this.daily[s]! as CampaignConfig['dailyBudgetMicros'],
      timezone: p.timezone,
      strategy: p.strategy,
      frontLoadedShare: p.frontLoadedShare,
      aheadPercent: p.aheadPercent,
      hourlyWeights: p.hourlyWeights as number[] | null,
      schedule: p.schedule as CampaignConfig['schedule'],
      startAtMs: Number.isNaN(startAt) ? null : startAt,
      endAtMs: Number.isNaN(endAt) ? null : endAt,
      lifetimeBudgetMicros: (Number.isNaN(lifetime) ? null : lifetime) as CampaignConfig['lifetimeBudgetMicros'],
      catchUpMaxRatio: p.catchUpMaxRatio,
      velocityCapMultiple: p.velocityCapMultiple,
      breaker: p.breaker,
      version: this.version[s]!,
      archived: p.archived,
    };
    for (const [k, v] of p.extra) (config as unknown as Record<string, unknown>)[k] = v;
    const odd = this.oddTimes.get(s);
    if (odd !== undefined) return { config, createdAt: odd.createdAt, updatedAt: odd.updatedAt, archivedAt: odd.archivedAt };
    const created = isoOf(this.createdAt[s]!);
    const updatedMs = this.updatedAt[s]!;
    const archivedMs = this.archivedAt[s]!;
    return {
      config,
      createdAt: created,
      updatedAt: updatedMs === this.createdAt[s] ? created : isoOf(updatedMs),
      archivedAt: Number.isNaN(archivedMs) ? null : isoOf(archivedMs),
    };
  }

  private grow(need: number): void {
    if (need <= this.capacity) return;
    const cap = Math.max(64, Math.ceil(this.capacity * 1.5), need);
    this.daily = f64(this.daily, cap);
    this.lifetime = f64(this.lifetime, cap);
    this.startAt = f64(this.startAt, cap);
    this.endAt = f64(this.endAt, cap);
    this.version = f64(this.version, cap);
    this.createdAt = f64(this.createdAt, cap);
    this.updatedAt = f64(this.updatedAt, cap);
    this.archivedAt = f64(this.archivedAt, cap);
    this.profileOf = u32(this.profileOf, cap);
    this.capacity = cap;
  }

  /** The index of the shared profile of c's settings, its reference count taken. */
  private profile(c: CampaignConfig): number {
    const extra: [string, unknown][] = [];
    for (const k of Object.keys(c)) if (!profileFree.has(k) && !profileFields.has(k)) extra.push([k, (c as unknown as Record<string, unknown>)[k]]);
    const parts = {
      status: c.status,
      timezone: c.timezone,
      strategy: c.strategy,
      frontLoadedShare: c.frontLoadedShare,
      aheadPercent: c.aheadPercent,
      hourlyWeights: c.hourlyWeights,
      schedule: c.schedule,
      catchUpMaxRatio: c.catchUpMaxRatio,
      velocityCapMultiple: c.velocityCapMultiple,
      breaker: c.breaker,
      // Configurations stored before `archived` existed lack it: it reads the same as false.
      archived: c.archived ?? false,
      extra,
    };
    // The scalars joined, the objects as JSON (an object shared through ConfigInterner, as every
    // admin write's are, is written once and remembered); JSON.stringify writes numbers exactly,
    // and only an extra field's own value can be absent.
    let key = JSON.stringify([c.status, c.timezone, c.strategy, c.frontLoadedShare, c.aheadPercent, c.catchUpMaxRatio, c.velocityCapMultiple, parts.archived]);
    key += this.jsonOf(c.breaker) + '|' + this.jsonOf(c.hourlyWeights) + '|' + this.jsonOf(c.schedule);
    if (extra.length > 0) key += JSON.stringify(extra.map(([k, v]) => [k, v === undefined ? undefinedMark : v]));
    const known = this.profileByKey.get(key);
    if (known !== undefined) {
      this.profileRefs[known]!++;
      return known;
    }
    const i = this.freeProfiles.pop() ?? this.profiles.length;
    const shared = this.profileByKey.size < this.distinctMax;
    if (shared) this.profileByKey.set(key, i);
    const p: Profile = deepFreeze({ ...structuredClone(parts), key: shared ? key : null });
    if (i >= this.profileRefs.length) this.profileRefs = u32(this.profileRefs, Math.max(64, this.profileRefs.length * 2));
    this.profiles[i] = p;
    this.profileRefs[i] = 1;
    return i;
  }

  private readonly json = new WeakMap<object, string>();

  /** JSON of a configuration part; of a deeply frozen (shared, so unchanging) one, remembered. */
  private jsonOf(v: object | null): string {
    if (v === null) return 'null';
    const known = this.json.get(v);
    if (known !== undefined) return known;
    const text = JSON.stringify(v);
    if (deepFrozen(v)) this.json.set(v, text);
    return text;
  }

  private release(i: number): void {
    if (--this.profileRefs[i]! > 0) return;
    const p = this.profiles[i]!;
    if (p.key !== null) this.profileByKey.delete(p.key);
    this.profiles[i] = undefined;
    this.freeProfiles.push(i);
  }
}

/** What the listing's and the fleet report's filters read of a campaign. */
export interface ListingFields {
  id: string;
  name: string;
  status: string;
  strategy: string;
  archived: boolean;
}

/** The settings campaigns share: every configuration field but the ones the table keeps per campaign. */
interface Profile {
  readonly status: CampaignConfig['status'];
  readonly timezone: string;
  readonly strategy: CampaignConfig['strategy'];
  readonly frontLoadedShare: number;
  readonly aheadPercent: number;
  readonly hourlyWeights: readonly number[] | null;
  readonly schedule: CampaignConfig['schedule'];
  readonly catchUpMaxRatio: number;
  readonly velocityCapMultiple: number;
  readonly breaker: CampaignConfig['breaker'];
  readonly archived: boolean;
  /** Fields past `archived` (mode, shadow, any added later), in the configuration's order. */
  readonly extra: readonly (readonly [string, unknown])[];
  /** Its key in profileByKey; null when not shared. */
  readonly key: string | null;
}

/** Kept per campaign, in columns. */
const profileFree = new Set(['id', 'name', 'dailyBudgetMicros', 'lifetimeBudgetMicros', 'startAtMs', 'endAtMs', 'version']);
const profileFields = new Set(['status', 'timezone', 'strategy', 'frontLoadedShare', 'aheadPercent', 'hourlyWeights', 'schedule', 'catchUpMaxRatio', 'velocityCapMultiple', 'breaker', 'archived']);
/** Tells an absent value from null in a profile's key. */
const undefinedMark = '\u0000undefined';

const pad2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const pad3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/**
 * What `new Date(ms).toISOString()` gives, about ten times faster (a fleet report builds a record
 * of every campaign): the proleptic Gregorian date from the day number (Howard Hinnant's
 * civil_from_days), for years 1970 to 9999; toISOString itself outside them.
 */
export function isoOf(ms: number): string {
  if (!(ms >= 0 && ms < 253402300800000) || !Number.isInteger(ms)) return new Date(ms).toISOString();
  const days = Math.floor(ms / 86_400_000);
  let rest = ms - days * 86_400_000;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const min = Math.floor(rest / 60_000);
  rest -= min * 60_000;
  const sec = Math.floor(rest / 1000);
  return `${pad2[Math.floor(y / 100)]}${pad2[y % 100]}-${pad2[m]}-${pad2[d]}T${pad2[h]}:${pad2[min]}:${pad2[sec]}.${pad3[rest - sec * 1000]}Z`;
}

/** Epoch ms of an ISO 8601 timestamp when toISOString gives exactly that text back; else null. */
function msOf(iso: string): number | null {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return null;
  return isoOf(ms) === iso ? ms : null;
}

function f64(a: Float64Array, n: number): Float64Array {
  const b = new Float64Array(n);
  b.set(a);
  return b;
}

function u32(a: Uint32Array, n: number): Uint32Array {
  const b = new Uint32Array(n);
  b.set(a);
  return b;
}

function deepFrozen(v: object): boolean {
  if (!Object.isFrozen(v)) return false;
  for (const x of Object.values(v)) if (typeof x === 'object' && x !== null && !deepFrozen(x)) return false;
  return true;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
