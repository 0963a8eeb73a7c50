import { readFileSync } from 'node:fs';
import t from 'tap';
import WebSocket from 'ws';
import { campaign } from './helpers/admin-client.js';
import { adminToken, auth, createCampaign, get, post, startPacer } from './helpers/server.js';

/** The admin port's live feed /v1/live (docs/live-protocol.md), over a real WebSocket. */
const pacer = await startPacer();
t.teardown(() => pacer.stop());
const liveUrl = `ws://127.0.0.1:${pacer.adminPort}/v1/live`;

/** A live client that keeps every frame it gets and can wait for one that matches. */
interface Client {
  ws: WebSocket;
  frames: any[];
  send(msg: unknown): void;
  next(match: (f: any) => boolean, timeoutMs?: number): Promise<any>;
  closed: Promise<{ code: number; reason: string }>;
}

async function open(protocols?: string[]): Promise<Client> {
  const ws = new WebSocket(liveUrl, protocols);
  const frames: any[] = [];
  const waiters: { match: (f: any) => boolean; resolve: (f: any) => void }[] = [];
  ws.on('message', (data: Buffer) => {
    const f = JSON.parse(data.toString('utf8'));
    frames.push(f);
    for (const w of [...waiters]) if (w.match(f)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(f);
    }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    closed,
    send: (msg) => ws.send(JSON.stringify(msg)),
    next(match, timeoutMs = 5_000) {
      const seen = frames.find(match);
      if (seen !== undefined) {
        frames.splice(frames.indexOf(seen), 1);
        return Promise.resolve(seen);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(frames).slice(0, 500)}`)), timeoutMs);
        waiters.push({ match, resolve: (f) => (clearTimeout(timer), frames.splice(frames.indexOf(f), 1), resolve(f)) });
      });
    },
  };
}

async function authed(): Promise<Client> {
  const c = await open();
  c.send({ type: 'auth', token: adminToken });
  await c.next((f) => f.type === 'hello');
  return c;
}

t.test('a client that sends a wrong token is closed with 4403', async (t) => {
  const c = await open();
  c.send({ type: 'auth', token: 'not-the-admin-token-at-all' });
  const { code } = await c.closed;
  t.equal(code, 4403);
});

t.test('a client whose first message is not auth is closed with 4401', async (t) => {
  const c = await open();
  c.send({ type: 'subscribe', all: true });
  const { code } = await c.closed;
  t.equal(code, 4401);
  t.equal(c.frames.length, 0, 'and got nothing before that');
});

t.test('a client that never authenticates is closed with 4401 after the auth timeout', async (t) => {
  const c = await open();
  const { code, reason } = await c.closed;
  t.equal(code, 4401);
  t.match(reason, /liveAuthTimeoutMs/);
});

t.test('the token may come as the bearer subprotocol; a wrong one is refused at the upgrade', async (t) => {
  const c = await open(['pacer-live', `bearer.${adminToken}`]);
  t.equal(c.ws.protocol, 'pacer-live', 'the server selects the other protocol, not the token');
  const hello = await c.next((f) => f.type === 'hello');
  t.equal(hello.health.degraded, false);
  c.ws.close();
  const refused = new WebSocket(liveUrl, ['pacer-live', 'bearer.wrong-token-wrong-token']);
  const status = await new Promise<number>((resolve) => refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
  t.equal(status, 403);
});

t.test('a spend on the hot path is pushed to a subscribed client', async (t) => {
  await createCampaign(pacer, campaign('live-spend', { dailyBudgetMicros: 1_000_000_000, strategy: 'ASAP' }));
  const c = await authed();
  t.teardown(() => c.ws.close());
  c.send({ type: 'subscribe', campaigns: ['live-spend'] });
  t.same((await c.next((f) => f.type === 'subscribed')).campaigns, ['live-spend']);
  const first = await c.next((f) => f.type === 'status');
  t.equal(first.campaigns[0].settledMicros, 0, 'the current status comes at once');
  const d = await post(pacer.url, '/v1/decide', { campaignId: 'live-spend', bidMicros: 5_000, requestId: 'live-r1' });
  t.equal(d.body.allow, true);
  await post(pacer.url, '/v1/spend', { campaignId: 'live-spend', eventId: 'live-e1', amountMicros: 4_321, requestId: 'live-r1' });
  const pushed = await c.next((f) => f.type === 'status' && f.campaigns.some((s: any) => s.settledMicros === 4_321));
  const s = pushed.campaigns.find((x: any) => x.campaignId === 'live-spend');
  t.match(s, { reservedMicros: 0, remainingMicros: 1_000_000_000 - 4_321, breaker: { state: 'CLOSED' } });
  for (const k of ['planMicros', 'throttle', 'pacingIndex', 'budgetMicros']) t.type(s[k], 'number', `${k} is given`);
});

t.test('a breaker trip and its manual reset are pushed as breaker frames', async (t) => {
  await createCampaign(pacer, campaign('live-brk', { dailyBudgetMicros: 1_000, strategy: 'ASAP', breaker: { enabled: true } }));
  const c = await authed();
  t.teardown(() => c.ws.close());
  c.send({ type: 'subscribe', campaigns: ['live-brk'] });
  await c.next((f) => f.type === 'subscribed');
  await post(pacer.url, '/v1/decide', { campaignId: 'live-brk', bidMicros: 990, requestId: 'brk-1' });
  const tripped = await c.next((f) => f.type === 'breaker' && f.to === 'OPEN');
  t.match(tripped, { campaignId: 'live-brk', from: 'CLOSED' });
  const reset = await post(pacer.adminUrl, '/v1/campaigns/live-brk/breaker/reset', {}, auth);
  t.equal(reset.status, 200);
  const closed = await c.next((f) => f.type === 'breaker' && f.from === 'OPEN');
  t.match(closed, { campaignId: 'live-brk', reason: 'MANUAL_RESET' });
});

t.test('a budget change, an archive and a restore are pushed to a client subscribed to all', async (t) => {
  await createCampaign(pacer, campaign('live-budget', { dailyBudgetMicros: 10_000 }));
  const c = await authed();
  t.teardown(() => c.ws.close());
  c.send({ type: 'subscribe', all: true });
  t.equal((await c.next((f) => f.type === 'subscribed')).all, true);
  const r = await post(pacer.adminUrl, '/v1/campaigns/live-budget/budget', { add: 5_000, reason: 'live test' }, { ...auth, 'x-pacer-actor': 'dana' });
  t.equal(r.status, 200);
  const b = await c.next((f) => f.type === 'budget');
  t.match(b, { campaignId: 'live-budget', budget: 'daily', oldMicros: 10_000, newMicros: 15_000, actor: 'dana', reason: 'live test' });
  const del = await fetch(`${pacer.adminUrl}/v1/campaigns/live-budget`, { method: 'DELETE', headers: auth });
  t.equal(del.status, 200);
  t.match(await c.next((f) => f.type === 'archived'), { campaignId: 'live-budget', archived: true });
  t.equal((await post(pacer.adminUrl, '/v1/campaigns/live-budget/restore', {}, auth)).status, 200);
  t.match(await c.next((f) => f.type === 'restored'), { campaignId: 'live-budget', archived: false });
});

t.test('bad subscriptions get an error frame and leave the connection open', async (t) => {
  const c = await authed();
  t.teardown(() => c.ws.close());
  c.send({ type: 'subscribe', campaigns: ['no-such-campaign'] });
  t.equal((await c.next((f) => f.type === 'error')).code, 'UNKNOWN_CAMPAIGN');
  c.send({ type: 'subscribe', campaigns: ['bad id!'] });
  t.equal((await c.next((f) => f.type === 'error')).code, 'INVALID_CAMPAIGN_ID');
  c.send({ type: 'subscribe', campaigns: Array.from({ length: 1_001 }, (_, i) => `c${i}`) });
  t.equal((await c.next((f) => f.type === 'error')).code, 'TOO_MANY_CAMPAIGNS');
  c.send({ type: 'dance' });
  t.equal((await c.next((f) => f.type === 'error')).code, 'INVALID_MESSAGE');
  c.send({ type: 'unsubscribe', all: true });
  t.same(await c.next((f) => f.type === 'subscribed'), { type: 'subscribed', all: false, campaigns: [] });
});

t.test('past liveConnectionsMax connections the upgrade is refused with 503 TOO_MANY_CONNECTIONS', async (t) => {
  const opened: WebSocket[] = [];
  t.teardown(() => opened.forEach((ws) => ws.close()));
  let refused: { status: number; body: string } | null = null;
  for (let i = 0; i < 40 && refused === null; i++) {
    const ws = new WebSocket(liveUrl);
    refused = await new Promise<{ status: number; body: string } | null>((resolve) => {
      ws.once('open', () => resolve(null));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
    });
    if (refused === null) opened.push(ws);
  }
  t.ok(refused !== null, `refused after ${opened.length} open connections`);
  t.ok(opened.length <= 16, 'at most liveConnectionsMax = 16 are open');
  t.equal(refused!.status, 503);
  t.equal(JSON.parse(refused!.body).error.code, 'TOO_MANY_CONNECTIONS');
});

t.test('a client that never reads is cut off and the server stays up', async (t) => {
  const ids = Array.from({ length: 50 }, (_, i) => `live-slow-${i}`);
  await post(pacer.adminUrl, '/v1/campaigns/bulk', { campaigns: ids.map((id) => campaign(id)) }, auth);
  const rssMb = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pacer.child.pid}/status`, 'utf8'))![1]) / 1024;
  const rssBefore = rssMb();
  const c = await authed();
  // Stop reading: the socket's receive buffer fills, then the server's send buffer.
  (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  // Each subscribe is answered with the named campaigns' statuses: a flood the reader never takes.
  let sent = 0;
  const timer = setInterval(() => {
    if (c.ws.readyState !== WebSocket.OPEN) return;
    c.send({ type: 'unsubscribe', all: true });
    c.send({ type: 'subscribe', campaigns: ids });
    sent++;
  }, 2);
  const result = await Promise.race([c.closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 60_000))]);
  clearInterval(timer);
  if (result === 'open') c.ws.terminate();
  t.equal(result, 'closed', `the server closed the connection (after ${sent} subscribes of ${ids.length} campaigns)`);
  const grown = rssMb() - rssBefore;
  t.ok(grown < 150, `server memory grew ${grown.toFixed(0)} MB, bounded by liveBufferedBytesMax`);
  t.equal((await get(pacer.adminUrl, '/healthz')).status, 200, 'the admin port still answers');
  const again = await authed();
  again.ws.close();
  t.pass('and a new live client is served');
});

t.test('graceful shutdown with a live client connected exits 0 and closes it with 1001', async (t) => {
  const other = await startPacer();
  const ws = new WebSocket(`ws://127.0.0.1:${other.adminPort}/v1/live`);
  await new Promise<void>((resolve) => ws.once('open', () => resolve()));
  ws.send(JSON.stringify({ type: 'auth', token: adminToken }));
  await new Promise<void>((resolve) => ws.once('message', () => resolve()));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  t.equal(await other.stop(), 0, 'the pacer exits 0');
  t.equal(await closed, 1001, 'the live client heard why');
});
