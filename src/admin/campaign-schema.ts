import { limits } from '../../shards/limits.js';
import type { Micros } from '../../shards/money.js';
import { isValidTimeZone } from '../../shards/time/zone.js';
import {
  type BreakerConfig,
  breakerDefaults,
  campaignDefaults,
  type CampaignConfig,
  type ScheduleWindow,
  type Strategy,
  strategies,
  type Weekday,
  weekdays,
} from '../../shards/types.js';
import { ApiError } from '../http/errors.js';
import { campaignIdPattern } from '../router/validate.js';
import { preview } from '../http/preview.js';
import { instantFormat, parseInstant } from '../http/time.js';

/**
 * The campaign model at the API boundary: validates a create-or-replace body in full and resolves
 * every default, so the shards receive a complete CampaignConfig. Errors name the field and the
 * rule; nothing is stored unless everything is valid.
 */
export interface CampaignRecord {
  config: CampaignConfig;
  createdAt: string;
  updatedAt: string;
}

/** The campaign as the API shows it: the stored configuration with dates as ISO 8601. */
export function campaignToApi(record: CampaignRecord): Record<string, unknown> {
  const { config } = record;
  const { startAtMs, endAtMs, ...rest } = config;
  return {
    ...rest,
    startAt: startAtMs === null ? null : new Date(startAtMs).toISOString(),
    endAt: endAtMs === null ? null : new Date(endAtMs).toISOString(),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

const fields = [
  'id',
  'name',
  'status',
  'dailyBudgetMicros',
  'timezone',
  'strategy',
  'frontLoadedShare',
  'aheadPercent',
  'hourlyWeights',
  'schedule',
  'startAt',
  'endAt',
  'lifetimeBudgetMicros',
  'catchUpMaxRatio',
  'velocityCapMultiple',
  'breaker',
  // Read-only fields a client may send back unchanged from a GET.
  'version',
  'createdAt',
  'updatedAt',
];
const breakerFields = Object.keys(breakerDefaults);

function bad(message: string): ApiError {
  return new ApiError('INVALID_FIELD', message);
}

function number(v: unknown, field: string, min: number, max: number, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw bad(`${field} must be a number from ${min} to ${max} (got ${JSON.stringify(v)})`);
  }
  return v;
}

function money(v: unknown, field: string): Micros {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new ApiError('INVALID_AMOUNT', `${field} must be a positive integer number of micros no larger than 2^53-1 (got ${JSON.stringify(v)})`);
  }
  return v as Micros;
}

function instant(v: unknown, field: string): number | null {
  if (v === undefined || v === null) return null;
  const ms = typeof v === 'string' ? parseInstant(v) : null;
  if (ms === null) throw bad(`${field} must be ${instantFormat} (got ${preview(v)})`);
  return ms;
}

const clockPattern = /^([01]\d|2[0-3]):[0-5]\d$|^24:00$/;

function schedule(v: unknown): ScheduleWindow[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.length === 0 || v.length > 100) {
    throw bad('schedule must be an array of 1-100 windows {days, start, end}; omit it to be active all day');
  }
  return v.map((w: unknown, i) => {
    if (typeof w !== 'object' || w === null || Array.isArray(w)) throw bad(`schedule[${i}] must be an object {days, start, end}`);
    const { days, start, end, ...extra } = w as Record<string, unknown>;
    const unknown = Object.keys(extra);
    if (unknown.length > 0) throw bad(`schedule[${i}] has unknown field ${JSON.stringify(unknown[0])}`);
    if (!Array.isArray(days) || days.length === 0 || !days.every((d) => weekdays.includes(d as Weekday))) {
      throw bad(`schedule[${i}].days must be a non-empty array of ${weekdays.join(', ')}`);
    }
    if (typeof start !== 'string' || !clockPattern.test(start) || start === '24:00') {
      throw bad(`schedule[${i}].start must be local time HH:MM from 00:00 to 23:59 (got ${JSON.stringify(start)})`);
    }
    if (typeof end !== 'string' || !clockPattern.test(end)) {
      throw bad(`schedule[${i}].end must be local time HH:MM from 00:00 to 24:00 (got ${JSON.stringify(end)})`);
    }
    if (start === end) throw bad(`schedule[${i}] starts and ends at ${start}: it would be empty`);
    return { days: [...new Set(days as Weekday[])], start, end };
  });
}

function breaker(v: unknown): BreakerConfig {
  if (v === undefined || v === null) return { ...breakerDefaults, halfOpenSteps: [...breakerDefaults.halfOpenSteps] };
  if (typeof v !== 'object' || Array.isArray(v)) throw bad('breaker must be an object');
  const b = v as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!breakerFields.includes(k)) throw bad(`breaker has unknown field ${JSON.stringify(k)}; expected ${breakerFields.join(', ')}`);
  }
  if (b.enabled !== undefined && typeof b.enabled !== 'boolean') throw bad('breaker.enabled must be true or false');
  let steps = breakerDefaults.halfOpenSteps;
  if (b.halfOpenSteps !== undefined) {
    const s = b.halfOpenSteps;
    if (
      !Array.isArray(s) || s.length === 0 || s.length > 20 ||
      !s.every((x, i) => typeof x === 'number' && x > 0 && x <= 1 && (i === 0 || x >= (s[i - 1] as number))) ||
      s[s.length - 1] !== 1
    ) {
      throw bad('breaker.halfOpenSteps must be 1-20 non-decreasing shares in (0, 1] ending with 1, like [0.1, 0.25, 0.5, 1]');
    }
    steps = s as number[];
  }
  return {
    enabled: (b.enabled as boolean | undefined) ?? breakerDefaults.enabled,
    tripAtFraction: number(b.tripAtFraction, 'breaker.tripAtFraction', 0.5, 1, breakerDefaults.tripAtFraction),
    cooldownMs: Math.round(number(b.cooldownMs, 'breaker.cooldownMs', 0, 86_400_000, breakerDefaults.cooldownMs)),
    halfOpenSteps: [...steps],
    halfOpenStepMs: Math.round(number(b.halfOpenStepMs, 'breaker.halfOpenStepMs', 1_000, 3_600_000, breakerDefaults.halfOpenStepMs)),
    velocityMultiple: number(b.velocityMultiple, 'breaker.velocityMultiple', 1.5, 1_000, breakerDefaults.velocityMultiple),
    velocityWindowMs: Math.round(number(b.velocityWindowMs, 'breaker.velocityWindowMs', 10_000, 60_000, breakerDefaults.velocityWindowMs)),
  };
}

/**
 * Validates a create-or-replace body. `pathId`, when the ID comes from the URL, must match the body's
 * (or stands in for it). `version` is assigned by the registry, not taken from the client.
 */
export function parseCampaign(body: unknown, version: number, pathId?: string): CampaignConfig {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('INVALID_BODY', 'expected a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!fields.includes(k)) throw new ApiError('UNKNOWN_FIELD', `unknown field ${JSON.stringify(k)}`);
  }
  const rawId = b.id ?? pathId;
  if (rawId === undefined) throw new ApiError('MISSING_FIELD', 'id is required');
  if (typeof rawId !== 'string' || !campaignIdPattern.test(rawId)) {
    throw new ApiError('INVALID_CAMPAIGN_ID', `id must be 1-${limits.campaignIdLengthMax} characters of A-Z a-z 0-9 . _ : - (got ${JSON.stringify(rawId)})`);
  }
  if (pathId !== undefined && rawId !== pathId) throw bad(`id ${JSON.stringify(rawId)} differs from the URL's ${JSON.stringify(pathId)}`);

  const name = b.name ?? rawId;
  if (typeof name !== 'string' || name.length === 0 || name.length > limits.campaignNameLengthMax) {
    throw bad(`name must be a string of 1-${limits.campaignNameLengthMax} characters`);
  }
  const status = b.status ?? campaignDefaults.status;
  if (status !== 'ACTIVE' && status !== 'PAUSED') throw bad(`status must be ACTIVE or PAUSED (got ${JSON.stringify(status)})`);
  const timezone = b.timezone ?? campaignDefaults.timezone;
  if (typeof timezone !== 'string' || !isValidTimeZone(timezone)) {
    throw bad(`timezone must be an IANA time zone such as UTC or America/New_York (got ${JSON.stringify(timezone)})`);
  }
  const strategy = b.strategy ?? campaignDefaults.strategy;
  if (!strategies.includes(strategy as Strategy)) {
    throw bad(`strategy must be one of ${strategies.join(', ')} (got ${JSON.stringify(strategy)})`);
  }

  let hourlyWeights: number[] | null = null;
  if (b.hourlyWeights !== undefined && b.hourlyWeights !== null) {
    const w = b.hourlyWeights;
    if (!Array.isArray(w) || w.length !== 24 || !w.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0) ||
        w.reduce((s: number, x: number) => s + x, 0) <= 0) {
      throw bad('hourlyWeights must be 24 non-negative numbers (one per local hour) with a positive sum');
    }
    hourlyWeights = [...w] as number[];
  }
  if (strategy === 'CUSTOM' && hourlyWeights === null) throw new ApiError('MISSING_FIELD', 'strategy CUSTOM needs hourlyWeights');

  const startAtMs = instant(b.startAt, 'startAt');
  const endAtMs = instant(b.endAt, 'endAt');
  if (startAtMs !== null && endAtMs !== null && endAtMs <= startAtMs) throw bad('endAt must be after startAt');
  const lifetimeBudgetMicros =
    b.lifetimeBudgetMicros === undefined || b.lifetimeBudgetMicros === null ? null : money(b.lifetimeBudgetMicros, 'lifetimeBudgetMicros');

  let dailyBudgetMicros: Micros;
  if (b.dailyBudgetMicros === undefined || b.dailyBudgetMicros === null) {
    if (lifetimeBudgetMicros === null || endAtMs === null) {
      throw new ApiError('MISSING_FIELD', 'dailyBudgetMicros is required (or lifetimeBudgetMicros with endAt)');
    }
    dailyBudgetMicros = lifetimeBudgetMicros;
  } else {
    dailyBudgetMicros = money(b.dailyBudgetMicros, 'dailyBudgetMicros');
  }

  return {
    id: rawId,
    name,
    status,
    dailyBudgetMicros,
    timezone,
    strategy: strategy as Strategy,
    frontLoadedShare: number(b.frontLoadedShare, 'frontLoadedShare', 0.5, 0.95, campaignDefaults.frontLoadedShare),
    aheadPercent: number(b.aheadPercent, 'aheadPercent', 1, 100, campaignDefaults.aheadPercent),
    hourlyWeights,
    schedule: schedule(b.schedule),
    startAtMs,
    endAtMs,
    lifetimeBudgetMicros,
    catchUpMaxRatio: number(b.catchUpMaxRatio, 'catchUpMaxRatio', 1, 10, campaignDefaults.catchUpMaxRatio),
    velocityCapMultiple: number(b.velocityCapMultiple, 'velocityCapMultiple', 1, 1_000, campaignDefaults.velocityCapMultiple),
    breaker: breaker(b.breaker),
    version,
  };
}
