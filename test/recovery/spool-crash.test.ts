import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import t from 'tap';
import { campaignKeys } from '../../src/store/redis.js';
import { expectedTotals, makeEvents, send, type SendLog } from '../helpers/load.js';
import { createCampaign, startPacer, status } from '../helpers/server.js';
import { createDatabase, startOwnRedis } from '../helpers/services.js';

/**
 * The worst case for the spool: Redis is down, spend is acknowledged from the spool, and then the
 * pacer is killed with kill -9. The next start replays the spool into Redis before any campaign
 * loads, so the acknowledged spend is there, once, and /readyz waits for it.
 */
const redis = await startOwnRedis();
const db = await createDatabase('spoolcrash');
const dataDir = mkdtempSync(join(tmpdir(), 'pacer-spoolcrash-'));
t.teardown(async () => {
  await redis.destroy();
  await db.drop();
  rmSync(dataDir, { recursive: true, force: true });
});
const env = { PACER_STORE: 'redis', PACER_REDIS_URL: redis.url, PACER_DATABASE_URL: db.url };

t.test('spend acknowledged from the spool survives kill -9 and is replayed once at the next start', async (t) => {
  let pacer = await startPacer({ env, dataDir });
  await createCampaign(pacer, { id: 'sc-1', dailyBudgetMicros: 1_000_000_000, strategy: 'ASAP', breaker: { enabled: false } });
  const before = makeEvents(['sc-1'], 300, 31);
  await send(pacer.url, before, 8, { answers: [] });

  await redis.stop();
  const during = makeEvents(['sc-1'], 400, 32);
  const spooled: SendLog = { answers: [] };
  // New events and resends of stored ones, all while Redis is down.
  await send(pacer.url, [...during, ...before.slice(0, 100)], 8, spooled);
  t.equal(spooled.answers.filter((a) => a.answer === 'applied').length, 400, 'new events acknowledged from the spool');
  // Resends of events stored before the outage: the shard remembers them and answers at once.
  t.equal(spooled.answers.filter((a) => a.answer === 'duplicate').length, 100, 'resends of stored events are duplicates');
  t.ok(readdirSync(join(dataDir, 'spool')).length >= 1, 'the spool file is on disk');
  await pacer.kill();

  await redis.start();
  pacer = await startPacer({ env, dataDir });
  t.teardown(() => pacer.stop());
  t.match(pacer.stderr(), /spool of an earlier run replayed/, 'the leftover spool was replayed at startup');
  t.same(readdirSync(join(dataDir, 'spool')).filter((f) => f.endsWith('.spool')), [], 'and deleted');
  const expected = expectedTotals([...before, ...during]).get('sc-1');
  const s = await status(pacer, 'sc-1');
  t.equal(s.settledMicros, expected, 'settled holds every distinct acknowledged event once');
  const client = new Redis(redis.url);
  t.teardown(() => client.disconnect());
  t.equal(Number(await client.get(campaignKeys('pacer', 'sc-1').day(s.day))), expected, 'so does Redis');
  const again: SendLog = { answers: [] };
  await send(pacer.url, [...before, ...during], 8, again);
  t.equal(again.answers.filter((a) => a.answer === 'duplicate').length, 700, 'every event is known after the replay');
});
