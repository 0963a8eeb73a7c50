import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpRequest, TemplatedApp } from 'uWebSockets.js';
import { limits } from '../../shards/limits.js';
import { buildDayPlan, dailyAllowance } from '../../shards/pacing/day.js';
import { dayBounds, type DayBounds, localToEpoch, offsetMs } from '../../shards/time/zone.js';
import { shadowConfigOf, wantsShadow } from '../../shards/pacing/shadow-config.js';
import { type CampaignConfig, type Strategy, strategies } from '../../shards/types.js';
import type { ShadowMinute } from '../store/sql-config.js';
import { ApiError } from '../http/errors.js';
import { type Res, sendError, sendJson } from '../http/respond.js';
import { log } from '../log.js';
import { measure, type Measured } from '../sim/metrics.js';
import type { RollupBucket } from '../store/sql-config.js';
import type { CampaignRecord } from './campaign-schema.js';
import type { ListingFields } from '../model/table.js';
import { bucketEdges, HistoryReader, type HistoryStep, historyRangeMsMax, historySteps } from './history.js';
import type { ConfigStore } from './registry.js';
import { instantFormat, parseInstant } from '../http/time.js';

/**
 * The read side of the management API: a campaign's history in buckets of its own zone, its day
 * report (plan against spend per local hour, with the simulator's metrics), the fleet report that
 * finds the campaigns furthest off plan, and the OpenAPI document. Everything here only reads;
 * the sums come from the database (src/store/sql-config.ts), the plan from the shards' own code
 * (shards/pacing/day.ts), the metrics from the simulator's (src/sim/metrics.ts).
 */

/** What reports need of the campaign catalogue (src/admin/campaigns.ts). */
export interface Catalogue {
  get(id: string): CampaignRecord | undefined;
  /** Every campaign, in no particular order (the fleet report sorts them itself). */
  all(): Iterable<CampaignRecord>;
  /** The campaigns whose listing fields pass keep, records built only for them (src/model/table.ts). */
  where(keep: (c: ListingFields) => boolean): Iterable<CampaignRecord>;
  /** Their IDs, no record built. */
  idsWhere(keep: (c: ListingFields) => boolean): string[];
}

export type ReportHandler = (res: Res, params: string[], ctx: { query: URLSearchParams }) => Promise<void> | void;
/** The admin app's authenticated route helper (src/admin/app.ts). */
export type ReportRoute = (method: 'get', pattern: string, withBody: false, handler: ReportHandler) => void;

/** The admin API closes the connection after every answer (see src/admin/app.ts). */
const answer = (res: Res, status: number, body: unknown): void => sendJson(res, status, JSON.stringify(body), true);

export function registerReports(app: TemplatedApp, route: ReportRoute, catalogue: Catalogue, store: ConfigStore): void {
  const reader = new HistoryReader(store);
  route('get', '/v1/campaigns/:id/history', false, async (res, [id], { query }) => {
    answer(res, 200, await historyOf(reader, known(catalogue, id!), query));
  });
  route('get', '/v1/campaigns/:id/report', false, async (res, [id], { query }) => {
    answer(res, 200, await reportOf(reader, known(catalogue, id!), query));
  });
  route('get', '/v1/report', false, async (res, _params, { query }) => {
    answer(res, 200, await fleetReport(reader, catalogue, query));
  });
  // The API's description carries no secret and changes nothing: served without the token, like
  // /metrics, so a client generator can fetch it before it has one.
  app.get('/v1/openapi.json', (res: Res, req: HttpRequest) => {
    accessLog(res, 'GET', '/v1/openapi.json', req.getHeader('x-pacer-actor'));
    // Answered at once after the first request; that one waits for the YAML parser to load.
    res.onAborted(() => {
      res.aborted = true;
    });
    openApiJson().then(
      (doc) => {
        if (!res.aborted) res.cork(() => res.writeHeader('content-type', 'application/json').end(doc, true));
      },
      (err: unknown) => {
        sendError(res, new ApiError('INTERNAL', `the OpenAPI document could not be read: ${(err as Error).message}`), true);
      },
    );
  });
}

// ---- access log ------------------------------------------------------------------------------------

/**
 * Logs one admin request when it is answered: method, route pattern (never the concrete path, which
 * may carry campaign IDs an operator considers private, and never a body, query or header but the
 * actor), status and duration. Wraps the response's writeStatus and end for this one request.
 */
export function accessLog(res: Res, method: string, pattern: string, actorHeader: string): void {
  const startedMs = performance.now();
  const actor = (actorHeader || 'admin-token').slice(0, 200);
  let status = 200;
  let logged = false;
  const writeStatus = res.writeStatus.bind(res);
  const end = res.end.bind(res);
  const line = (): void => {
    if (logged) return;
    logged = true;
    log('info', 'admin request', { method, route: pattern, status, durationMs: Math.round((performance.now() - startedMs) * 100) / 100, actor });
  };
  res.writeStatus = (s: string) => {
    status = Number.parseInt(s, 10) || status;
    return writeStatus(s);
  };
  res.end = (body?: Parameters<Res['end']>[0], close?: boolean) => {
    line();
    return end(body, close);
  };
}

// ---- parameters ------------------------------------------------------------------------------------

function known(catalogue: Catalogue, id: string): CampaignRecord {
  const record = catalogue.get(id);
  if (record === undefined) throw new ApiError('UNKNOWN_CAMPAIGN', `no campaign ${JSON.stringify(id)}`);
  return record;
}

function quoted(raw: string): string {
  return JSON.stringify(raw.slice(0, 40));
}

/** Times from 1970 to the end of year 9999: the zone arithmetic and ISO output hold there. */
const instantMsMax = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

function timeParam(query: URLSearchParams, name: string, fallback: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  // The one strict parser (src/http/time.ts): 2026-02-30 is refused, not rolled over into March.
  const ms = parseInstant(raw);
  if (ms === null || ms < 0 || ms > instantMsMax) {
    throw new ApiError('INVALID_FIELD', `${name} must be ${instantFormat}, from 1970 to 9999 (got ${quoted(raw)})`);
  }
  return ms;
}

function stepParam(query: URLSearchParams): HistoryStep {
  const raw = query.get('step');
  if (raw === null || raw === '') return 'minute';
  if (!(historySteps as readonly string[]).includes(raw)) {
    throw new ApiError('INVALID_FIELD', `step must be one of ${historySteps.join(', ')} (got ${quoted(raw)})`);
  }
  return raw as HistoryStep;
}

/** A local calendar date YYYY-MM-DD that exists. */
function dayParam(query: URLSearchParams, fallback: (() => string) | null): string {
  const raw = query.get('day');
  if (raw === null || raw === '') {
    if (fallback === null) throw new ApiError('MISSING_FIELD', 'the query parameter day (YYYY-MM-DD) is required');
    return fallback();
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(raw);
  const d = m === null ? null : new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  if (d === null || Number(m![1]) < 1970 || d.toISOString().slice(0, 10) !== raw) {
    throw new ApiError('INVALID_FIELD', `day must be a calendar date YYYY-MM-DD from 1970 (got ${quoted(raw)})`);
  }
  return raw;
}

function limitParam(query: URLSearchParams): number {
  const raw = query.get('limit');
  if (raw === null || raw === '') return limits.fleetReportPageDefault;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1 || n > limits.fleetReportPageMax) {
    throw new ApiError('INVALID_FIELD', `limit must be an integer from 1 to ${limits.fleetReportPageMax} (got ${quoted(raw)})`);
  }
  return n;
}

/** A local day of a zone by its date: 23, 24 or 25 hours. */
function localDay(timeZone: string, day: string): DayBounds {
  const [year, month, date] = day.split('-').map(Number) as [number, number, number];
  return dayBounds(timeZone, localToEpoch(timeZone, { year, month, day: date }, 0));
}

function reading<T>(p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    throw new ApiError('STORE_UNAVAILABLE', `the configuration database did not answer: ${(err as Error).message}`);
  });
}

/** An instant as local ISO 8601 with the zone's offset then, e.g. 2025-11-02T01:00:00-05:00. */
export function localIso(timeZone: string, epochMs: number): string {
  const off = offsetMs(timeZone, epochMs);
  const abs = Math.abs(off) / 60_000;
  const sign = off < 0 ? '-' : '+';
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${new Date(epochMs + off).toISOString().slice(0, 19)}${sign}${hh}:${mm}`;
}

const iso = (ms: number): string => new Date(ms).toISOString();

// ---- history ---------------------------------------------------------------------------------------

async function historyOf(reader: HistoryReader, record: CampaignRecord, query: URLSearchParams): Promise<unknown> {
  const { id, timezone } = record.config;
  const step = stepParam(query);
  const toMs = timeParam(query, 'to', Date.now());
  const fromMs = timeParam(query, 'from', toMs - 3_600_000);
  if (fromMs >= toMs) throw new ApiError('INVALID_FIELD', 'from must be before to');
  const max = historyRangeMsMax[step];
  if (toMs - fromMs > max) {
    throw new ApiError('RANGE_TOO_LARGE', `step=${step} spans at most ${max / 86_400_000} days per request; ask for a shorter range or a longer step`);
  }
  const edges = bucketEdges(timezone, fromMs, toMs, step);
  const first = edges[0]!;
  const last = edges[edges.length - 1]!;
  const [rows, breakers] = await reading(Promise.all([reader.rollup(id, edges), reader.breakers(id, first, last)]));
  const byIndex = new Map(rows.map((r) => [r.index, r]));
  return {
    campaignId: id,
    timezone,
    step,
    from: iso(first),
    to: iso(last),
    buckets: edges.slice(0, -1).map((s, i) => bucketJson(timezone, s, edges[i + 1]!, byIndex.get(i))),
    breakerEvents: breakers.map(({ atMs, from, to, reason }) => ({ at: iso(atMs), from, to, reason })),
  };
}

function bucketJson(timeZone: string, startMs: number, endMs: number, r: RollupBucket | undefined): Record<string, unknown> {
  return {
    start: iso(startMs),
    end: iso(endMs),
    localStart: localIso(timeZone, startMs),
    decisions: r?.decisions ?? 0,
    allowed: r?.allowed ?? 0,
    denied: r?.denied ?? 0,
    deniedByReason: r?.deniedByReason ?? {},
    spendEvents: r?.spendEvents ?? 0,
    settledMicros: r?.settledMicros ?? 0,
    duplicateEvents: r?.duplicateEvents ?? 0,
    unmatchedEvents: r?.unmatchedEvents ?? 0,
    expiredReservations: r?.expiredReservations ?? 0,
    budgetMicros: r?.budgetMicros ?? null,
    throttle: r?.throttle ?? null,
    breakerState: r?.breakerState ?? null,
  };
}

// ---- the day report --------------------------------------------------------------------------------

/**
 * The plan of a campaign-day, from the code the shards plan with. ADAPTIVE's learned traffic
 * profile lives only in its shard's memory, so the report plans ADAPTIVE evenly (as the shard does
 * before it has learned one); every other strategy gets exactly the shard's curve.
 */
function planOf(config: CampaignConfig, day: DayBounds) {
  return buildDayPlan(config, day.startMs, null, 0);
}

/** The simulator's metrics for one day's spend by minute, or null when the day had no budget. */
function metricsOf(config: CampaignConfig, day: DayBounds, budget: number, spentByMinute: Float64Array): Measured | null {
  if (!(budget > 0)) return null;
  return measure({ curve: planOf(config, day).curve, budget, dayStartMs: day.startMs, dayEndMs: day.endMs, spentByMinute });
}

async function reportOf(reader: HistoryReader, record: CampaignRecord, query: URLSearchParams): Promise<unknown> {
  const { config } = record;
  const tz = config.timezone;
  const dayKey = dayParam(query, () => dayBounds(tz, Date.now()).key);
  const day = localDay(tz, dayKey);
  const hourEdges = bucketEdges(tz, day.startMs, day.endMs, 'hour');
  const minuteEdges = bucketEdges(tz, day.startMs, day.endMs, 'minute');
  const [hours, minutes, breakers, raw] = await reading(Promise.all([
    reader.rollup(config.id, hourEdges),
    reader.rollup(config.id, minuteEdges),
    reader.breakers(config.id, day.startMs, day.endMs),
    reader.shadowMinutes(config.id, day.startMs, day.endMs),
  ]));
  const plan = planOf(config, day);
  // The shard's own budget for the day (it includes a lifetime campaign's allowance), else the plan's.
  const budget = minutes.length > 0 ? minutes[minutes.length - 1]!.budgetMicros : plan.budgetMicros;
  const spentByMinute = new Float64Array(minuteEdges.length - 1);
  for (const m of minutes) spentByMinute[m.index] = m.settledMicros;
  const measured = metricsOf(config, day, budget, spentByMinute);
  const byIndex = new Map(hours.map((r) => [r.index, r]));
  let spent = 0;
  let exhaustedAt: string | null = null;
  for (let i = 0; i < spentByMinute.length; i++) {
    spent += spentByMinute[i]!;
    if (exhaustedAt === null && budget > 0 && spent >= 0.99 * budget) exhaustedAt = iso(Math.min(day.endMs, day.startMs + (i + 1) * 60_000));
  }
  return {
    campaignId: config.id,
    day: day.key,
    timezone: tz,
    start: iso(day.startMs),
    end: iso(day.endMs),
    strategy: config.strategy,
    budgetMicros: budget,
    spentMicros: spent,
    ...dayMetrics(measured),
    exhaustedAt,
    mode: config.mode ?? 'ENFORCE',
    shadow: shadowReport(config, day, budget, raw, hourEdges, spentByMinute),
    breakerTrips: breakers.filter((b) => b.reason === 'TRIP_FRACTION' || b.reason === 'TRIP_VELOCITY').length,
    hours: hourEdges.slice(0, -1).map((s, k) => {
      const e = hourEdges[k + 1]!;
      const r = byIndex.get(k);
      return {
        hour: k,
        start: iso(s),
        end: iso(e),
        localStart: localIso(tz, s),
        planMicros: Math.round(budget * (plan.curve.fraction(e) - plan.curve.fraction(s))),
        spentMicros: r?.settledMicros ?? 0,
        wins: r?.spendEvents ?? 0,
        decisions: r?.decisions ?? 0,
        allowed: r?.allowed ?? 0,
        denied: r?.denied ?? 0,
        deniedByReason: r?.deniedByReason ?? {},
      };
    }),
  };
}

/**
 * The shadow's side of the day report (shards/pacing/shadow.ts): the same figures as the real
 * side, from the shadow's columns of the minute history, against the shadow strategy's plan of the
 * same budget. A minute without shadow figures (before the shadow existed) counts the real spend,
 * as the shadow starts from the real settled spend when it is created. Null when no minute of the
 * day had a shadow.
 */
function shadowReport(
  config: CampaignConfig,
  day: DayBounds,
  budget: number,
  raw: readonly ShadowMinute[],
  hourEdges: readonly number[],
  realByMinute: Float64Array,
): Record<string, unknown> | null {
  const first = raw[0];
  const last = raw[raw.length - 1];
  if (first === undefined || last === undefined) return null;
  const strategy: Strategy = wantsShadow(config) ? shadowConfigOf(config).strategy : (last.shadow.strategy as Strategy);
  const shadowConfig: CampaignConfig = wantsShadow(config) ? shadowConfigOf(config) : { ...config, strategy };
  const byMinute = new Float64Array(realByMinute.length);
  const firstIndex = Math.floor((first.minuteMs - day.startMs) / 60_000);
  for (let i = 0; i < firstIndex && i < byMinute.length; i++) byMinute[i] = realByMinute[i]!;
  let decisions = 0;
  let allowed = 0;
  let estimated = 0;
  const deniedByReason: Record<string, number> = {};
  const hourly = hourEdges.slice(0, -1).map(() => ({ decisions: 0, allowed: 0, spentMicros: 0 }));
  for (const m of raw) {
    const s = m.shadow;
    const i = Math.floor((m.minuteMs - day.startMs) / 60_000);
    if (i < 0 || i >= byMinute.length) continue;
    byMinute[i] = byMinute[i]! + s.settledMicros;
    decisions += s.decisions;
    allowed += s.allowed;
    estimated += s.estimatedMicros;
    for (const [k, v] of Object.entries(s.deniedByReason)) deniedByReason[k] = (deniedByReason[k] ?? 0) + v;
    const h = hourly[Math.min(hourly.length - 1, Math.floor(i / 60))]!;
    h.decisions += s.decisions;
    h.allowed += s.allowed;
  }
  let spent = 0;
  let exhaustedAt: string | null = null;
  for (let i = 0; i < byMinute.length; i++) {
    spent += byMinute[i]!;
    hourly[Math.min(hourly.length - 1, Math.floor(i / 60))]!.spentMicros += byMinute[i]!;
    if (exhaustedAt === null && budget > 0 && spent >= 0.99 * budget) exhaustedAt = iso(Math.min(day.endMs, day.startMs + (i + 1) * 60_000));
  }
  const plan = planOf(shadowConfig, day);
  const measured = budget > 0 ? measure({ curve: plan.curve, budget, dayStartMs: day.startMs, dayEndMs: day.endMs, spentByMinute: byMinute }) : null;
  return {
    strategy,
    since: iso(first.minuteMs),
    decisions,
    allowed,
    deniedByReason,
    spentMicros: spent,
    estimatedMicros: estimated,
    ...dayMetrics(measured),
    exhaustedAt,
    hours: hourEdges.slice(0, -1).map((s, k) => ({
      hour: k,
      planMicros: Math.round(budget * (plan.curve.fraction(hourEdges[k + 1]!) - plan.curve.fraction(s))),
      ...hourly[k]!,
    })),
  };
}

// ---- the fleet report ------------------------------------------------------------------------------

interface FleetRow {
  campaignId: string;
  name: string;
  timezone: string;
  budgetMicros: number;
  spentMicros: number;
  deliveryRatio: number | null;
  slotNrmse: number | null;
}

/** Worst first: the largest slot pacing error, then the lowest delivery; no budget last; then id. */
function worseFirst(a: FleetRow, b: FleetRow): number {
  const ea = a.slotNrmse ?? -1;
  const eb = b.slotNrmse ?? -1;
  if (ea !== eb) return eb - ea;
  const da = a.deliveryRatio ?? Infinity;
  const db = b.deliveryRatio ?? Infinity;
  if (da !== db) return da - db;
  return a.campaignId < b.campaignId ? -1 : a.campaignId > b.campaignId ? 1 : 0;
}

interface Cursor {
  day: string;
  after: FleetRow;
}

function decodeCursor(raw: string | null, day: string): Cursor | null {
  if (raw === null || raw === '') return null;
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { d?: unknown; e?: unknown; r?: unknown; i?: unknown };
    if (c.d !== day || typeof c.i !== 'string' || (c.e !== null && typeof c.e !== 'number') || (c.r !== null && typeof c.r !== 'number')) throw new Error('shape');
    const after: FleetRow = { campaignId: c.i, name: '', timezone: '', budgetMicros: 0, spentMicros: 0, slotNrmse: c.e as number | null, deliveryRatio: c.r as number | null };
    return { day, after };
  } catch {
    throw new ApiError('INVALID_FIELD', 'cursor is not one this report gave for this day; start without a cursor');
  }
}

function encodeCursor(day: string, row: FleetRow): string {
  return Buffer.from(JSON.stringify({ d: day, e: row.slotNrmse, r: row.deliveryRatio, i: row.campaignId }), 'utf8').toString('base64url');
}

async function fleetReport(reader: HistoryReader, catalogue: Catalogue, query: URLSearchParams): Promise<unknown> {
  const day = dayParam(query, null);
  const limit = limitParam(query);
  const cursor = decodeCursor(query.get('cursor'), day);
  const keep = fleetFilter(query);
  // Archived campaigns leave the fleet view as they leave the default listing. The catalogue builds
  // a record when it is read (src/model/table.ts) and filters on its columns: the IDs for the spend
  // first, then a row per matching campaign, so a million records are never held at once.
  const ids = catalogue.idsWhere(keep);
  const quarters = await reading(reader.daySpend(day, ids));
  const byCampaign = new Map<string, { quarterMs: number; settledMicros: number; budgetMicros: number }[]>();
  for (const q of quarters) {
    const list = byCampaign.get(q.campaignId) ?? [];
    list.push(q);
    byCampaign.set(q.campaignId, list);
  }
  const plans = new FleetPlans(day);
  // The catalogue as it is now (one changed while the spend was read is shown as changed).
  const rows: FleetRow[] = [];
  for (const r of catalogue.where(keep)) rows.push(fleetRow(r.config, plans, byCampaign.get(r.config.id) ?? []));
  rows.sort(worseFirst);
  const start = cursor === null ? 0 : rows.findIndex((r) => worseFirst(r, cursor.after) > 0);
  const page = start < 0 ? [] : rows.slice(start, start + limit);
  const more = start >= 0 && start + limit < rows.length;
  return { day, campaigns: page, nextCursor: more ? encodeCursor(day, page[page.length - 1]!) : null };
}

/**
 * The fleet report's optional filters, with the listing's meaning (GET /v1/campaigns): `status`,
 * `strategy`, and `q`, a prefix of the id or of the name, and never an archived campaign. The
 * dashboard's fleet page uses them. They read the catalogue's columns (src/model/table.ts).
 */
function fleetFilter(query: URLSearchParams): (c: ListingFields) => boolean {
  const status = query.get('status') || null;
  const strategy = query.get('strategy') || null;
  const q = query.get('q') || null;
  if (status !== null && status !== 'ACTIVE' && status !== 'PAUSED') throw new ApiError('INVALID_FIELD', `status must be ACTIVE or PAUSED (got ${quoted(status)})`);
  if (strategy !== null && !(strategies as readonly string[]).includes(strategy)) {
    throw new ApiError('INVALID_FIELD', `strategy must be one of ${strategies.join(', ')} (got ${quoted(strategy)})`);
  }
  if (q !== null && q.length > limits.campaignNameLengthMax) throw new ApiError('INVALID_FIELD', `q is at most ${limits.campaignNameLengthMax} characters`);
  return (c) =>
    !c.archived &&
    (status === null || c.status === status) &&
    (strategy === null || c.strategy === strategy) &&
    (q === null || c.id.startsWith(q) || c.name.startsWith(q));
}

/** A day's plan shape, shared by every campaign whose plan depends on the same fields. */
interface Shape {
  day: DayBounds;
  active: ReturnType<typeof buildDayPlan>['active'];
  /** The plan's share of each hour slot: F(end of slot k) − F(start of slot k). */
  hourFractions: number[];
}

/**
 * One fleet request's shared work. A catalogue of 100,000 campaigns has few distinct zones and plan
 * shapes (strategy, schedule, flight, curve parameters), and building a zone's local day or a plan
 * costs hundreds of microseconds: each is computed once per request, not once per campaign.
 */
class FleetPlans {
  private readonly days = new Map<string, DayBounds>();
  private readonly shapes = new Map<string, Shape>();

  constructor(private readonly dayKey: string) {}

  shapeOf(config: CampaignConfig): Shape {
    const key = JSON.stringify([
      config.timezone, config.strategy, config.schedule, config.startAtMs, config.endAtMs,
      config.strategy === 'CUSTOM' ? config.hourlyWeights : null, config.frontLoadedShare, config.aheadPercent,
    ]);
    let shape = this.shapes.get(key);
    if (shape === undefined) {
      let day = this.days.get(config.timezone);
      if (day === undefined) this.days.set(config.timezone, (day = localDay(config.timezone, this.dayKey)));
      const plan = planOf(config, day);
      const hourFractions: number[] = [];
      for (let a = day.startMs; a < day.endMs; a += 3_600_000) hourFractions.push(plan.curve.fraction(Math.min(day.endMs, a + 3_600_000)) - plan.curve.fraction(a));
      shape = { day, active: plan.active, hourFractions };
      this.shapes.set(key, shape);
    }
    return shape;
  }
}

/**
 * A campaign's row: its budget that day and the two figures the fleet view orders by, computed as
 * src/sim/metrics.ts's measure() computes them (the day report's figures), operation for operation:
 * `deliveryRatio` = S ÷ B, `slotNrmse` = √(Σ_k (c_k − B·ΔF_k)² / K) ÷ (B / K). A quarter's spend
 * counts in its first minute, so each hour's sum is exactly what the minutes give.
 */
function fleetRow(config: CampaignConfig, plans: FleetPlans, quarters: { quarterMs: number; settledMicros: number; budgetMicros: number }[]): FleetRow {
  const { day, active, hourFractions } = plans.shapeOf(config);
  quarters.sort((a, b) => a.quarterMs - b.quarterMs);
  // The shard's budget that day (a lifetime campaign's allowance), else what the plan allows.
  const budget = quarters.length > 0 ? quarters[quarters.length - 1]!.budgetMicros : dailyAllowance(config, day, active, 0);
  const minutes = Math.ceil((day.endMs - day.startMs) / 60_000);
  const byHour = new Array<number>(hourFractions.length).fill(0);
  let spent = 0;
  for (const q of quarters) {
    const i = Math.floor((q.quarterMs - day.startMs) / 60_000);
    if (i < 0 || i >= minutes) continue;
    byHour[Math.floor(i / 60)]! += q.settledMicros;
    spent += q.settledMicros;
  }
  let slotNrmse: number | null = null;
  let deliveryRatio: number | null = null;
  if (budget > 0) {
    const K = hourFractions.length;
    let sq = 0;
    for (let k = 0; k < K; k++) sq += (byHour[k]! - budget * hourFractions[k]!) ** 2;
    slotNrmse = Math.sqrt(sq / K) / (budget / K);
    deliveryRatio = spent / budget;
  }
  return { campaignId: config.id, name: config.name, timezone: config.timezone, budgetMicros: budget, spentMicros: spent, deliveryRatio, slotNrmse };
}

// ---- the OpenAPI document --------------------------------------------------------------------------

let openApiCache: string | null = null;

/**
 * docs/openapi.yaml as JSON, read once; found next to package.json from src/ or dist/src/. The YAML
 * parser (about 280 KB of source) is loaded for it on the first request, not at the thread's start.
 */
export async function openApiJson(): Promise<string> {
  if (openApiCache !== null) return openApiCache;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++, dir = dirname(dir)) {
    const candidate = join(dir, 'docs', 'openapi.yaml');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) {
      const { parse } = await import('yaml');
      openApiCache = JSON.stringify(parse(readFileSync(candidate, 'utf8')));
      return openApiCache;
    }
  }
  throw new Error('docs/openapi.yaml not found next to package.json');
}

/** The day's pacing metrics of a report side, or nulls when there is no budget to measure against. */
function dayMetrics(m: ReturnType<typeof measure> | null) {
  return {
    deliveryRatio: m?.deliveryRatio ?? null,
    overspendRatio: m?.overspendRatio ?? null,
    slotNrmse: m?.slotNrmse ?? null,
    maxTrackingError: m?.maxTrackingError ?? null,
    meanTrackingError: m?.meanTrackingError ?? null,
    earlyExhaustionFraction: m?.earlyExhaustionFraction ?? null,
  };
}
