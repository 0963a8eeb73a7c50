import { limits } from '../../shards/limits.js';
import type { Micros } from '../../shards/money.js';
import type { CampaignConfig } from '../../shards/types.js';
import { ApiError } from '../http/errors.js';
import { budgetMicros, type CampaignRecord, show, textProblem } from '../model/campaign.js';

/**
 * The pure parts of the admin's writes: conditional requests (ETag, If-Match, If-None-Match) and
 * budget operations. No IO here; src/admin/campaigns.ts applies them under the campaign's lock.
 */

/** A campaign's entity tag: a strong tag of its version. */
export function etagOf(version: number): string {
  return `"${version}"`;
}

export interface Preconditions {
  /** The If-Match header, '' when absent. */
  ifMatch: string;
  /** The If-None-Match header, '' when absent. */
  ifNoneMatch: string;
}

export const noPreconditions: Preconditions = { ifMatch: '', ifNoneMatch: '' };

/** The entity tags of an If-Match or If-None-Match list; weak tags never match (strong comparison). */
function tagsOf(header: string): string[] {
  return header.split(',').map((t) => t.trim()).filter((t) => t !== '');
}

/**
 * RFC 9110 section 13: If-Match fails (412 VERSION_MISMATCH, carrying the current version) unless
 * the campaign exists and one tag is its ETag or the header is `*`; If-None-Match: * fails
 * (409 CAMPAIGN_EXISTS) when it exists.
 */
export function checkPreconditions(current: CampaignRecord | null, p: Preconditions, id: string): void {
  const version = current?.config.version ?? null;
  if (p.ifNoneMatch !== '') {
    const tags = tagsOf(p.ifNoneMatch);
    if (current !== null && (tags.includes('*') || tags.includes(etagOf(version!)))) {
      throw new ApiError('CAMPAIGN_EXISTS', `campaign ${show(id)} exists (If-None-Match: ${show(p.ifNoneMatch)})`, { currentVersion: version });
    }
  }
  if (p.ifMatch === '') return;
  const tags = tagsOf(p.ifMatch);
  if (current !== null && (tags.includes('*') || tags.includes(etagOf(version!)))) return;
  throw new ApiError(
    'VERSION_MISMATCH',
    current === null
      ? `campaign ${show(id)} does not exist (If-Match: ${show(p.ifMatch)})`
      : `campaign ${show(id)} is at version ${version}, not ${show(p.ifMatch)}: read it again and reapply the change`,
    { currentVersion: version },
  );
}

/** X-Pacer-Actor: who made a change, kept in the audit trail. */
export function actorOf(header: string): string {
  if (header === '') return 'admin-token';
  const problem = header.length > limits.auditTextLengthMax ? `is longer than ${limits.auditTextLengthMax} characters` : textProblem(header);
  if (problem !== null) throw new ApiError('INVALID_FIELD', `X-Pacer-Actor ${problem}`);
  return header;
}

export interface BudgetOp {
  budget: 'daily' | 'lifetime';
  set: number | null;
  add: number | null;
  reason: string | null;
  force: boolean;
}

const budgetOpFields = ['set', 'add', 'budget', 'reason', 'force'];

/** `{"set": micros}` or `{"add": micros}`, with optional budget, reason and force. */
export function budgetOpOf(body: unknown): BudgetOp {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('INVALID_BODY', 'expected a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!budgetOpFields.includes(k)) throw new ApiError('UNKNOWN_FIELD', `unknown field ${show(k)}; expected ${budgetOpFields.join(', ')}`);
  }
  if ((b.set === undefined) === (b.add === undefined)) throw new ApiError('MISSING_FIELD', 'send exactly one of set and add');
  const budget = b.budget ?? 'daily';
  if (budget !== 'daily' && budget !== 'lifetime') throw new ApiError('INVALID_FIELD', `budget must be daily or lifetime (got ${show(budget)})`);
  if (b.add !== undefined && (typeof b.add !== 'number' || !Number.isSafeInteger(b.add))) {
    throw new ApiError('INVALID_AMOUNT', `add must be an integer number of micros, negative to lower (got ${show(b.add)})`);
  }
  if (b.force !== undefined && typeof b.force !== 'boolean') throw new ApiError('INVALID_FIELD', 'force must be true or false');
  let reason: string | null = null;
  if (b.reason !== undefined && b.reason !== null) {
    if (typeof b.reason !== 'string' || b.reason.length > limits.auditTextLengthMax) {
      throw new ApiError('INVALID_FIELD', `reason must be a string of at most ${limits.auditTextLengthMax} characters`);
    }
    const problem = textProblem(b.reason);
    if (problem !== null) throw new ApiError('INVALID_FIELD', `reason ${problem}`);
    reason = b.reason;
  }
  return { budget, set: (b.set as number | undefined) ?? null, add: (b.add as number | undefined) ?? null, reason, force: b.force === true };
}

/** The configuration after a budget operation, validated against the model's bounds. */
export function applyBudgetOp(config: CampaignConfig, op: BudgetOp, version: number): CampaignConfig {
  const field = op.budget === 'daily' ? 'dailyBudgetMicros' : 'lifetimeBudgetMicros';
  const max = op.budget === 'daily' ? 'dailyBudgetMicrosMax' : 'lifetimeBudgetMicrosMax';
  const old = config[field];
  if (op.add !== null && old === null) {
    throw new ApiError('INVALID_FIELD', 'the campaign has no lifetime budget to add to: use set');
  }
  const next: Micros = budgetMicros(op.set ?? (old as number) + op.add!, field, max);
  return { ...config, [field]: next, version };
}
