import t from 'tap';
import WebSocket from 'ws';
import { adminToken, createCampaign, post, startPacer } from './helpers/server.js';
import { createDatabase, startOwnRedis } from './helpers/services.js';

/**
 * /v1/live pushes store health changes at once (docs/live-protocol.md): this test stops and
 * restarts a Redis of its own, on its own port (the machine's Redis is never touched).
 */
const redis = await startOwnRedis();
const db = await createDatabase('live_health');
t.teardown(async () => {
  await redis.destroy();
  await db.drop();
});

t.test('a live client hears the counter store go degraded and come back', async (t) => {
  const pacer = await startPacer({ env: { PACER_STORE: 'redis', PACER_REDIS_URL: redis.url, PACER_DATABASE_URL: db.url } });
  t.teardown(() => pacer.stop());
  await createCampaign(pacer, { id: 'live-h', dailyBudgetMicros: 1_000_000_000, strategy: 'ASAP', breaker: { enabled: false } });
  const ws = new WebSocket(`ws://127.0.0.1:${pacer.adminPort}/v1/live`);
  t.teardown(() => ws.close());
  const frames: any[] = [];
  ws.on('message', (d: Buffer) => frames.push(JSON.parse(d.toString('utf8'))));
  await new Promise<void>((resolve) => ws.once('open', () => resolve()));
  ws.send(JSON.stringify({ type: 'auth', token: adminToken }));

  /** Sends spend (the store is only found down or back when it is used) until a frame matches. */
  let n = 0;
  const spendUntil = async (what: string, match: (f: any) => boolean): Promise<any> => {
    const end = Date.now() + 30_000;
    for (;;) {
      const f = frames.find(match);
      if (f !== undefined) return f;
      if (Date.now() > end) throw new Error(`no ${what} frame; got ${JSON.stringify(frames).slice(0, 400)}`);
      await post(pacer.url, '/v1/spend', { campaignId: 'live-h', eventId: `h-${n++}`, amountMicros: 1 }).catch(() => null);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const hello = await spendUntil('hello', (f) => f.type === 'hello');
  t.same(hello.health, { degraded: false, reason: null }, 'healthy at first');
  await redis.stop();
  const down = await spendUntil('degraded health', (f) => f.type === 'health' && f.degraded === true);
  t.type(down.reason, 'string', `the reason is given: ${down.reason}`);
  await redis.start();
  const back = await spendUntil('recovered health', (f) => f.type === 'health' && f.degraded === false);
  t.equal(back.reason, null, 'and the recovery is pushed too');
});
