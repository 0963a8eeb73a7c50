import type { BreakerConfig, CampaignConfig, ScheduleWindow } from './types.js';

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
    if (map.size < this.distinctMax) map.set(key, frozen);
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
