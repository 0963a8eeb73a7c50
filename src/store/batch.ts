import type { FlushBatch, FlushOutcome, StoredReservation } from '../../shards/ports.js';

/**
 * A flush batch regrouped per campaign, as the durable stores apply it: one Redis script call or
 * one set of rows per campaign. A campaign appears in a batch once per local day it touched (a
 * rollover mid-batch gives it two deltas); here its events are concatenated with their day, and
 * its reservation changes are folded, in batch order, into a final upsert-or-delete per request.
 */
export interface CampaignEvent {
  eventId: string;
  amountMicros: number;
  /**
   * The reservation the event settles, deleted only when the event is applied (a duplicate
   * changes nothing); '' when none, or when the batch upserts that reservation again later.
   */
  requestId: string;
  day: string;
  /** See StoredEvent.settlesElsewhere. */
  settlesElsewhere?: boolean;
}

export interface CampaignOps {
  campaignId: string;
  events: CampaignEvent[];
  /** Where each event's flag goes in the FlushOutcome: [delta index, event index]. */
  positions: [number, number][];
  upserts: StoredReservation[];
  /** Reservations released or expired (those settled by an event leave with their event). */
  deletes: string[];
}

export interface GroupedBatch {
  campaigns: CampaignOps[];
  /** Events repeated within the batch (the flusher prevents it): answered duplicate, not sent. */
  repeats: [number, number][];
}

interface Group {
  ops: CampaignOps;
  /** The event IDs seen, once there are more than repeatScanMax (below that a scan is cheaper than a Set). */
  seen: Set<string> | null;
  /** Reservation changes in batch order (null: deleted); made on the first one. */
  res: Map<string, StoredReservation | null> | null;
}

const repeatScanMax = 8;

/** Whether the campaign's events already hold this ID; if not, it counts as seen from now on. */
function repeated(g: Group, eventId: string): boolean {
  if (g.seen !== null) {
    if (g.seen.has(eventId)) return true;
    g.seen.add(eventId);
    return false;
  }
  const events = g.ops.events;
  for (let i = 0; i < events.length; i++) if (events[i]!.eventId === eventId) return true;
  if (events.length >= repeatScanMax) {
    g.seen = new Set(events.map((e) => e.eventId));
    g.seen.add(eventId);
  }
  return false;
}

export function groupBatch(batch: FlushBatch): GroupedBatch {
  const byId = new Map<string, Group>();
  const repeats: [number, number][] = [];
  batch.campaigns.forEach((d, di) => {
    let g = byId.get(d.campaignId);
    if (g === undefined) {
      g = { ops: { campaignId: d.campaignId, events: [], positions: [], upserts: [], deletes: [] }, seen: null, res: null };
      byId.set(d.campaignId, g);
    }
    const group = g;
    d.events.forEach((e, ei) => {
      // A reservation added earlier in this batch and settled here never needs to reach the store.
      if (e.requestId !== '' && group.res?.get(e.requestId)) group.res.delete(e.requestId);
      if (repeated(group, e.eventId)) {
        repeats.push([di, ei]);
        return;
      }
      group.ops.events.push(
        e.settlesElsewhere === true
          ? { eventId: e.eventId, amountMicros: e.amountMicros, requestId: e.requestId, day: d.day, settlesElsewhere: true }
          : { eventId: e.eventId, amountMicros: e.amountMicros, requestId: e.requestId, day: d.day },
      );
      group.ops.positions.push([di, ei]);
    });
    if (d.reservationsRemoved.length > 0 || d.reservationsAdded.length > 0) {
      const res = (group.res ??= new Map());
      for (const id of d.reservationsRemoved) res.set(id, null);
      for (const r of d.reservationsAdded) res.set(r.requestId, r);
    }
  });
  const campaigns: CampaignOps[] = [];
  for (const g of byId.values()) {
    const res = g.res;
    if (res !== null) {
      for (const [id, r] of res) {
        if (r === null) g.ops.deletes.push(id);
        else g.ops.upserts.push(r);
      }
      // An event never deletes a reservation the batch writes again (one row is touched once).
      for (const e of g.ops.events) if (e.requestId !== '' && res.get(e.requestId)) e.requestId = '';
    }
    campaigns.push(g.ops);
  }
  return { campaigns, repeats };
}

/** Assembles the per-delta outcome from the per-campaign flags the store returned. */
export function outcomeOf(batch: FlushBatch, grouped: GroupedBatch, flags: boolean[][]): FlushOutcome {
  const out: FlushOutcome = batch.campaigns.map((d) => new Array<boolean>(d.events.length).fill(false));
  grouped.campaigns.forEach((c, ci) => {
    const f = flags[ci]!;
    if (f.length !== c.events.length) throw new Error(`store returned ${f.length} flags for ${c.events.length} events of ${c.campaignId}`);
    c.positions.forEach(([di, ei], k) => {
      out[di]![ei] = f[k]!;
    });
  });
  return out;
}

/**
 * A number read back from a store, without judging it: a stored counter outside the money bounds
 * (or not a number at all, NaN) must reach the shard, which flags the campaign, rather than stop
 * the load (which the admin would retry for ever) or the shard.
 */
export function storedNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' || typeof v === 'bigint') return v === '' ? Number.NaN : Number(v);
  return Number.NaN;
}
