import { OpStatus, reasonNames } from '../../shards/reasons.js';
import { DecideFlag, OpKind, type ResultReader, SpendFlag } from '../../shards/wire.js';
import { limits } from '../../shards/limits.js';
import { ApiError } from '../http/errors.js';

/**
 * Turns shard results into the API's JSON. The fixed parts are built once at startup; a decision
 * answer is two string concatenations and two number formats.
 */
const allowPrefix = reasonNames.map((r) => `{"allow":true,"reason":"${r}","reserved":`);
const denyPrefix = reasonNames.map((r) => `{"allow":false,"reason":"${r}","reserved":false`);

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

/** SHADOW mode: what the campaign would have answered, appended to an answer that allows. */
const wouldTail = reasonNames.map((r, i) => `,"wouldAllow":${i === 0},"wouldReason":"${r}"}`);

export function decideJson(r: ResultReader): string {
  const tail = `,"throttle":${round4(r.throttle)},"pacingIndex":${round4(r.pacingIndex)}${(r.flags & DecideFlag.SHADOW) !== 0 ? wouldTail[r.wouldReason] : '}'}`;
  if (r.flags & DecideFlag.ALLOW) return allowPrefix[r.code] + ((r.flags & DecideFlag.RESERVED) !== 0 ? 'true' : 'false') + tail;
  return denyPrefix[r.code] + tail;
}

/**
 * decideJson's answer as bytes, from a small cache keyed by everything the answer says (reason,
 * flags, the SHADOW reason, and throttle and pacing index as rounded to four places): under load
 * most answers repeat one another (a campaign's throttle and pacing index move slowly), and a
 * repeated answer then costs no string building, no number formatting and no UTF-8 conversion in
 * uWS (which takes a Uint8Array's bytes as they are). Direct-mapped, 1,024 entries of at most
 * ~150 bytes each; a miss builds the string as decideJson does and keeps its bytes.
 */
const bodyCacheSize = 1024;
const bodyKeyA = new Int32Array(bodyCacheSize).fill(-1);
const bodyKeyT = new Float64Array(bodyCacheSize);
const bodyKeyP = new Float64Array(bodyCacheSize);
const bodyCache: Buffer[] = new Array<Buffer>(bodyCacheSize);

export function decideBytes(r: ResultReader): Uint8Array {
  const flags = r.flags & (DecideFlag.ALLOW | DecideFlag.RESERVED | DecideFlag.SHADOW);
  const a = r.code | (flags << 8) | ((flags & DecideFlag.SHADOW) !== 0 ? r.wouldReason << 16 : 0);
  const t = round4(r.throttle);
  const p = round4(r.pacingIndex);
  const h = (Math.imul(a ^ Math.imul((t * 10_000) | 0, 0x9e3779b1) ^ Math.imul((p * 10_000) | 0, 0x85ebca6b), 0xc2b2ae35) >>> 22) & (bodyCacheSize - 1);
  if (bodyKeyA[h] === a && bodyKeyT[h] === t && bodyKeyP[h] === p) return bodyCache[h]!;
  const body = Buffer.from(decideJson(r), 'latin1');
  bodyKeyA[h] = a;
  bodyKeyT[h] = t;
  bodyKeyP[h] = p;
  bodyCache[h] = body;
  return body;
}

/** A spend or release result that is an error, as an ApiError; null when it is an answer. */
export function resultError(r: ResultReader): ApiError | null {
  switch (r.code) {
    case OpStatus.UNKNOWN_CAMPAIGN:
      return new ApiError('UNKNOWN_CAMPAIGN', 'no campaign with this campaignId');
    case OpStatus.OVERLOADED:
      return new ApiError('OVERLOADED', 'too much spend is waiting to be stored; retry shortly');
    case OpStatus.STORE_FAILED:
      return new ApiError('STORE_UNAVAILABLE', 'the spend could not be stored yet; resending it is safe');
    case OpStatus.NOT_READY:
      return notReadyError;
    case OpStatus.AMOUNT_REFUSED:
      return amountRefusedError;
    default:
      return null;
  }
}

const notReadyError = new ApiError('NOT_READY', "this campaign's counters are still loading; retry after the Retry-After delay");
const amountRefusedError = new ApiError(
  'INVALID_AMOUNT',
  `the spend would take the campaign's settled total for the day past ${limits.dayTotalMicrosMax} micros (dayTotalMicrosMax); it was not recorded`,
);

export function spendJson(r: ResultReader): string {
  const status = r.code === OpStatus.APPLIED ? 'applied' : 'duplicate';
  return (
    `{"status":"${status}","matchedReservation":${(r.flags & SpendFlag.MATCHED_RESERVATION) !== 0}` +
    `,"overBid":${(r.flags & SpendFlag.OVER_BID) !== 0},"unmatched":${(r.flags & SpendFlag.UNMATCHED) !== 0}}`
  );
}

export function releaseJson(r: ResultReader): string {
  return r.code === OpStatus.RELEASED ? '{"released":true}' : '{"released":false}';
}

/** The JSON of any result, errors included (batch items). */
export function resultJson(r: ResultReader): string {
  if (r.kind === OpKind.DECIDE) return decideJson(r);
  const err = resultError(r);
  if (err !== null) return JSON.stringify(err);
  return r.kind === OpKind.SPEND ? spendJson(r) : releaseJson(r);
}

export const shardFailedError = new ApiError('INTERNAL', 'the shard owning this campaign stopped; the outcome is unknown');
