import type { Micros } from './money.js';
import type { BreakerConfig, CampaignConfig, CampaignMode, ScheduleWindow, ShadowConfig, Strategy } from './types.js';

/**
 * Shares the parts of campaign configurations that many campaigns have in common: the breaker
 * settings, the schedule, the CUSTOM weights and the short strings (zone, strategy, status). Every
 * configuration reaches a thread as its own copy (a structured clone, a parsed body, a database
 * row), so a million campaigns on the defaults would otherwise hold a million equal breaker
 * objects, half-open step arrays and 'Europe/Paris' strings. The shared parts are frozen: code that
 * tried to change one campaign's breaker in place would throw instead of changing them all.
 *
 * Bounded: past `distinctMax` entries of a kind, further values are kept as they came (correct,
 * only not shared).
 */
export class ConfigInterner {
  private readonly strings = new Map<string, string>();
  private readonly breakers = new Map<string, BreakerConfig>();
  private readonly schedules = new Map<string, readonly ScheduleWindow[]>();
  private readonly weights = new Map<string, readonly number[]>();
  private readonly settings = new Map<string, Settings>();
  /** The parts kept in the maps above (past distinctMax a part is the campaign's own and not here). */
  private readonly sharedParts = new WeakSet<object>();

  constructor(private readonly distinctMax = 10_000) {}

  /** The configuration with its common parts shared; a new object, the argument is not changed. */
  config<C extends CampaignConfig>(c: C): C {
    // One literal with every field: V8 keeps them all inside the object (a spread of a cloned
    // object keeps half of them in a separate property array, about 140 bytes more).
    const out: CampaignConfig = {
      id: c.id,
      // The name defaults to the ID: one string, where a structured clone made two.
      name: c.name === c.id ? c.id : c.name,
      status: this.string(c.status),
      dailyBudgetMicros: c.dailyBudgetMicros,
      timezone: this.string(c.timezone),
      strategy: this.string(c.strategy),
      frontLoadedShare: c.frontLoadedShare,
      aheadPercent: c.aheadPercent,
      hourlyWeights: c.hourlyWeights === null ? null : (this.shared(this.weights, c.hourlyWeights) as number[]),
      schedule: c.schedule === null ? null : (this.shared(this.schedules, c.schedule) as ScheduleWindow[]),
      startAtMs: c.startAtMs,
      endAtMs: c.endAtMs,
      lifetimeBudgetMicros: c.lifetimeBudgetMicros,
      catchUpMaxRatio: c.catchUpMaxRatio,
      velocityCapMultiple: c.velocityCapMultiple,
      breaker: this.shared(this.breakers, c.breaker),
      version: c.version,
      // Configurations stored before `archived` existed lack it: it reads the same as false.
      archived: c.archived ?? false,
    };
    // Fields this list does not name (any added later) are carried as they are.
    for (const k of Object.keys(c)) if (!(k in out)) (out as unknown as Record<string, unknown>)[k] = (c as Record<string, unknown>)[k];
    return out as C;
  }

  /**
   * The configuration as a shard keeps it (CompactConfig): the numbers that differ between
   * campaigns in a small object of its own, every other setting in one frozen object shared by all
   * the campaigns with the same settings (at a million campaigns on a few settings, about 100
   * bytes each instead of 216). A new object; the argument is not changed.
   */
  compact(c: CampaignConfig): CompactConfig {
    const status = this.string(c.status);
    const timezone = this.string(c.timezone);
    const strategy = this.string(c.strategy);
    const hourlyWeights = c.hourlyWeights === null ? null : (this.shared(this.weights, c.hourlyWeights) as number[]);
    const schedule = c.schedule === null ? null : (this.shared(this.schedules, c.schedule) as ScheduleWindow[]);
    const breaker = this.shared(this.breakers, c.breaker);
    const shadow = c.shadow === undefined || c.shadow === null ? null : c.shadow;
    const settings = settingsWith(c, { status, timezone, strategy, hourlyWeights, schedule, breaker, shadow });
    // Shared only when every part it points at is (past distinctMax a part is the campaign's own).
    const key =
      (hourlyWeights === null || this.sharedParts.has(hourlyWeights)) && (schedule === null || this.sharedParts.has(schedule)) && this.sharedParts.has(breaker)
        ? JSON.stringify([status, timezone, strategy, c.frontLoadedShare, c.aheadPercent, hourlyWeights, schedule, c.catchUpMaxRatio, c.velocityCapMultiple, breaker, settings.archived, settings.mode, shadow])
        : null;
    let shared = key === null ? undefined : this.settings.get(key);
    if (shared === undefined) {
      // Its parts are shared (frozen) already; the shadow's settings are copied, as they came with the message.
      shared = Object.freeze({ ...settings, shadow: shadow === null ? null : deepFreeze(structuredClone(shadow)) });
      if (key !== null && this.settings.size < this.distinctMax) this.settings.set(key, shared);
    }
    return new CompactConfig(c.id, c.name === c.id ? c.id : c.name, c.dailyBudgetMicros, c.startAtMs, c.endAtMs, c.lifetimeBudgetMicros, c.version, shared);
  }

  string<S extends string>(s: S): S {
    const known = this.strings.get(s);
    if (known !== undefined) return known as S;
    if (this.strings.size < this.distinctMax) this.strings.set(s, s);
    return s;
  }

  private shared<T extends object>(map: Map<string, T>, value: T): T {
    const key = JSON.stringify(value);
    const known = map.get(key);
    if (known !== undefined) return known;
    const frozen = deepFreeze(structuredClone(value));
    if (map.size < this.distinctMax) {
      map.set(key, frozen);
      this.sharedParts.add(frozen);
    }
    return frozen;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The settings of a campaign that many campaigns have in common (CompactConfig's shared part). */
export interface Settings {
  readonly status: CampaignConfig['status'];
  readonly timezone: string;
  readonly strategy: Strategy;
  readonly frontLoadedShare: number;
  readonly aheadPercent: number;
  readonly hourlyWeights: number[] | null;
  readonly schedule: ScheduleWindow[] | null;
  readonly catchUpMaxRatio: number;
  readonly velocityCapMultiple: number;
  readonly breaker: BreakerConfig;
  readonly archived: boolean;
  readonly mode: CampaignMode;
  readonly shadow: ShadowConfig | null;
}

/**
 * A campaign configuration as a shard keeps it (ConfigInterner.compact): read like any other
 * CampaignConfig, but only the ID, name, money, flight and version are its own; the other settings
 * are read through to a frozen object shared with the campaigns that have the same ones. The
 * settings are getters on the prototype, so a spread or a structured clone of it would lose them:
 * copy it field by field (shards/pacing/shadow-config.ts does).
 */
export class CompactConfig implements CampaignConfig {
  constructor(
    readonly id: string,
    readonly name: string,
    readonly dailyBudgetMicros: Micros,
    readonly startAtMs: number | null,
    readonly endAtMs: number | null,
    readonly lifetimeBudgetMicros: Micros | null,
    readonly version: number,
    /** The shared settings (a shard's Campaign keeps this object, not the configuration). */
    readonly s: Settings,
  ) {}

  get status(): CampaignConfig['status'] {
    return this.s.status;
  }

  get timezone(): string {
    return this.s.timezone;
  }

  get strategy(): Strategy {
    return this.s.strategy;
  }

  get frontLoadedShare(): number {
    return this.s.frontLoadedShare;
  }

  get aheadPercent(): number {
    return this.s.aheadPercent;
  }

  get hourlyWeights(): number[] | null {
    return this.s.hourlyWeights;
  }

  get schedule(): ScheduleWindow[] | null {
    return this.s.schedule;
  }

  get catchUpMaxRatio(): number {
    return this.s.catchUpMaxRatio;
  }

  get velocityCapMultiple(): number {
    return this.s.velocityCapMultiple;
  }

  get breaker(): BreakerConfig {
    return this.s.breaker;
  }

  get archived(): boolean {
    return this.s.archived;
  }

  get mode(): CampaignMode {
    return this.s.mode;
  }

  get shadow(): ShadowConfig | null {
    return this.s.shadow;
  }
}

/**
 * The settings of any configuration as a Settings object: a CompactConfig's shared one, else a
 * frozen object of the configuration's own (a configuration not from an interner: tests, tools).
 */
export function settingsOf(c: CampaignConfig): Settings {
  if (c instanceof CompactConfig) return c.s;
  const { status, timezone, strategy, hourlyWeights, schedule, breaker } = c;
  return Object.freeze(settingsWith(c, { status, timezone, strategy, hourlyWeights, schedule, breaker, shadow: c.shadow ?? null }));
}

/** A configuration's settings, with the parts given (shared ones, or the configuration's own). */
function settingsWith(
  c: CampaignConfig,
  parts: Pick<Settings, 'status' | 'timezone' | 'strategy' | 'hourlyWeights' | 'schedule' | 'breaker' | 'shadow'>,
): Settings {
  return {
    ...parts,
    frontLoadedShare: c.frontLoadedShare,
    aheadPercent: c.aheadPercent,
    catchUpMaxRatio: c.catchUpMaxRatio,
    velocityCapMultiple: c.velocityCapMultiple,
    archived: c.archived ?? false,
    mode: c.mode ?? 'ENFORCE',
  };
}
