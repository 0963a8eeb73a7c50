import uWS, { type HttpRequest, type TemplatedApp, type us_socket_context_t, type WebSocket } from 'uWebSockets.js';
import { limits } from '../../shards/limits.js';
import type { BreakerTransition } from '../../shards/pacing/breaker.js';
import type { CampaignStatus } from '../../shards/types.js';
import { ApiError } from '../http/errors.js';
import type { Res } from '../http/respond.js';
import { log } from '../log.js';
import { campaignIdPattern } from '../model/campaign.js';
import type { CampaignRecord } from '../model/campaign.js';
import type { Campaigns, LiveChange } from './campaigns.js';
import { sendAdminError } from './router.js';
import { checkBearer } from './token.js';

/** Close codes of /v1/live (docs/live-protocol.md). */
export const liveClose = { shutdown: 1001, authRequired: 4401, forbidden: 4403, slowReader: 4008 } as const;

/** An error frame's code and message (the connection stays open). */
class LiveError extends Error {
  constructor(
    readonly code: 'INVALID_MESSAGE' | 'INVALID_CAMPAIGN_ID' | 'UNKNOWN_CAMPAIGN' | 'TOO_MANY_CAMPAIGNS',
    message: string,
  ) {
    super(message);
  }
}

interface Conn {
  authed: boolean;
  all: boolean;
  ids: Set<string>;
  /** Set once the server ended it (no more sends) or uWS reported it closed. */
  ended: boolean;
  gone: boolean;
  authTimer: NodeJS.Timeout | null;
}

type Ws = WebSocket<Conn>;

/**
 * The admin port's live feed (docs/live-protocol.md). Statuses are polled from the shards once a
 * tick, only for campaigns somebody subscribed to (an `all` subscription polls a bounded window of
 * the catalogue per tick, round-robin), and only while a connection is open; events (breaker,
 * budget, archive, store health) are pushed at once.
 */
export class LiveHub {
  private readonly conns = new Set<Ws>();
  /** What was last pushed of each polled campaign, to push changes only; cleared with the last connection. */
  private readonly last = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private cursor: Iterator<CampaignRecord> | null = null;
  private health: { degraded: boolean; reason: string | null } = { degraded: false, reason: null };

  constructor(
    private readonly campaigns: Campaigns,
    private readonly token: string,
    private readonly state: { shuttingDown: boolean },
  ) {
    campaigns.onLive = (change) => this.onChange(change);
  }

  get size(): number {
    return this.conns.size;
  }

  attach(app: TemplatedApp): void {
    app.ws<Conn>('/v1/live', {
      compression: uWS.DISABLED,
      maxPayloadLength: limits.liveMessageBytesMax,
      // Checked by hand after each send (4008); this only keeps uWS from dropping frames before that.
      maxBackpressure: 4 * limits.liveBufferedBytesMax,
      idleTimeout: limits.liveIdleTimeoutSeconds,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => this.upgrade(res as Res, req, context),
      open: (ws) => this.open(ws),
      message: (ws, data, isBinary) => this.message(ws, data, isBinary),
      close: (ws) => this.closed(ws),
    });
  }

  private upgrade(res: Res, req: HttpRequest, context: us_socket_context_t): void {
    const key = req.getHeader('sec-websocket-key');
    const offered = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    if (this.state.shuttingDown) return sendAdminError(res, new ApiError('SHUTTING_DOWN', 'the pacer is shutting down'));
    if (this.conns.size >= limits.liveConnectionsMax) {
      return sendAdminError(res, new ApiError('TOO_MANY_CONNECTIONS', `${limits.liveConnectionsMax} live connections are open (liveConnectionsMax); retry later`));
    }
    const { selected, auth } = protocolAuth(offered, this.token);
    if (auth === 'wrong') return sendAdminError(res, new ApiError('FORBIDDEN', 'the admin token in Sec-WebSocket-Protocol is not valid'));
    const conn: Conn = { authed: auth === 'ok', all: false, ids: new Set(), ended: false, gone: false, authTimer: null };
    res.upgrade<Conn>(conn, key, selected, extensions, context);
  }

  private open(ws: Ws): void {
    const c = ws.getUserData();
    this.conns.add(ws);
    // An upgrade that raced the start of shutdown: close() has already run, so close it here.
    if (this.state.shuttingDown) return ws.close();
    if (c.authed) this.hello(ws);
    else {
      c.authTimer = setTimeout(() => this.end(ws, liveClose.authRequired, `no auth message within liveAuthTimeoutMs = ${limits.liveAuthTimeoutMs} ms`), limits.liveAuthTimeoutMs);
    }
    this.timer ??= setInterval(() => void this.tick(), limits.liveTickMs);
  }

  private closed(ws: Ws): void {
    const c = ws.getUserData();
    c.gone = true;
    c.ended = true;
    if (c.authTimer !== null) clearTimeout(c.authTimer);
    this.conns.delete(ws);
    if (this.conns.size === 0) {
      if (this.timer !== null) clearInterval(this.timer);
      this.timer = null;
      this.last.clear();
      this.cursor = null;
    }
  }

  private hello(ws: Ws): void {
    this.send(ws, {
      type: 'hello',
      tickMs: limits.liveTickMs,
      subscriptionCampaignsMax: limits.liveSubscriptionCampaignsMax,
      bufferedBytesMax: limits.liveBufferedBytesMax,
      health: this.health,
    });
  }

  private message(ws: Ws, data: ArrayBuffer, isBinary: boolean): void {
    const c = ws.getUserData();
    if (c.ended) return;
    const msg = isBinary ? null : parseMessage(data);
    if (!c.authed) return this.authenticate(ws, msg);
    if (msg === null) return this.error(ws, 'INVALID_MESSAGE', 'messages are JSON objects in text frames with a "type"');
    try {
      if (msg.type === 'subscribe') this.subscribe(ws, msg);
      else if (msg.type === 'unsubscribe') this.unsubscribe(ws, msg);
      else if (msg.type === 'auth') this.error(ws, 'INVALID_MESSAGE', 'already authenticated');
      else this.error(ws, 'INVALID_MESSAGE', `unknown type ${JSON.stringify(String(msg.type).slice(0, 40))}; expected subscribe or unsubscribe`);
    } catch (err) {
      const e = err instanceof LiveError ? err : new LiveError('INVALID_MESSAGE', String((err as Error)?.message ?? err).slice(0, 200));
      this.error(ws, e.code, e.message);
    }
  }

  private authenticate(ws: Ws, msg: Record<string, unknown> | null): void {
    if (msg === null || msg.type !== 'auth' || typeof msg.token !== 'string') {
      return this.end(ws, liveClose.authRequired, 'the first message must be {"type":"auth","token":"<admin token>"}');
    }
    if (checkBearer(`Bearer ${msg.token}`, this.token) !== 'ok') return this.end(ws, liveClose.forbidden, 'the admin token is not valid');
    const c = ws.getUserData();
    c.authed = true;
    if (c.authTimer !== null) clearTimeout(c.authTimer);
    c.authTimer = null;
    this.hello(ws);
  }

  private subscribe(ws: Ws, msg: Record<string, unknown>): void {
    const c = ws.getUserData();
    const { all, ids } = subscription(msg);
    const fresh = ids.filter((id) => !c.ids.has(id));
    const unknown = fresh.filter((id) => this.campaigns.get(id) === undefined);
    if (unknown.length > 0) throw new LiveError('UNKNOWN_CAMPAIGN', `no campaign ${unknown.slice(0, 5).map((id) => JSON.stringify(id)).join(', ')}; nothing was subscribed`);
    if (c.ids.size + fresh.length > limits.liveSubscriptionCampaignsMax) {
      throw new LiveError('TOO_MANY_CAMPAIGNS', `a connection may name at most liveSubscriptionCampaignsMax = ${limits.liveSubscriptionCampaignsMax} campaigns (it names ${c.ids.size}); subscribe to all instead`);
    }
    for (const id of fresh) c.ids.add(id);
    if (all) c.all = true;
    this.subscribed(ws);
    // The current status of each newly named campaign, so a client starts from a full picture.
    // A closed uWS socket throws on any access, so check the connection's own flag after the wait.
    if (fresh.length > 0) {
      void this.fetch(fresh).then((statuses) => {
        if (!c.gone) this.send(ws, { type: 'status', campaigns: statuses.map(liveStatus) });
      });
    }
  }

  private unsubscribe(ws: Ws, msg: Record<string, unknown>): void {
    const c = ws.getUserData();
    const { all, ids } = subscription(msg);
    if (all) {
      c.all = false;
      c.ids.clear();
    }
    for (const id of ids) c.ids.delete(id);
    this.subscribed(ws);
  }

  private subscribed(ws: Ws): void {
    const c = ws.getUserData();
    this.send(ws, { type: 'subscribed', all: c.all, campaigns: [...c.ids] });
  }

  private error(ws: Ws, code: string, message: string): void {
    this.send(ws, { type: 'error', code, message });
  }

  /** Sends a frame; a reader that lets more than liveBufferedBytesMax pile up is disconnected. */
  private send(ws: Ws, frame: unknown): void {
    const c = ws.getUserData();
    if (c.ended) return;
    if (ws.getBufferedAmount() > limits.liveBufferedBytesMax) {
      return this.end(ws, liveClose.slowReader, `more than liveBufferedBytesMax = ${limits.liveBufferedBytesMax} bytes waiting: read faster`);
    }
    ws.cork(() => ws.send(JSON.stringify(frame), false));
  }

  /** Ends a connection with a close code; one that does not go within a second is closed outright. */
  private end(ws: Ws, code: number, reason: string): void {
    const c = ws.getUserData();
    if (c.ended) return;
    c.ended = true;
    ws.end(code, reason);
    setTimeout(() => {
      if (!c.gone) ws.close();
    }, 1_000).unref();
  }

  private interested(c: Conn, campaignId: string): boolean {
    return c.authed && (c.all || c.ids.has(campaignId));
  }

  private broadcast(campaignId: string | null, frame: unknown): void {
    for (const ws of [...this.conns]) {
      const c = ws.getUserData();
      if (campaignId === null ? c.authed : this.interested(c, campaignId)) this.send(ws, frame);
    }
  }

  /** A shard's breaker transition. */
  breaker(campaignId: string, t: BreakerTransition): void {
    if (this.conns.size === 0) return;
    this.broadcast(campaignId, { type: 'breaker', campaignId, from: t.from, to: t.to, reason: t.reason, at: new Date(t.atMs).toISOString() });
  }

  private onChange(change: LiveChange): void {
    if (this.conns.size === 0) return;
    const type = change.type === 'budget' ? 'budget' : change.archived ? 'archived' : 'restored';
    this.broadcast(change.campaignId, { ...change, type, at: new Date().toISOString() });
  }

  /** The pacer's store health (main's view: every shard's counter store and the configuration database). */
  setHealth(degraded: boolean, reason: string | null): void {
    if (degraded === this.health.degraded && reason === this.health.reason) return;
    this.health = { degraded, reason };
    if (this.conns.size > 0) this.broadcast(null, { type: 'health', degraded, reason, at: new Date().toISOString() });
  }

  /** The campaigns polled this tick: every one named by a connection, and a window for `all`. */
  private pollSet(): string[] {
    const ids = new Set<string>();
    let all = false;
    for (const ws of this.conns) {
      const c = ws.getUserData();
      if (!c.authed) continue;
      for (const id of c.ids) ids.add(id);
      all ||= c.all;
    }
    if (all) for (const id of this.window()) ids.add(id);
    return [...ids];
  }

  /** The next liveAllPollPerTickMax campaigns of the catalogue, round-robin (archived ones rarely change, so are rarely pushed). */
  private window(): string[] {
    const out: string[] = [];
    const want = Math.min(limits.liveAllPollPerTickMax, this.campaigns.size);
    for (let steps = 0; out.length < want && steps <= want; steps++) {
      this.cursor ??= this.campaigns.all()[Symbol.iterator]();
      const next = this.cursor.next();
      if (next.done === true) this.cursor = null;
      else out.push(next.value.config.id);
    }
    return out;
  }

  private async fetch(ids: string[]): Promise<CampaignStatus[]> {
    const got = await Promise.allSettled(ids.map((id) => this.campaigns.status(id)));
    return got.flatMap((g) => (g.status === 'fulfilled' ? [g.value] : []));
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.conns.size === 0) return;
    this.ticking = true;
    try {
      const changed = new Map<string, ReturnType<typeof liveStatus>>();
      for (const s of await this.fetch(this.pollSet())) {
        const view = liveStatus(s);
        const print = JSON.stringify(view);
        if (this.last.get(s.campaignId) === print) continue;
        this.last.set(s.campaignId, print);
        changed.set(s.campaignId, view);
      }
      if (changed.size === 0) return;
      for (const ws of [...this.conns]) {
        const c = ws.getUserData();
        const mine = [...changed.values()].filter((v) => this.interested(c, v.campaignId));
        if (mine.length > 0) this.send(ws, { type: 'status', campaigns: mine });
      }
    } catch (err) {
      log('warn', 'live feed tick failed', { error: (err as Error).message });
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Shutdown: ends every socket (1001), then closes the ones still open after graceMs. A worker
   * that still holds a uWS socket when it exits aborts Node.
   */
  async close(graceMs = 500): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const ws of [...this.conns]) this.end(ws, liveClose.shutdown, 'the pacer is shutting down');
    for (let waited = 0; this.conns.size > 0 && waited < graceMs; waited += 20) await new Promise((r) => setTimeout(r, 20));
    for (const ws of [...this.conns]) {
      try {
        ws.close();
      } catch {
        // Already closed by uWS between the check and here.
      }
    }
  }
}

/** The fields of a status the feed pushes (docs/live-protocol.md). */
function liveStatus(s: CampaignStatus) {
  return {
    campaignId: s.campaignId,
    version: s.version,
    day: s.day,
    budgetMicros: s.budgetMicros,
    settledMicros: s.settledMicros,
    reservedMicros: s.reservedMicros,
    remainingMicros: s.remainingMicros,
    planMicros: s.planMicros,
    throttle: s.throttle,
    pacingIndex: s.pacingIndex,
    active: s.active,
    inactiveReason: s.inactiveReason,
    breaker: { state: s.breaker.state, since: s.breaker.since },
  };
}

function parseMessage(data: ArrayBuffer): Record<string, unknown> | null {
  try {
    const v = JSON.parse(Buffer.from(data).toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The `all` flag and campaign IDs of a subscribe or unsubscribe message. */
function subscription(msg: Record<string, unknown>): { all: boolean; ids: string[] } {
  for (const k of Object.keys(msg)) {
    if (k !== 'type' && k !== 'all' && k !== 'campaigns') throw new LiveError('INVALID_MESSAGE', `unknown field ${JSON.stringify(k.slice(0, 40))}`);
  }
  if (msg.all !== undefined && msg.all !== true) throw new LiveError('INVALID_MESSAGE', 'all must be true when present');
  const raw = msg.campaigns ?? [];
  if (!Array.isArray(raw)) throw new LiveError('INVALID_MESSAGE', 'campaigns must be an array of campaign IDs');
  if (msg.all === undefined && raw.length === 0) throw new LiveError('INVALID_MESSAGE', 'name campaigns or send "all": true');
  if (raw.length > limits.liveSubscriptionCampaignsMax) {
    throw new LiveError('TOO_MANY_CAMPAIGNS', `a connection may name at most liveSubscriptionCampaignsMax = ${limits.liveSubscriptionCampaignsMax} campaigns`);
  }
  for (const id of raw) {
    if (typeof id !== 'string' || !campaignIdPattern.test(id)) throw new LiveError('INVALID_CAMPAIGN_ID', `campaign id ${JSON.stringify(String(id).slice(0, 80))} is not valid`);
  }
  return { all: msg.all === true, ids: [...new Set(raw as string[])] };
}

/**
 * Sec-WebSocket-Protocol authentication: an offered `bearer.<token>` is checked; the protocol the
 * server selects is the first other one offered (for example `pacer-live`), else that bearer entry,
 * because a client that offers protocols refuses an answer that selects none.
 */
function protocolAuth(offered: string, token: string): { selected: string; auth: 'ok' | 'wrong' | 'none' } {
  const list = offered.split(',').map((p) => p.trim()).filter((p) => p !== '');
  const bearer = list.find((p) => p.startsWith('bearer.'));
  const other = list.find((p) => !p.startsWith('bearer.'));
  if (bearer === undefined) return { selected: other ?? '', auth: 'none' };
  const auth = checkBearer(`Bearer ${bearer.slice(7)}`, token) === 'ok' ? 'ok' : 'wrong';
  return { selected: other ?? bearer, auth };
}
