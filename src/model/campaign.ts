import { limits } from '../../shards/limits.js';
import type { Micros } from '../../shards/money.js';
import { isValidTimeZone } from '../../shards/time/zone.js';
import {
  type BreakerConfig,
  breakerDefaults,
  type CampaignMode,
  campaignModes,
  type ShadowConfig,
  campaignDefaults,
  type CampaignConfig,
  type ScheduleWindow,
  type Strategy,
  strategies,
  type Weekday,
  weekdays,
} from '../../shards/types.js';
import { ApiError } from '../http/errors.js';
import { instantFormat, parseInstant } from '../http/time.js';

/**
 * The campaign model, in one place: its fields, ID patterns, bounds, defaults, validation and merge
 * patch. The admin API, the router's ID checks, the simulator and the store adapters take it from
 * here. It imports nothing heavy (no database driver, no uWS), so any thread can load it.
 *
 * Validation resolves every default, so the shards receive a complete CampaignConfig; errors name
 * the field and the rule, and nothing is stored unless everything is valid.
 */

/** Campaign IDs: they become Redis keys and travel in a u8-length field (limits.campaignIdLengthMax). */
export const campaignIdPattern = /^[A-Za-z0-9._:-]{1,64}$/;
/** Request and event IDs: auction and impression IDs, UUIDs and base64 fit (limits.eventIdLengthMax). */
export const eventIdPattern = /^[A-Za-z0-9._:~+/=@|-]{1,128}$/;

export interface CampaignRecord {
  config: CampaignConfig;
  createdAt: string;
  updatedAt: string;
  /** When DELETE archived it; null while it is live. */
  archivedAt: string | null;
}

/** Fields a client writes. */
export const campaignFields = [
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
  'mode',
  'shadow',
] as const;
/** Fields of `shadow`: its strategy and that strategy's parameters (defaults: the campaign's). */
export const shadowFields = ['strategy', 'frontLoadedShare', 'aheadPercent', 'hourlyWeights'] as const;
/** Fields the pacer sets; a client may send them back unchanged from a GET (POST and PUT ignore them). */
export const readOnlyFields = ['version', 'createdAt', 'updatedAt', 'archived', 'archivedAt'] as const;
const allFields: readonly string[] = [...campaignFields, ...readOnlyFields];
const breakerFields = Object.keys(breakerDefaults);

/** Bounds of the numeric settings: what validation enforces and what the JSON Schema states. */
export const numericBounds = {
  frontLoadedShare: { min: 0.5, max: 0.95 },
  aheadPercent: { min: 1, max: 100 },
  catchUpMaxRatio: { min: 1, max: 10 },
  velocityCapMultiple: { min: 1, max: 1_000 },
  'breaker.tripAtFraction': { min: 0.5, max: 1 },
  'breaker.cooldownMs': { min: 0, max: 86_400_000 },
  'breaker.halfOpenStepMs': { min: 1_000, max: 3_600_000 },
  'breaker.velocityMultiple': { min: 1.5, max: 1_000 },
  'breaker.velocityWindowMs': { min: 10_000, max: 60_000 },
} as const;
type NumericField = keyof typeof numericBounds;

/** The campaign as the API shows it: the stored configuration with dates as ISO 8601. */
export function campaignToApi(record: CampaignRecord): Record<string, unknown> {
  const { config } = record;
  const { startAtMs, endAtMs, archived: _a, mode, shadow, ...rest } = config;
  return {
    ...rest,
    mode: mode ?? 'ENFORCE',
    shadow: shadow ?? null,
    startAt: startAtMs === null ? null : new Date(startAtMs).toISOString(),
    endAt: endAtMs === null ? null : new Date(endAtMs).toISOString(),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    archived: record.archivedAt !== null,
    archivedAt: record.archivedAt,
  };
}

/** The writable fields of a configuration as a request body (what a merge patch applies to). */
export function campaignToBody(config: CampaignConfig): Record<string, unknown> {
  const api = campaignToApi({ config, createdAt: '', updatedAt: '', archivedAt: null });
  const out: Record<string, unknown> = {};
  for (const f of campaignFields) if (api[f] !== null && api[f] !== undefined) out[f] = api[f];
  return out;
}

/**
 * JSON Merge Patch (RFC 7396): an object patch merges member by member, `null` removes a member,
 * anything else (arrays included) replaces. Returns a new value; neither input is changed.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * Applies a merge patch to a campaign and validates the result in full. The ID cannot change, and
 * read-only fields cannot be patched (they are the pacer's to set).
 */
export function patchCampaign(current: CampaignConfig, patch: unknown, version: number): CampaignConfig {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    throw new ApiError('INVALID_BODY', 'a merge patch must be a JSON object');
  }
  for (const k of Object.keys(patch)) {
    if ((readOnlyFields as readonly string[]).includes(k)) throw bad(`${k} is read-only`);
  }
  const p = patch as Record<string, unknown>;
  if ('id' in p && p.id !== current.id) throw bad(`id cannot be changed (the URL names ${JSON.stringify(current.id)})`);
  const merged = mergePatch(campaignToBody(current), patch);
  return parseCampaign(merged, version, current.id);
}

function bad(message: string): ApiError {
  return new ApiError('INVALID_FIELD', message);
}

/** JSON.stringify that cannot throw and stays short: for echoing client values in messages. */
export function show(v: unknown, max = 40): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    s = undefined;
  }
  if (s === undefined) s = typeof v === 'object' ? '(a value)' : String(v);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Display text (names, reasons, actors): well-formed Unicode without control characters. PostgreSQL
 * refuses NUL in text and jsonb, and control characters have no business in a display name.
 */
export function textProblem(v: string): string | null {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) return 'must not contain control characters';
  if (loneSurrogate.test(v)) return 'must be well-formed Unicode (no lone surrogates)';
  return null;
}

function number(v: unknown, field: NumericField, fallback: number): number {
  const { min, max } = numericBounds[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw bad(`${field} must be a number from ${min} to ${max} (got ${show(v)})`);
  }
  return v;
}

/** A budget in micros: a positive safe integer no larger than its documented maximum. */
export function budgetMicros(v: unknown, field: string, maxName: 'dailyBudgetMicrosMax' | 'lifetimeBudgetMicrosMax'): Micros {
  const max = limits[maxName];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0 || v > max) {
    throw new ApiError('INVALID_AMOUNT', `${field} must be a positive integer number of micros no larger than ${maxName} = ${max} (got ${show(v)})`);
  }
  return v as Micros;
}

/** Instants through the one strict parser (src/http/time.ts): 2026-02-30 is refused, not rolled over. */
function instant(v: unknown, field: string): number | null {
  if (v === undefined || v === null) return null;
  const ms = typeof v === 'string' ? parseInstant(v) : null;
  if (ms === null) throw bad(`${field} must be ${instantFormat} (got ${show(v)})`);
  return ms;
}

const clockPattern = /^([01]\d|2[0-3]):[0-5]\d$|^24:00$/;

function scheduleWindow(w: unknown, i: number): ScheduleWindow {
  if (typeof w !== 'object' || w === null || Array.isArray(w)) throw bad(`schedule[${i}] must be an object {days, start, end}`);
  const { days, start, end, ...extra } = w as Record<string, unknown>;
  const unknown = Object.keys(extra);
  if (unknown.length > 0) throw bad(`schedule[${i}] has unknown field ${show(unknown[0])}`);
  if (!Array.isArray(days) || days.length === 0 || !days.every((d) => weekdays.includes(d as Weekday))) {
    throw bad(`schedule[${i}].days must be a non-empty array of ${weekdays.join(', ')}`);
  }
  if (typeof start !== 'string' || !clockPattern.test(start) || start === '24:00') {
    throw bad(`schedule[${i}].start must be local time HH:MM from 00:00 to 23:59 (got ${show(start)})`);
  }
  if (typeof end !== 'string' || !clockPattern.test(end)) {
    throw bad(`schedule[${i}].end must be local time HH:MM from 00:00 to 24:00 (got ${show(end)})`);
  }
  if (start === end) throw bad(`schedule[${i}] starts and ends at ${start}: it would be empty`);
  return { days: [...new Set(days as Weekday[])], start, end };
}

function schedule(v: unknown): ScheduleWindow[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.length === 0 || v.length > 100) {
    throw bad('schedule must be an array of 1-100 windows {days, start, end}; omit it to be active all day');
  }
  return v.map(scheduleWindow);
}

function halfOpenSteps(s: unknown): number[] {
  if (s === undefined) return [...breakerDefaults.halfOpenSteps];
  if (
    !Array.isArray(s) || s.length === 0 || s.length > 20 ||
    !s.every((x, i) => typeof x === 'number' && x > 0 && x <= 1 && (i === 0 || x >= (s[i - 1] as number))) ||
    s[s.length - 1] !== 1
  ) {
    throw bad('breaker.halfOpenSteps must be 1-20 non-decreasing shares in (0, 1] ending with 1, like [0.1, 0.25, 0.5, 1]');
  }
  return [...(s as number[])];
}

function breaker(v: unknown): BreakerConfig {
  if (v === undefined || v === null) return { ...breakerDefaults, halfOpenSteps: [...breakerDefaults.halfOpenSteps] };
  if (typeof v !== 'object' || Array.isArray(v)) throw bad('breaker must be an object');
  const b = v as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!breakerFields.includes(k)) throw bad(`breaker has unknown field ${show(k)}; expected ${breakerFields.join(', ')}`);
  }
  if (b.enabled !== undefined && typeof b.enabled !== 'boolean') throw bad('breaker.enabled must be true or false');
  return {
    enabled: (b.enabled as boolean | undefined) ?? breakerDefaults.enabled,
    tripAtFraction: number(b.tripAtFraction, 'breaker.tripAtFraction', breakerDefaults.tripAtFraction),
    cooldownMs: Math.round(number(b.cooldownMs, 'breaker.cooldownMs', breakerDefaults.cooldownMs)),
    halfOpenSteps: halfOpenSteps(b.halfOpenSteps),
    halfOpenStepMs: Math.round(number(b.halfOpenStepMs, 'breaker.halfOpenStepMs', breakerDefaults.halfOpenStepMs)),
    velocityMultiple: number(b.velocityMultiple, 'breaker.velocityMultiple', breakerDefaults.velocityMultiple),
    velocityWindowMs: Math.round(number(b.velocityWindowMs, 'breaker.velocityWindowMs', breakerDefaults.velocityWindowMs)),
  };
}

function hourlyWeights(w: unknown): number[] | null {
  if (w === undefined || w === null) return null;
  const ok = Array.isArray(w) && w.length === 24 && w.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0);
  // Each weight finite is not enough: 24 weights near 1e308 sum to Infinity and every share to 0.
  const sum = ok ? (w as number[]).reduce((s, x) => s + x, 0) : NaN;
  if (!ok || !Number.isFinite(sum) || sum <= 0) {
    throw bad('hourlyWeights must be 24 non-negative numbers (one per local hour) with a positive, finite sum');
  }
  return [...(w as number[])];
}

function idOf(b: Record<string, unknown>, pathId: string | undefined): string {
  const rawId = b.id ?? pathId;
  if (rawId === undefined) throw new ApiError('MISSING_FIELD', 'id is required');
  if (typeof rawId !== 'string' || !campaignIdPattern.test(rawId)) {
    throw new ApiError('INVALID_CAMPAIGN_ID', `id must be 1-${limits.campaignIdLengthMax} characters of A-Z a-z 0-9 . _ : - (got ${show(rawId)})`);
  }
  if (pathId !== undefined && rawId !== pathId) throw bad(`id ${show(rawId)} differs from the URL's ${show(pathId)}`);
  return rawId;
}

function nameOf(v: unknown, id: string): string {
  const name = v ?? id;
  if (typeof name !== 'string' || name.length === 0 || name.length > limits.campaignNameLengthMax) {
    throw bad(`name must be a string of 1-${limits.campaignNameLengthMax} characters`);
  }
  const problem = textProblem(name);
  if (problem !== null) throw bad(`name ${problem}`);
  return name;
}

function enumOf<T extends string>(v: unknown, field: string, allowed: readonly T[], fallback: T): T {
  const x = v ?? fallback;
  if (!allowed.includes(x as T)) throw bad(`${field} must be one of ${allowed.join(', ')} (got ${show(x)})`);
  return x as T;
}

function dailyOf(v: unknown, lifetime: Micros | null, endAtMs: number | null): Micros {
  if (v !== undefined && v !== null) return budgetMicros(v, 'dailyBudgetMicros', 'dailyBudgetMicrosMax');
  if (lifetime === null || endAtMs === null) {
    throw new ApiError('MISSING_FIELD', 'dailyBudgetMicros is required (or lifetimeBudgetMicros with endAt)');
  }
  return Math.min(lifetime, limits.dailyBudgetMicrosMax) as Micros;
}

/**
 * `shadow`: null or absent for none, else {strategy, frontLoadedShare?, aheadPercent?,
 * hourlyWeights?}; parameters not given are the campaign's own (resolved here, so the shard
 * receives them complete).
 */
function shadowOf(v: unknown, own: { frontLoadedShare: number; aheadPercent: number; hourlyWeights: number[] | null }): ShadowConfig | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw bad('shadow must be an object {strategy, frontLoadedShare?, aheadPercent?, hourlyWeights?} or null');
  const s = v as Record<string, unknown>;
  for (const k of Object.keys(s)) {
    if (!(shadowFields as readonly string[]).includes(k)) {
      throw new ApiError('UNKNOWN_FIELD', `shadow has unknown field ${show(k)}; expected ${shadowFields.join(', ')}`);
    }
  }
  if (s.strategy === undefined || s.strategy === null) throw new ApiError('MISSING_FIELD', 'shadow.strategy is required');
  const strategy = enumOf<Strategy>(s.strategy, 'shadow.strategy', strategies, campaignDefaults.strategy);
  const weights = s.hourlyWeights === undefined ? own.hourlyWeights : shadowWeights(s.hourlyWeights);
  if (strategy === 'CUSTOM' && weights === null) throw new ApiError('MISSING_FIELD', 'shadow.strategy CUSTOM needs hourlyWeights (in shadow or the campaign\'s)');
  return {
    strategy,
    frontLoadedShare: shadowNumber(s.frontLoadedShare, 'frontLoadedShare', own.frontLoadedShare),
    aheadPercent: shadowNumber(s.aheadPercent, 'aheadPercent', own.aheadPercent),
    hourlyWeights: weights,
  };
}

function shadowWeights(w: unknown): number[] | null {
  try {
    return hourlyWeights(w);
  } catch (err) {
    throw bad(`shadow.${(err as Error).message}`);
  }
}

function shadowNumber(v: unknown, field: 'frontLoadedShare' | 'aheadPercent', fallback: number): number {
  try {
    return number(v, field, fallback);
  } catch (err) {
    throw bad(`shadow.${(err as Error).message}`);
  }
}

/**
 * Validates a create-or-replace body. `pathId`, when the ID comes from the URL, must match the body's
 * (or stands in for it). `version` is assigned by the admin, not taken from the client; read-only
 * fields sent back from a GET are ignored. The result is live (not archived).
 */
export function parseCampaign(body: unknown, version: number, pathId?: string): CampaignConfig {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('INVALID_BODY', 'expected a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!allFields.includes(k)) throw new ApiError('UNKNOWN_FIELD', `unknown field ${show(k)}`);
  }
  const id = idOf(b, pathId);
  const strategy = enumOf<Strategy>(b.strategy, 'strategy', strategies, campaignDefaults.strategy);
  const weights = hourlyWeights(b.hourlyWeights);
  if (strategy === 'CUSTOM' && weights === null) throw new ApiError('MISSING_FIELD', 'strategy CUSTOM needs hourlyWeights');
  const timezone = b.timezone ?? campaignDefaults.timezone;
  if (typeof timezone !== 'string' || !isValidTimeZone(timezone)) {
    throw bad(`timezone must be an IANA time zone such as UTC or America/New_York (got ${show(timezone)})`);
  }
  const startAtMs = instant(b.startAt, 'startAt');
  const endAtMs = instant(b.endAt, 'endAt');
  if (startAtMs !== null && endAtMs !== null && endAtMs <= startAtMs) throw bad('endAt must be after startAt');
  const lifetimeBudgetMicros =
    b.lifetimeBudgetMicros === undefined || b.lifetimeBudgetMicros === null
      ? null
      : budgetMicros(b.lifetimeBudgetMicros, 'lifetimeBudgetMicros', 'lifetimeBudgetMicrosMax');
  const frontLoadedShare = number(b.frontLoadedShare, 'frontLoadedShare', campaignDefaults.frontLoadedShare);
  const aheadPercent = number(b.aheadPercent, 'aheadPercent', campaignDefaults.aheadPercent);
  const mode = enumOf<CampaignMode>(b.mode, 'mode', campaignModes, 'ENFORCE');
  const shadow = shadowOf(b.shadow, { frontLoadedShare, aheadPercent, hourlyWeights: weights });
  return {
    id,
    name: nameOf(b.name, id),
    status: enumOf(b.status, 'status', ['ACTIVE', 'PAUSED'] as const, campaignDefaults.status),
    dailyBudgetMicros: dailyOf(b.dailyBudgetMicros, lifetimeBudgetMicros, endAtMs),
    timezone,
    strategy,
    frontLoadedShare,
    aheadPercent,
    hourlyWeights: weights,
    schedule: schedule(b.schedule),
    startAtMs,
    endAtMs,
    lifetimeBudgetMicros,
    catchUpMaxRatio: number(b.catchUpMaxRatio, 'catchUpMaxRatio', campaignDefaults.catchUpMaxRatio),
    velocityCapMultiple: number(b.velocityCapMultiple, 'velocityCapMultiple', campaignDefaults.velocityCapMultiple),
    breaker: breaker(b.breaker),
    version,
    archived: false,
    // Only when not the default: a campaign without them keeps the configuration's shape and size.
    ...(mode === 'SHADOW' ? { mode } : {}),
    ...(shadow !== null ? { shadow } : {}),
  };
}

/**
 * JSON Schema (2020-12, as OpenAPI 3.1 uses) of a create-or-replace body, built from the same
 * constants validation uses, so a generated API description cannot drift from the code. It states
 * the shapes and bounds; rules across fields (CUSTOM needs hourlyWeights, endAt after startAt, a
 * finite sum of weights, no control characters in name) are enforced by parseCampaign alone.
 */
export function campaignBodySchema(): Record<string, unknown> {
  const num = (field: NumericField, fallback: number): Record<string, unknown> => ({
    type: 'number', minimum: numericBounds[field].min, maximum: numericBounds[field].max, default: fallback,
  });
  const micros = (max: number): Record<string, unknown> => ({ type: 'integer', minimum: 1, maximum: max, description: 'integer micros' });
  const instantSchema = { type: ['string', 'null'], format: 'date-time' };
  const clock = { type: 'string', pattern: '^([01]\\d|2[0-3]):[0-5]\\d$|^24:00$' };
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      id: { type: 'string', pattern: campaignIdPattern.source },
      name: { type: 'string', minLength: 1, maxLength: limits.campaignNameLengthMax },
      status: { enum: ['ACTIVE', 'PAUSED'], default: campaignDefaults.status },
      dailyBudgetMicros: micros(limits.dailyBudgetMicrosMax),
      timezone: { type: 'string', default: campaignDefaults.timezone, description: 'IANA time zone' },
      strategy: { enum: [...strategies], default: campaignDefaults.strategy },
      frontLoadedShare: num('frontLoadedShare', campaignDefaults.frontLoadedShare),
      aheadPercent: num('aheadPercent', campaignDefaults.aheadPercent),
      hourlyWeights: { type: ['array', 'null'], items: { type: 'number', minimum: 0 }, minItems: 24, maxItems: 24 },
      schedule: {
        type: ['array', 'null'], minItems: 1, maxItems: 100,
        items: {
          type: 'object', additionalProperties: false, required: ['days', 'start', 'end'],
          properties: { days: { type: 'array', minItems: 1, items: { enum: [...weekdays] } }, start: clock, end: clock },
        },
      },
      startAt: instantSchema,
      endAt: instantSchema,
      lifetimeBudgetMicros: { ...micros(limits.lifetimeBudgetMicrosMax), type: ['integer', 'null'] },
      catchUpMaxRatio: num('catchUpMaxRatio', campaignDefaults.catchUpMaxRatio),
      velocityCapMultiple: num('velocityCapMultiple', campaignDefaults.velocityCapMultiple),
      breaker: {
        type: ['object', 'null'], additionalProperties: false,
        properties: {
          enabled: { type: 'boolean', default: breakerDefaults.enabled },
          tripAtFraction: num('breaker.tripAtFraction', breakerDefaults.tripAtFraction),
          cooldownMs: num('breaker.cooldownMs', breakerDefaults.cooldownMs),
          halfOpenSteps: { type: 'array', minItems: 1, maxItems: 20, items: { type: 'number', exclusiveMinimum: 0, maximum: 1 } },
          halfOpenStepMs: num('breaker.halfOpenStepMs', breakerDefaults.halfOpenStepMs),
          velocityMultiple: num('breaker.velocityMultiple', breakerDefaults.velocityMultiple),
          velocityWindowMs: num('breaker.velocityWindowMs', breakerDefaults.velocityWindowMs),
        },
      },
      mode: { enum: [...campaignModes], default: 'ENFORCE', description: 'SHADOW: every decision is allowed; the answer the pacer would have given is recorded (wouldAllow, wouldReason)' },
      shadow: {
        type: ['object', 'null'], additionalProperties: false, required: ['strategy'],
        description: 'a second strategy computed for every decision against its own would-be counters, never enforced',
        properties: {
          strategy: { enum: [...strategies] },
          frontLoadedShare: num('frontLoadedShare', campaignDefaults.frontLoadedShare),
          aheadPercent: num('aheadPercent', campaignDefaults.aheadPercent),
          hourlyWeights: { type: ['array', 'null'], items: { type: 'number', minimum: 0 }, minItems: 24, maxItems: 24 },
        },
      },
      // Read-only: accepted back from a GET and ignored.
      version: { type: 'integer', readOnly: true },
      createdAt: { type: 'string', format: 'date-time', readOnly: true },
      updatedAt: { type: 'string', format: 'date-time', readOnly: true },
      archived: { type: 'boolean', readOnly: true },
      archivedAt: { type: ['string', 'null'], format: 'date-time', readOnly: true },
    },
  };
}
