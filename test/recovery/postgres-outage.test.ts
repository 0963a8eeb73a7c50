import { connect, createServer, type Server, type Socket } from 'node:net';
import t from 'tap';
import { auth, createCampaign, get, post, startPacer } from '../helpers/server.js';
import { createDatabase, dropRedisPrefix, freePort, pgAdminUrl, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * PostgreSQL becomes unreachable (a TCP proxy between the pacer and the machine's PostgreSQL is cut,
 * so the real server is never stopped): the hot path is unaffected, admin writes answer 503
 * STORE_UNAVAILABLE, /readyz says degraded, and the minute history of the outage is written once
 * the database is back.
 */
class CuttableProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  constructor(readonly port: number, private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server !== null) await new Promise((r) => server.close(r));
  }
}

const db = await createDatabase('pgout');
const prefix = uniqueName('pacer-pgout');
const target = new URL(pgAdminUrl);
const proxy = new CuttableProxy(await freePort(), { host: target.hostname, port: Number(target.port || 5432) });
await proxy.open();
const viaProxy = new URL(db.url);
viaProxy.port = String(proxy.port);
t.teardown(async () => {
  await proxy.cut();
  await dropRedisPrefix(redisUrl, prefix);
  await db.drop();
});

t.test('PostgreSQL unreachable: hot path unaffected, admin writes 503, history catches up', async (t) => {
  const pacer = await startPacer({
    env: {
      PACER_STORE: 'redis',
      PACER_REDIS_URL: redisUrl,
      PACER_REDIS_KEY_PREFIX: prefix,
      PACER_DATABASE_URL: viaProxy.toString(),
      PACER_HISTORY_FLUSH_MS: '300',
    },
  });
  t.teardown(() => pacer.stop());
  await createCampaign(pacer, { id: 'pg-1', dailyBudgetMicros: 10_000_000, strategy: 'ASAP', breaker: { enabled: false } });
  // History rows are per minute, stamped with the minute's start.
  const outageStart = new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString();

  await proxy.cut();
  const write = await post(pacer.adminUrl, '/v1/campaigns', { id: 'pg-1', dailyBudgetMicros: 20_000_000, strategy: 'ASAP' }, auth);
  t.equal(write.status, 503, 'an admin write answers 503');
  t.equal(write.body.error.code, 'STORE_UNAVAILABLE');
  t.match(write.body.error.message, /configuration database/, 'with a message that says what is down');
  t.equal(write.headers.get('retry-after'), '1');
  const unchanged = await get(pacer.adminUrl, '/v1/campaigns/pg-1', auth);
  t.equal(unchanged.body.campaign.dailyBudgetMicros, 10_000_000, 'the refused write changed nothing');

  const started = performance.now();
  let settled = 0;
  let allowed = 0;
  for (let i = 0; i < 200; i++) {
    const d = await post(pacer.url, '/v1/decide', { campaignId: 'pg-1', bidMicros: 100, requestId: `q${i}` });
    if (d.body.allow === true) allowed++;
    const s = await post(pacer.url, '/v1/spend', { campaignId: 'pg-1', eventId: `w${i}`, amountMicros: 90, requestId: `q${i}` });
    if (s.body.status === 'applied') settled += 90;
  }
  const perPairMs = (performance.now() - started) / 200;
  t.equal(allowed, 200, 'every decision was answered and allowed during the outage');
  t.equal(settled, 200 * 90, 'every spend was applied during the outage');
  t.ok(perPairMs < 50, `decide + spend took ${perPairMs.toFixed(2)} ms per pair during the outage`);
  t.equal((await get(pacer.url, '/readyz')).body.status, 'degraded', '/readyz reports degraded');

  await proxy.open();
  const end = Date.now() + 15_000;
  let history: { buckets: { spendEvents: number; settledMicros: number }[] } | null = null;
  for (;;) {
    const h = await get(pacer.adminUrl, `/v1/campaigns/pg-1/history?from=${encodeURIComponent(outageStart)}`, auth);
    if (h.status === 200) {
      history = h.body;
      const events = history!.buckets.reduce((n, m) => n + m.spendEvents, 0);
      if (events >= 200) break;
    }
    if (Date.now() > end) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(history?.buckets.reduce((n, m) => n + m.spendEvents, 0), 200, 'the history of the outage was written after it');
  t.equal(history?.buckets.reduce((n, m) => n + m.settledMicros, 0), 200 * 90);
  for (let i = 0; (await get(pacer.url, '/readyz')).body.status !== 'ready' && i < 50; i++) await new Promise((r) => setTimeout(r, 100));
  t.equal((await get(pacer.url, '/readyz')).body.status, 'ready', '/readyz is ready again');
  const again = await post(pacer.adminUrl, '/v1/campaigns', { id: 'pg-1', dailyBudgetMicros: 20_000_000, strategy: 'ASAP' }, auth);
  t.equal(again.status, 200, 'admin writes work again');
});
