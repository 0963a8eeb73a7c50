import pg from 'pg';
import { limits } from '../../shards/limits.js';
import { log } from '../log.js';
import type { ConfigChange } from './config-store.js';
import type { SqlConfigStore } from './sql-config.js';

/**
 * Configuration everywhere: every pacer sharing one PostgreSQL hears every stored campaign change
 * and every breaker reset, from whichever instance made it (ARCHITECTURE.md, "Configuration
 * reaches every instance").
 *
 * One dedicated connection LISTENs on pacer_config; migrations/0005 makes every write to
 * campaigns, and every breaker reset, insert a config_changes row whose trigger NOTIFYs. PostgreSQL
 * delivers a notification when its transaction commits, to every listening connection.
 *
 * Notifications are lost while the listening connection is down, so after every (re)connect, and
 * once at the start, the feed reads config_changes from its last contact with the database less
 * configCatchUpOverlapMs (a row's time is its transaction's start, and it may commit later), and
 * hands those changes over too. Handing a change over twice is harmless: the admin applies a
 * configuration only when its version is newer than the one it holds, and the feed remembers the
 * sequence numbers it delivered within the overlap. An instance away for longer than the change log
 * is kept (configChangesRetentionMs) compares every campaign's version instead.
 */
export interface ConfigFeedHandler {
  /** Stored configuration changed: reload these campaigns (some may be unchanged for this instance). */
  configChanged(campaignIds: string[]): Promise<void>;
  /** Everything may have changed (the log did not reach back far enough): compare every version. */
  reloadAll(): Promise<void>;
  /** An operator reset this campaign's breaker on another instance. */
  breakerReset(campaignId: string): Promise<void>;
}

export interface ConfigFeedOptions {
  databaseUrl: string;
  /** This instance's ID: breaker resets it made itself are not applied twice. */
  origin: string;
  store: SqlConfigStore;
  handler: ConfigFeedHandler;
}

const channel = 'pacer_config';

export class ConfigFeed {
  private client: pg.Client | null = null;
  private closed = false;
  private started = false;
  /** Database time of the last moment the feed knew it was hearing every notification. */
  private contactMs = 0;
  /** Sequence numbers delivered recently (seq → database time), so a catch-up skips them. */
  private readonly delivered = new Map<number, number>();
  private pending: ConfigChange[] = [];
  private draining: Promise<void> | null = null;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(private readonly options: ConfigFeedOptions) {}

  /**
   * Connects and LISTENs before the admin loads its catalogue, so nothing committed after the
   * load is missed; changes are held until begin().
   */
  async listen(): Promise<void> {
    try {
      await this.connect();
    } catch (err) {
      // Start without it; the reconnect catches up from here (the local clock stands in for the
      // database's; the overlap absorbs the difference).
      this.contactMs = Date.now();
      log('warn', 'config feed: cannot listen yet; retrying', { error: (err as Error).message });
      this.reconnect(1);
    }
  }

  /** The catalogue is loaded: hand over what arrived meanwhile, then everything as it comes. */
  begin(): void {
    this.started = true;
    this.schedule();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.databaseUrl,
      application_name: 'budget-pacer-config-feed',
      keepAlive: true,
      connectionTimeoutMillis: limits.databaseConnectTimeoutMs,
      query_timeout: limits.databaseStatementTimeoutMs,
    });
    client.on('notification', (msg) => this.onNotification(msg.payload));
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${channel}`);
      // Listening from here: anything committed after this point arrives as a notification.
      const now = await client.query<{ now_ms: number }>('SELECT floor(extract(epoch FROM now()) * 1000)::float8 AS now_ms');
      const nowMs = Number(now.rows[0]!.now_ms);
      // At the first start the catalogue is loaded after this point, so there is nothing to catch up.
      if (this.contactMs === 0) this.contactMs = nowMs;
      else await this.catchUp(nowMs);
    } catch (err) {
      client.removeAllListeners('notification');
      await client.end().catch(() => undefined);
      throw err;
    }
    this.client = client;
    this.heartbeat ??= setInterval(() => void this.beat(), limits.configFeedHeartbeatMs);
    this.heartbeat.unref();
  }

  private onNotification(payload: string | undefined): void {
    const change = parseChange(payload);
    if (change === null) {
      log('warn', 'config feed: a notification could not be read', { length: payload?.length ?? 0 });
      return;
    }
    this.pending.push(change);
    this.schedule();
  }

  /** Reads what was committed since the last contact (less the overlap), page by page. */
  private async catchUp(nowMs: number): Promise<void> {
    const since = this.contactMs - limits.configCatchUpOverlapMs;
    if (nowMs - since > limits.configChangesRetentionMs) {
      await this.options.handler.reloadAll();
      this.contactMs = nowMs;
      return;
    }
    let afterSeq = 0;
    for (;;) {
      const page = await this.options.store.changesSince(since, afterSeq, limits.configCatchUpPageRows);
      for (const c of page.changes) {
        if (!this.delivered.has(c.seq)) this.pending.push(c);
      }
      if (page.changes.length < limits.configCatchUpPageRows) break;
      afterSeq = page.changes[page.changes.length - 1]!.seq;
    }
    this.contactMs = nowMs;
    this.schedule();
  }

  /** A query on the listening connection: proves it alive and moves the catch-up point on. */
  private async beat(): Promise<void> {
    const client = this.client;
    if (client === null || this.closed) return;
    try {
      const r = await client.query<{ now_ms: number }>('SELECT floor(extract(epoch FROM now()) * 1000)::float8 AS now_ms');
      // Notifications sent before this answer have arrived before it (one connection, in order).
      this.contactMs = Number(r.rows[0]!.now_ms);
      this.forget();
    } catch (err) {
      this.lost(client, err as Error);
    }
  }

  /** The listening connection failed: drop it, and reconnect (which catches up) unless closing. */
  private lost(client: pg.Client, err: Error): void {
    if (client !== this.client) return;
    this.client = null;
    client.removeAllListeners('notification');
    void client.end().catch(() => undefined);
    if (this.closed) return;
    log('warn', 'config feed: listening connection lost; reconnecting', { error: err.message });
    this.reconnect(1);
  }

  private reconnect(attempt: number): void {
    const delay = Math.min(100 * attempt, limits.configFeedHeartbeatMs);
    setTimeout(() => {
      if (this.closed) return;
      this.connect().then(
        () => log('info', 'config feed: listening again; missed changes read'),
        () => this.reconnect(attempt + 1),
      );
    }, delay).unref();
  }

  private schedule(): void {
    if (!this.started || this.draining !== null || this.pending.length === 0) return;
    this.draining = this.drain().finally(() => {
      this.draining = null;
      this.schedule();
    });
  }

  /**
   * Hands pending changes over: configuration changes in one call, breaker resets one by one. When
   * the handler fails (the database or a shard did not answer) they are tried again shortly.
   */
  private async drain(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const fresh = batch.filter((c) => !this.delivered.has(c.seq));
    const ids = new Set<string>();
    const resets: string[] = [];
    for (const c of fresh) {
      if (c.kind === 'config') ids.add(c.campaignId);
      else if (c.origin !== this.options.origin && this.contactMs - c.atMs <= limits.configResetReplayMaxMs) resets.push(c.campaignId);
    }
    try {
      if (ids.size > 0) await this.options.handler.configChanged([...ids]);
      for (const id of resets) await this.options.handler.breakerReset(id);
      for (const c of fresh) this.delivered.set(c.seq, c.atMs);
    } catch (err) {
      log('warn', 'config feed: applying changes failed; retrying', { error: (err as Error).message });
      await new Promise((r) => setTimeout(r, limits.configFeedHeartbeatMs / 4).unref());
      if (!this.closed) this.pending = [...fresh, ...this.pending];
    }
  }

  /** Delivered sequence numbers older than the overlap cannot come back in a catch-up. */
  private forget(): void {
    const before = this.contactMs - 2 * limits.configCatchUpOverlapMs;
    for (const [seq, at] of this.delivered) if (at < before) this.delivered.delete(seq);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    const client = this.client;
    this.client = null;
    // A drain in progress is not waited for: the shards are already stopping, and what it would
    // apply is in the database for the next start.
    if (client !== null) await client.end().catch(() => undefined);
  }
}

/** The NOTIFY payload pacer_config_notify() builds; null when it is not one. */
export function parseChange(payload: string | undefined): ConfigChange | null {
  if (payload === undefined || payload.length > 8_000) return null;
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (!Number.isSafeInteger(o.seq) || typeof o.campaignId !== 'string' || typeof o.origin !== 'string' || typeof o.atMs !== 'number') return null;
  if (o.kind !== 'config' && o.kind !== 'breakerReset') return null;
  const version = o.version === null ? null : Number.isSafeInteger(o.version) ? (o.version as number) : undefined;
  if (version === undefined) return null;
  return { seq: o.seq as number, kind: o.kind, campaignId: o.campaignId, version, origin: o.origin, atMs: o.atMs };
}
