import { limits } from '../../shards/limits.js';
import { strategies, type Strategy } from '../../shards/types.js';
import { ApiError } from '../http/errors.js';
import { type CampaignRecord, campaignIdPattern, show } from '../model/campaign.js';

/**
 * The campaign IDs in sorted order, kept sorted as campaigns are added, so a listing page is a
 * binary search and a short walk, never a sort of the whole catalogue. Adding one ID shifts the
 * array (a memmove, about a millisecond at a million IDs); a bulk call merges its new IDs in one
 * pass instead of shifting once per ID.
 */
export class SortedIds {
  private ids: string[] = [];

  get length(): number {
    return this.ids.length;
  }

  at(i: number): string | undefined {
    return this.ids[i];
  }

  /** The first index whose ID is greater than id (or equal, when inclusive). */
  after(id: string, inclusive = false): number {
    let lo = 0;
    let hi = this.ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.ids[mid]!;
      if (v < id || (!inclusive && v === id)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  add(id: string): void {
    const i = this.after(id, true);
    if (this.ids[i] !== id) this.ids.splice(i, 0, id);
  }

  /** Adds IDs not present yet (sorted here), merging them into the array in one pass. */
  addMany(newIds: string[]): void {
    if (newIds.length < 16) {
      for (const id of newIds) this.add(id);
      return;
    }
    const add = [...new Set(newIds)].sort();
    const out: string[] = new Array(this.ids.length + add.length);
    let i = 0;
    let j = 0;
    let n = 0;
    while (i < this.ids.length || j < add.length) {
      const a = this.ids[i];
      const b = add[j];
      if (b === undefined || (a !== undefined && a < b)) out[n++] = this.ids[i++]!;
      else if (a === b) {
        out[n++] = a;
        i++;
        j++;
      } else {
        out[n++] = add[j++]!;
      }
    }
    out.length = n;
    this.ids = out;
  }
}

export interface ListQuery {
  limit: number;
  /** Last ID of the previous page, or null for the first. */
  afterId: string | null;
  status: 'ACTIVE' | 'PAUSED' | null;
  strategy: Strategy | null;
  archived: 'true' | 'false' | 'all';
  q: string | null;
}

export interface ListPage {
  records: CampaignRecord[];
  /** Null when the listing is complete. */
  nextCursor: string | null;
}

/** Opaque to clients; today the base64url of the last ID of the page. */
export function encodeCursor(id: string): string {
  return Buffer.from(`c:${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const text = /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const id = text.startsWith('c:') ? text.slice(2) : '';
  if (!campaignIdPattern.test(id)) throw new ApiError('INVALID_FIELD', `cursor ${show(cursor)} is not one this API gave out`);
  return id;
}

function oneOf<T extends string>(query: URLSearchParams, name: string, allowed: readonly T[]): T | null {
  const v = query.get(name);
  if (v === null || v === '') return null;
  if (!allowed.includes(v as T)) throw new ApiError('INVALID_FIELD', `${name} must be one of ${allowed.join(', ')} (got ${show(v)})`);
  return v as T;
}

/** A page size from `limit`: 1 to listLimitMax, listLimitDefault when absent. */
export function limitOf(query: URLSearchParams): number {
  const raw = query.get('limit');
  if (raw === null || raw === '') return limits.listLimitDefault;
  const n = /^\d{1,7}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= limits.listLimitMax)) {
    throw new ApiError('INVALID_FIELD', `limit must be an integer from 1 to ${limits.listLimitMax} (got ${show(raw)})`);
  }
  return n;
}

export function listQueryOf(query: URLSearchParams): ListQuery {
  const cursor = query.get('cursor');
  const q = query.get('q');
  if (q !== null && q.length > limits.campaignNameLengthMax) {
    throw new ApiError('INVALID_FIELD', `q is at most ${limits.campaignNameLengthMax} characters`);
  }
  return {
    limit: limitOf(query),
    afterId: cursor === null || cursor === '' ? null : decodeCursor(cursor),
    status: oneOf(query, 'status', ['ACTIVE', 'PAUSED'] as const),
    strategy: oneOf(query, 'strategy', strategies),
    archived: oneOf(query, 'archived', ['true', 'false', 'all'] as const) ?? 'false',
    q: q === null || q === '' ? null : q,
  };
}

/** What a listing page reads of the catalogue (src/model/table.ts). */
export interface ListSource {
  peek(id: string): { name: string; status: string; strategy: string; archived: boolean } | undefined;
  get(id: string): CampaignRecord | undefined;
}

function matches(id: string, r: { name: string; status: string; strategy: string; archived: boolean }, query: ListQuery): boolean {
  if (query.archived === 'false' && r.archived) return false;
  if (query.archived === 'true' && !r.archived) return false;
  if (query.status !== null && r.status !== query.status) return false;
  if (query.strategy !== null && r.strategy !== query.strategy) return false;
  if (query.q !== null && !id.startsWith(query.q) && !r.name.startsWith(query.q)) return false;
  return true;
}

/**
 * One page in ID order. It looks at no more than listScanMax campaigns: when the filters match few,
 * the page may come back short (even empty) with a nextCursor to go on from. Only the campaigns on
 * the page are built as records; the filters read the catalogue's columns.
 */
export function listPage(ids: SortedIds, records: ListSource, query: ListQuery): ListPage {
  const out: CampaignRecord[] = [];
  let i = query.afterId === null ? 0 : ids.after(query.afterId);
  const end = Math.min(ids.length, i + limits.listScanMax);
  for (; i < end && out.length < query.limit; i++) {
    const id = ids.at(i)!;
    const r = records.peek(id);
    if (r !== undefined && matches(id, r, query)) out.push(records.get(id)!);
  }
  const more = i < ids.length;
  return { records: out, nextCursor: more && i > 0 ? encodeCursor(ids.at(i - 1)!) : null };
}
