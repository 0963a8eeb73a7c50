import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import t from 'tap';
import { campaignKeys } from '../../src/store/redis.js';
import { expectedTotals, makeEvents, percentile, send, type SendLog, streamWithResends } from '../helpers/load.js';
import { auth, createCampaign, get, post, startPacer, status } from '../helpers/server.js';
import { createDatabase, startOwnRedis } from '../helpers/services.js';

/**
 * Redis goes away mid-load and comes back, twice: first stopped (connections refused), then hung
 * (SIGSTOP: connections open, no answers). Throughout, decisions keep being answered from memory
 * and spend keeps being acknowledged through the spool; /readyz says degraded. When Redis returns
 * the spool is replayed, and after every event is sent again the totals are exact, in memory and
 * in Redis. The test runs its own redis-server on a free port: the machine's Redis is never touched.
 */
const redis = await startOwnRedis();
const db = await createDatabase('outage');
t.teardown(async () => {
  await redis.destroy();
  await db.drop();
});
const env = { PACER_STORE: 'redis', PACER_REDIS_URL: redis.url, PACER_DATABASE_URL: db.url };

async function readyz(url: string): Promise<string> {
  return (await get(url, '/readyz')).body.status as string;
}

async function until(what: string, cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Decisions in a loop until stop(); returns their latencies and whether each was answered 200. */
async function decideLoop(url: string, campaignId: string, stop: () => boolean): Promise<{ latencies: number[]; failures: number }> {
  const latencies: number[] = [];
  let failures = 0;
  let i = 0;
  while (!stop()) {
    const t0 = performance.now();
    const r = await post(url, '/v1/decide', { campaignId, bidMicros: 1, requestId: `probe-${i++}` }).catch(() => null);
    latencies.push(performance.now() - t0);
    if (r === null || r.status !== 200 || typeof r.body.allow !== 'boolean') failures++;
  }
  return { latencies, failures };
}

function summary(lat: number[]): string {
  const s = [...lat].sort((a, b) => a - b);
  return `n=${s.length} p50=${percentile(s, 50).toFixed(1)} ms p99=${percentile(s, 99).toFixed(1)} ms max=${s.at(-1)?.toFixed(1)} ms`;
}

t.test('a Redis outage mid-load: the hot path answers, spend is spooled, totals stay exact', async (t) => {
  const pacer = await startPacer({ env });
  t.teardown(() => pacer.stop());
  const campaigns = ['out-a', 'out-b', 'out-c'];
  for (const id of [...campaigns, 'out-probe']) {
    await createCampaign(pacer, { id, dailyBudgetMicros: 1_000_000_000_000, strategy: 'ASAP', breaker: { enabled: false } });
  }
  const seed = 777;
  const events = makeEvents(campaigns, 2_400, seed);
  const stream = streamWithResends(events, 0.2, seed);
  const expected = expectedTotals(events);
  const third = Math.floor(stream.length / 3);

  // Healthy.
  const healthy: SendLog = { answers: [] };
  await send(pacer.url, stream.slice(0, third), 8, healthy);
  t.equal(await readyz(pacer.url), 'ready');
  const storedBefore = healthy.answers.filter((a) => a.answer === 'applied').map((a) => a.event).slice(0, 200);

  // Outage 1: Redis stopped.
  await redis.stop();
  let stopDecides = false;
  const decides1 = decideLoop(pacer.url, 'out-probe', () => stopDecides);
  const down: SendLog = { answers: [] };
  // Resends of events stored before the outage: answered from the spool now, corrected on replay.
  await send(pacer.url, [...stream.slice(third, 2 * third), ...storedBefore], 8, down);
  t.equal(await readyz(pacer.url), 'degraded', '/readyz reports degraded while Redis is down');
  const spooled = readdirSync(join(pacer.dataDir, 'spool')).filter((f) => f.endsWith('.spool'));
  t.ok(spooled.length >= 1, `spend is spooled to disk (${spooled.join(', ')})`);
  const created = await post(pacer.adminUrl, '/v1/campaigns', { id: 'out-new', dailyBudgetMicros: 1_000, strategy: 'ASAP' }, auth);
  t.equal(created.status, 503, 'a new campaign cannot load its counters while Redis is down');
  t.equal(created.body.error.code, 'STORE_UNAVAILABLE');
  stopDecides = true;
  const d1 = await decides1;
  t.equal(d1.failures, 0, 'every decision during the outage was answered');
  t.ok(d1.latencies.length > 20, `decisions kept flowing (${summary(d1.latencies)})`);
  t.equal(down.answers.filter((a) => a.answer === 'failed' || a.answer === 'error').length, 0, 'every spend during the outage was acknowledged');
  t.comment(`outage 1 (stopped): decide ${summary(d1.latencies)}; spend ack ${summary(down.answers.map((a) => a.latencyMs))}`);

  await redis.start();
  await until('the spool to replay', async () => (await readyz(pacer.url)) === 'ready');
  await until('the campaign created during the outage to serve', async () =>
    (await get(pacer.adminUrl, '/v1/campaigns/out-new/status', auth)).status === 200);

  // Outage 2: Redis hangs.
  redis.pause();
  stopDecides = false;
  const decides2 = decideLoop(pacer.url, 'out-probe', () => stopDecides);
  const hung: SendLog = { answers: [] };
  await send(pacer.url, stream.slice(2 * third), 8, hung);
  t.equal(await readyz(pacer.url), 'degraded');
  stopDecides = true;
  const d2 = await decides2;
  redis.resume();
  t.equal(d2.failures, 0, 'every decision while Redis hung was answered');
  t.equal(hung.answers.filter((a) => a.answer === 'failed' || a.answer === 'error').length, 0, 'every spend while Redis hung was acknowledged');
  const hungAcks = hung.answers.map((a) => a.latencyMs).sort((a, b) => a - b);
  t.ok(hungAcks.at(-1)! < 2_000, `no acknowledgement waited on the hung Redis beyond its deadline (${summary(hungAcks)})`);
  t.comment(`outage 2 (hung): decide ${summary(d2.latencies)}; spend ack ${summary(hungAcks)}`);
  await until('the spool to replay', async () => (await readyz(pacer.url)) === 'ready');

  // Everything again.
  const again: SendLog = { answers: [] };
  await send(pacer.url, stream, 8, again);
  t.equal(again.answers.filter((a) => a.answer === 'applied').length, 0, 'every event was already stored');
  const client = new Redis(redis.url);
  t.teardown(() => client.disconnect());
  for (const c of campaigns) {
    const s = await status(pacer, c);
    t.equal(s.settledMicros, expected.get(c), `${c}: settled in memory equals the sum of its distinct events`);
    t.equal(Number(await client.get(campaignKeys('pacer', c).day(s.day))), expected.get(c), `${c}: and so does Redis`);
  }
  t.same(readdirSync(join(pacer.dataDir, 'spool')).filter((f) => f.endsWith('.spool')), [], 'the spool is empty again');
});
