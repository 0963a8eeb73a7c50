import { limits } from '../../shards/limits.js';
import { ApiError } from '../http/errors.js';
import { preview } from '../http/preview.js';
import { campaignIdPattern, eventIdPattern } from '../model/campaign.js';

/**
 * Validation of hot-path input, written out by hand: these run tens of thousands of times a second
 * and a hand-written check of three fields costs less than any schema interpreter. Each failure is
 * a coded ApiError whose message names the field, the rule and (where short) the value.
 */
// The ID patterns live with the campaign model (src/model/campaign.ts); re-exported for old imports.
export { campaignIdPattern, eventIdPattern };

export interface DecideInput {
  campaignId: string;
  /** -1 when absent. */
  bidMicros: number;
  /** '' when absent. */
  requestId: string;
}

export interface SpendInput {
  campaignId: string;
  eventId: string;
  amountMicros: number;
  requestId: string;
}

export interface ReleaseInput {
  campaignId: string;
  requestId: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Never throws, whatever the client sent (see preview). */
const show = preview;

function where(index: number): string {
  return index < 0 ? '' : ` (item ${index})`;
}

export function campaignIdOf(v: unknown, index = -1): string {
  if (v === undefined) throw new ApiError('MISSING_FIELD', `campaignId is required${where(index)}`);
  if (typeof v !== 'string' || !campaignIdPattern.test(v)) {
    throw new ApiError(
      'INVALID_CAMPAIGN_ID',
      `campaignId must be 1-${limits.campaignIdLengthMax} characters of A-Z a-z 0-9 . _ : - (got ${show(v)})${where(index)}`,
    );
  }
  return v;
}

function idOf(v: unknown, field: string, code: 'INVALID_REQUEST_ID' | 'INVALID_EVENT_ID', index: number): string {
  if (typeof v !== 'string' || !eventIdPattern.test(v)) {
    throw new ApiError(
      code,
      `${field} must be 1-${limits.eventIdLengthMax} characters of A-Z a-z 0-9 . _ : ~ + / = @ | - (got ${show(v)})${where(index)}`,
    );
  }
  return v;
}

/** A non-negative integer number of micros no larger than `max` (a money bound of shards/limits.ts). */
function moneyOf(v: unknown, field: string, max: number, limitName: string, index: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new ApiError(
      'INVALID_AMOUNT',
      `${field} must be a non-negative integer number of micros no larger than ${limitName} = ${max} (got ${show(v)})${where(index)}`,
    );
  }
  return v;
}

function onlyFields(body: Record<string, unknown>, allowed: readonly string[], index: number): void {
  for (const k in body) {
    if (!allowed.includes(k)) {
      throw new ApiError('UNKNOWN_FIELD', `unknown field ${show(k)}; expected ${allowed.join(', ')}${where(index)}`);
    }
  }
}

function objectOf(v: unknown, index: number): Record<string, unknown> {
  if (!isObject(v)) throw new ApiError('INVALID_BODY', `expected a JSON object${where(index)}`);
  return v;
}

const decideFields = ['campaignId', 'bidMicros', 'requestId'] as const;
const spendFields = ['campaignId', 'eventId', 'amountMicros', 'requestId'] as const;
const releaseFields = ['campaignId', 'requestId'] as const;

export function decideOf(v: unknown, index = -1): DecideInput {
  const body = objectOf(v, index);
  onlyFields(body, decideFields, index);
  const campaignId = campaignIdOf(body.campaignId, index);
  const bidMicros = body.bidMicros === undefined ? -1 : moneyOf(body.bidMicros, 'bidMicros', limits.bidMicrosMax, 'bidMicrosMax', index);
  const requestId = body.requestId === undefined ? '' : idOf(body.requestId, 'requestId', 'INVALID_REQUEST_ID', index);
  return { campaignId, bidMicros, requestId };
}

export function spendOf(v: unknown, index = -1): SpendInput {
  const body = objectOf(v, index);
  onlyFields(body, spendFields, index);
  const campaignId = campaignIdOf(body.campaignId, index);
  if (body.eventId === undefined) throw new ApiError('MISSING_FIELD', `eventId is required${where(index)}`);
  const eventId = idOf(body.eventId, 'eventId', 'INVALID_EVENT_ID', index);
  if (body.amountMicros === undefined) throw new ApiError('MISSING_FIELD', `amountMicros is required${where(index)}`);
  const amountMicros = moneyOf(body.amountMicros, 'amountMicros', limits.spendMicrosMax, 'spendMicrosMax', index);
  const requestId = body.requestId === undefined ? '' : idOf(body.requestId, 'requestId', 'INVALID_REQUEST_ID', index);
  return { campaignId, eventId, amountMicros, requestId };
}

export function releaseOf(v: unknown, index = -1): ReleaseInput {
  const body = objectOf(v, index);
  onlyFields(body, releaseFields, index);
  const campaignId = campaignIdOf(body.campaignId, index);
  if (body.requestId === undefined) throw new ApiError('MISSING_FIELD', `requestId is required${where(index)}`);
  const requestId = idOf(body.requestId, 'requestId', 'INVALID_REQUEST_ID', index);
  return { campaignId, requestId };
}

/** The array under `field` of a batch body, 1 to batchOpsMax items long. */
export function batchOf(v: unknown, field: 'requests' | 'events'): unknown[] {
  const body = objectOf(v, -1);
  onlyFields(body, [field], -1);
  const items = body[field];
  if (items === undefined) throw new ApiError('MISSING_FIELD', `${field} is required`);
  if (!Array.isArray(items)) throw new ApiError('INVALID_FIELD', `${field} must be an array`);
  if (items.length === 0) throw new ApiError('EMPTY_BATCH', `${field} must not be empty`);
  if (items.length > limits.batchOpsMax) {
    throw new ApiError('BATCH_TOO_LARGE', `${field} holds ${items.length} items; the limit is ${limits.batchOpsMax}`);
  }
  return items;
}
