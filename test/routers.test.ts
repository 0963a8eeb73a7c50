import { Agent, request } from 'node:http';
import t from 'tap';
import { auth, createCampaign, type Pacer, startPacer, status } from './helpers/server.js';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from './helpers/services.js';
import { streamClient } from './helpers/stream-client.js';

/**
 * PACER_ROUTERS=2: two router threads share the port, each with its own channel to every shard.
 * Money must stay exact whichever router a request reaches, so every test here spreads its work
 * over many connections (the kernel hashes each connection to one router) and checks, through
 * pacer_router_requests_total, that both routers really took part.
 */
const pacer = await startPacer({ routers: 2 });
t.teardown(() => pacer.stop());
const open = { strategy: 'ASAP', breaker: { enabled: false } };

interface Answer {
  status: number;
  body: any;
}

/** A POST on a connection of the agent's (agent false: a connection of its own). */
function postOn(agent: Agent | false, base: string, path: string, body: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? null : JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function routerRequests(p: Pacer): Promise<Map<string, number>> {
  const text = await fetch(`${p.adminUrl}/metrics`, { headers: auth }).then((r) => r.text());
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^pacer_router_requests_total\{thread="(router-\d+)"\} (\d+)$/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

/** Runs fn and returns how many requests each router received meanwhile. */
async function perRouter(p: Pacer, fn: () => Promise<void>): Promise<number[]> {
  const before = await routerRequests(p);
  await fn();
  const after = await routerRequests(p);
  return ['router-0', 'router-1'].map((r) => (after.get(r) ?? 0) - (before.get(r) ?? 0));
}

t.test('the pacer starts two router threads, each ready, each reporting its own metrics', async (t) => {
  t.match(pacer.stderr(), /"msg":"ready".*"routers":2/);
  const text = await fetch(`${pacer.adminUrl}/metrics`, { headers: auth }).then((r) => r.text());
  for (const thread of ['router-0', 'router-1', 'main']) {
    t.match(text, new RegExp(`^nodejs_heap_size_used_bytes\\{thread="${thread}"\\} `, 'm'), `${thread} reports its heap`);
    t.match(text, new RegExp(`^pacer_event_loop_utilization_ratio\\{thread="${thread}"\\} `, 'm'));
  }
  t.match(text, /^pacer_ready 1$/m, 'ready once, from main');
  t.equal(text.match(/^process_resident_memory_bytes /gm)?.length, 1, 'process metrics once');
  // Every connection is answered ready, whichever router it reached.
  const answers = await Promise.all(
    Array.from({ length: 24 }, () =>
      new Promise<number>((resolve, reject) => {
        request(`${pacer.url}/readyz`, { agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      }),
    ),
  );
  t.same(new Set(answers), new Set([200]), 'every router answers /readyz 200');
});

t.test('concurrent bids over many connections, through both routers, reserve exactly the budget', async (t) => {
  await createCampaign(pacer, { id: 'two-routers', dailyBudgetMicros: 100_000, ...open });
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  t.teardown(() => agent.destroy());
  let answers: Answer[] = [];
  const split = await perRouter(pacer, async () => {
    answers = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) =>
        postOn(agent, pacer.url, '/v1/decide', { campaignId: 'two-routers', bidMicros: 1_000, requestId: `bid-${i}` }),
      ),
    );
  });
  t.ok(split[0]! > 0 && split[1]! > 0, `both routers received bids (${split.join(' / ')})`);
  const allowed = answers.filter((a) => a.status === 200 && a.body.allow === true);
  t.equal(allowed.length, 100, 'exactly the 100 bids the budget holds were allowed');
  t.ok(answers.every((a) => a.status === 200), 'every bid was answered');
  const s = await status(pacer, 'two-routers');
  t.equal(s.reservedMicros, 100_000);

  // Their win notices, again over many connections: settled is the budget to the micro.
  const ids = answers.map((a, i) => (a.body.allow === true ? i : -1)).filter((i) => i >= 0);
  const spends = await Promise.all(
    ids.map((i) => postOn(agent, pacer.url, '/v1/spend', { campaignId: 'two-routers', eventId: `win-${i}`, amountMicros: 1_000, requestId: `bid-${i}` })),
  );
  t.ok(spends.every((a) => a.status === 200 && a.body.status === 'applied' && a.body.matchedReservation === true));
  const after = await status(pacer, 'two-routers');
  t.match(after, { settledMicros: 100_000, reservedMicros: 0, remainingMicros: 0 });
});

t.test('one spend event resent on many connections counts once', async (t) => {
  await createCampaign(pacer, { id: 'resent', dailyBudgetMicros: 10_000_000, ...open });
  let answers: Answer[] = [];
  const split = await perRouter(pacer, async () => {
    // Each resend on a connection of its own: the copies reach both routers at the same time.
    answers = await Promise.all(
      Array.from({ length: 40 }, () => postOn(false, pacer.url, '/v1/spend', { campaignId: 'resent', eventId: 'imp-1', amountMicros: 2_500 })),
    );
  });
  t.ok(split[0]! > 0 && split[1]! > 0, `the copies reached both routers (${split.join(' / ')})`);
  t.equal(answers.filter((a) => a.body.status === 'applied').length, 1, 'applied once');
  t.equal(answers.filter((a) => a.body.status === 'duplicate').length, 39, 'the other copies are duplicates');
  t.equal((await status(pacer, 'resent')).settledMicros, 2_500);
});


t.test('the stream works on every router: bids from many connections reserve exactly the budget', async (t) => {
  await createCampaign(pacer, { id: 'streamed', dailyBudgetMicros: 50_000, ...open });
  let frames: any[][] = [];
  const split = await perRouter(pacer, async () => {
    const clients = await Promise.all(Array.from({ length: 16 }, () => streamClient(pacer.port)));
    t.teardown(() => clients.forEach((c) => c.ws.close()));
    // 16 connections × 2 frames × 25 bids of 1,000 micros against a budget for 50.
    frames = await Promise.all(
      clients.flatMap((c, k) =>
        [0, 1].map((f) => c.request(Array.from({ length: 25 }, (_, i) => [1, i, 'streamed', 1_000, `s-${k}-${f}-${i}`]))),
      ),
    );
  });
  t.ok(split[0]! > 0 && split[1]! > 0, `both routers served stream frames (${split.join(' / ')})`);
  const results = frames.flat();
  t.equal(results.length, 800, 'every operation answered');
  t.ok(results.every((r) => r[0] === 1), 'as decisions');
  t.equal(results.filter((r) => r[2] === true).length, 50, 'exactly the 50 bids the budget holds were allowed');
  t.equal((await status(pacer, 'streamed')).reservedMicros, 50_000);
});

t.test('SIGTERM drains both routers: in-flight spends are answered, stored once, and the pacer exits 0', async (t) => {
  const db = await createDatabase('routers_drain');
  const prefix = uniqueName('pacer-routers');
  t.teardown(async () => {
    await dropRedisPrefix(redisUrl, prefix);
    await db.drop();
  });
  const env = { PACER_STORE: 'redis', PACER_REDIS_URL: redisUrl, PACER_REDIS_KEY_PREFIX: prefix, PACER_DATABASE_URL: db.url };
  const p = await startPacer({ routers: 2, env, keepData: true });
  await createCampaign(p, { id: 'drained', dailyBudgetMicros: 1_000_000_000, ...open });
  // 300 spends on 300 connections of their own; the signal goes out when the first is answered.
  let first!: () => void;
  const firstAnswered = new Promise<void>((r) => (first = r));
  const inFlight = Array.from({ length: 300 }, (_, i) =>
    postOn(false, p.url, '/v1/spend', { campaignId: 'drained', eventId: `d-${i}`, amountMicros: 10 })
      .then((a) => {
        first();
        return a;
      })
      .catch((e: Error) => e),
  );
  await firstAnswered;
  const code = await p.stop('SIGTERM');
  const answers = await Promise.all(inFlight);
  t.equal(code, 0, 'exit code 0');
  t.notMatch(p.stderr(), /unanswered|did not stop/, 'every router drained in time');
  const applied = answers.filter((a) => !(a instanceof Error) && a.status === 200 && a.body.status === 'applied').length;
  const refused = answers.filter((a) => !(a instanceof Error) && a.status === 503).length;
  const failed = answers.filter((a) => a instanceof Error).length;
  t.equal(applied + refused + failed, 300);
  t.ok(applied > 0, `${applied} spends acknowledged, ${refused} refused with 503, ${failed} connections refused`);

  // What was acknowledged is what is stored: a restart reads it back from Redis.
  const again = await startPacer({ routers: 2, env, dataDir: p.dataDir });
  t.teardown(() => again.stop());
  const settled = (await status(again, 'drained')).settledMicros as number;
  t.equal(settled, applied * 10, 'every acknowledged spend was stored, and nothing else');
});
