import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import t from 'tap';
import { campaignKeys } from '../../src/store/redis.js';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';
import { createCampaign, post, startPacer, status } from '../helpers/server.js';
import { expectedTotals, makeEvents, send, type SendLog, streamWithResends } from '../helpers/load.js';

/**
 * kill -9 in the middle of a spend stream, with the real Redis and PostgreSQL: concurrent clients
 * send spend events (some twice), the pacer is killed while requests are in flight, restarted on
 * the same data, and every event is sent again. Afterwards each campaign's settled total equals
 * the sum of its distinct events exactly, every event acknowledged before the kill is found a
 * duplicate after it, and reservations made before the kill are still reserved.
 */
const db = await createDatabase('crash');
const prefix = uniqueName('pacer-crash');
const dataDir = mkdtempSync(join(tmpdir(), 'pacer-crash-'));
t.teardown(async () => {
  await dropRedisPrefix(redisUrl, prefix);
  await db.drop();
  rmSync(dataDir, { recursive: true, force: true });
});
const env = { PACER_STORE: 'redis', PACER_REDIS_URL: redisUrl, PACER_REDIS_KEY_PREFIX: prefix, PACER_DATABASE_URL: db.url };

t.test('kill -9 mid-stream loses no acknowledged spend and counts nothing twice', async (t) => {
  const campaigns = ['crash-a', 'crash-b', 'crash-c', 'crash-d', 'crash-e'];
  const seed = 4242;
  const events = makeEvents(campaigns, 3_000, seed);
  const stream = streamWithResends(events, 0.25, seed);
  const expected = expectedTotals(events);

  let pacer = await startPacer({ env, dataDir });
  for (const id of [...campaigns, 'crash-res']) {
    await createCampaign(pacer, { id, dailyBudgetMicros: 1_000_000_000_000, strategy: 'ASAP', breaker: { enabled: false } });
  }
  // Money in flight: reservations that must survive the crash.
  for (let i = 0; i < 10; i++) {
    const d = await post(pacer.url, '/v1/decide', { campaignId: 'crash-res', bidMicros: 1_000, requestId: `held-${i}` });
    t.equal(d.body.reserved, true);
  }
  await new Promise((r) => setTimeout(r, 100)); // a flush interval is 2 ms: they are in Redis

  const before: SendLog = { answers: [] };
  let killed = false;
  const applied = (): number => before.answers.filter((a) => a.answer === 'applied').length;
  const sending = send(pacer.url, stream, 16, before, () => killed);
  while (applied() < events.length * 0.4) await new Promise((r) => setTimeout(r, 2));
  const victim = pacer;
  killed = true;
  await victim.kill();
  await sending;
  const ackedBefore = before.answers.filter((a) => a.answer === 'applied').map((a) => a.event);
  const failed = before.answers.filter((a) => a.answer === 'failed').length;
  t.ok(ackedBefore.length >= events.length * 0.4, `${ackedBefore.length} events acknowledged before the kill`);
  t.comment(`${before.answers.length} sends before the kill, ${failed} of them cut off in flight`);

  pacer = await startPacer({ env, dataDir });
  t.teardown(() => pacer.stop());
  const res = await status(pacer, 'crash-res');
  t.equal(res.reservedMicros, 10_000, 'reservations made before the kill are still held');

  // Every event acknowledged before the kill is already stored: its resend is a duplicate.
  const resend: SendLog = { answers: [] };
  await send(pacer.url, ackedBefore, 16, resend);
  t.equal(resend.answers.filter((a) => a.answer === 'duplicate').length, ackedBefore.length, 'no acknowledged spend was lost');

  // Then the whole stream again, resends included.
  const after: SendLog = { answers: [] };
  await send(pacer.url, stream, 16, after);
  t.equal(after.answers.filter((a) => a.answer === 'failed' || a.answer === 'error').length, 0, 'every send after the restart is answered');

  const redis = new Redis(redisUrl);
  t.teardown(() => redis.disconnect());
  for (const c of campaigns) {
    const s = await status(pacer, c);
    t.equal(s.settledMicros, expected.get(c), `${c}: settled equals the sum of its distinct events`);
    const stored = Number(await redis.get(campaignKeys(prefix, c).day(s.day)));
    t.equal(stored, expected.get(c), `${c}: Redis holds the same total`);
  }
});
