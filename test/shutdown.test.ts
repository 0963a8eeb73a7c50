import t from 'tap';
import { createCampaign, post, startPacer, status } from './helpers/server.js';

t.test('SIGTERM answers what is in flight, refuses new work and exits 0', async (t) => {
  const pacer = await startPacer();
  await createCampaign(pacer, { id: 'bye', dailyBudgetMicros: 1_000_000_000, strategy: 'ASAP' });
  // Requests in flight when the signal arrives are answered, not dropped: the signal goes out as
  // soon as the first of 200 concurrent spends is answered, so the rest are mid-way.
  let first!: () => void;
  const firstAnswered = new Promise<void>((r) => (first = r));
  const inFlight = Array.from({ length: 200 }, (_, i) =>
    post(pacer.url, '/v1/spend', { campaignId: 'bye', eventId: `e-${i}`, amountMicros: 10 })
      .then((r) => {
        first();
        return r;
      })
      .catch((e: Error) => e),
  );
  await firstAnswered;
  const started = Date.now();
  const exit = pacer.stop('SIGTERM');
  const answers = await Promise.all(inFlight);
  const code = await exit;
  t.equal(code, 0, 'exit code 0');
  t.ok(Date.now() - started < 10_000, 'stopped within the grace period');
  const applied = answers.filter((a) => !(a instanceof Error) && a.status === 200 && a.body.status === 'applied').length;
  const refused = answers.filter((a) => !(a instanceof Error) && a.status === 503).length;
  const failed = answers.filter((a) => a instanceof Error).length;
  t.equal(applied + refused + failed, 200);
  t.ok(applied > 0, `${applied} spends in flight were acknowledged`);
  t.match(pacer.stderr(), /"msg":"shutting down"/);
  t.notMatch(pacer.stderr(), /unanswered/, 'nothing the shards had was left unanswered');
  t.match(pacer.stderr(), /"msg":"stopped","exitCode":0/);
});

t.test('SIGINT stops an idle pacer with exit 0 and new connections are refused', async (t) => {
  const pacer = await startPacer();
  const s = await post(pacer.url, '/v1/decide', { campaignId: 'none' });
  t.equal(s.status, 200);
  t.equal(await pacer.stop('SIGINT'), 0);
  const after = await fetch(`${pacer.url}/healthz`).catch((e: Error) => e);
  t.ok(after instanceof Error, 'the port no longer accepts connections');
});

t.test('a status read right after creation shows an empty day', async (t) => {
  const pacer = await startPacer();
  t.teardown(() => pacer.stop());
  await createCampaign(pacer, { id: 'fresh', dailyBudgetMicros: 5_000 });
  const s = await status(pacer, 'fresh');
  t.match(s, { budgetMicros: 5_000, settledMicros: 0, reservedMicros: 0, remainingMicros: 5_000 });
});
