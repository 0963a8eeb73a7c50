import t from 'tap';
import type { Test } from 'tap';
import { auth, createCampaign, get, type Pacer, post, startPacer, status } from '../helpers/server.js';

/**
 * Money paths against the real server (memory store): a duplicate changes nothing, EXHAUSTED
 * reopens for a smaller bid that fits, spends that would take a kept total out of bounds are
 * refused with a code while the shard keeps serving, and client-driven memory has its limits.
 */
const open = { strategy: 'ASAP', breaker: { enabled: false } };

async function decide(p: Pacer, campaignId: string, bidMicros: number, requestId?: string) {
  return (await post(p.url, '/v1/decide', { campaignId, bidMicros, ...(requestId ? { requestId } : {}) })).body;
}

async function spend(p: Pacer, campaignId: string, eventId: string, amountMicros: number, requestId?: string) {
  return post(p.url, '/v1/spend', { campaignId, eventId, amountMicros, ...(requestId ? { requestId } : {}) });
}

/** The sequence: a resend of E1 naming another live reservation must not free it. */
async function duplicateSequence(t: Test, p: Pacer, id: string): Promise<void> {
  await createCampaign(p, { id, dailyBudgetMicros: 200, ...open });
  t.equal((await decide(p, id, 100, 'R1')).reserved, true, 'R1 reserved');
  t.equal((await decide(p, id, 100, 'R2')).reserved, true, 'R2 reserved');
  t.equal((await spend(p, id, 'E1', 100, 'R1')).body.status, 'applied');
  const resend = await spend(p, id, 'E1', 100, 'R2');
  t.equal(resend.body.status, 'duplicate', 'the resend naming R2 is a duplicate');
  let s = await status(p, id);
  t.equal(s.reservedMicros, 100, 'R2 is still reserved after the duplicate');
  t.equal(s.reservations, 1);
  const r3 = await decide(p, id, 100, 'R3');
  t.equal(r3.allow, false, 'R3 is refused: the budget is committed');
  t.equal(r3.reason, 'BUDGET_EXHAUSTED');
  t.equal((await spend(p, id, 'E2', 100, 'R2')).body.status, 'applied', 'the real win of R2 lands');
  s = await status(p, id);
  t.equal(s.settledMicros, 200, 'settled 200, never 300, against a budget of 200');
  t.equal(s.counters.duplicateEvents, 1);
}

t.test('with default limits', async (t) => {
  const p = await startPacer({ env: { PACER_SHARDS: '1' } });
  t.teardown(() => p.stop());

  await t.test('a spend answered duplicate changes nothing, not even another live reservation', (t) =>
    duplicateSequence(t, p, 'dup-mem'));

  await t.test('EXHAUSTED reopens for a later, smaller bid that fits', async (t) => {
    const id = 'exh-small';
    await createCampaign(p, { id, dailyBudgetMicros: 1_000, ...open });
    t.equal((await decide(p, id, 300)).allow, true, 'a bid of 300 is seen');
    t.equal((await spend(p, id, 'x1', 800)).body.status, 'applied');
    const big = await decide(p, id, 300);
    t.equal(big.reason, 'BUDGET_EXHAUSTED', '300 no longer fits in the 200 left');
    t.equal((await status(p, id)).breaker.state, 'EXHAUSTED');
    const small = await decide(p, id, 100);
    t.equal(small.allow, true, 'a bid of 100 fits in the 200 left and is allowed');
    t.not((await status(p, id)).breaker.state, 'EXHAUSTED');
    t.equal((await decide(p, id, 300)).reason, 'BUDGET_EXHAUSTED', 'a bid that does not fit is still refused');
  });

  await t.test('two spends near 2^53 are refused with INVALID_AMOUNT and the shard keeps serving', async (t) => {
    const id = 'near-max';
    await createCampaign(p, { id, dailyBudgetMicros: 1_000_000, ...open });
    for (const eventId of ['big-1', 'big-2']) {
      const r = await spend(p, id, eventId, 2 ** 53 - 2);
      t.equal(r.status, 400, `${eventId} refused`);
      t.equal(r.body.error.code, 'INVALID_AMOUNT');
    }
    t.equal((await spend(p, id, 'small', 1_000)).body.status, 'applied', 'the shard still applies spend');
    t.equal((await status(p, id)).settledMicros, 1_000, 'the refused spends changed nothing');
    t.equal((await get(p.url, '/healthz')).status, 200);
  });

  await t.test('a spend that would take the day past dayTotalMicrosMax is refused, the ones before it stay', async (t) => {
    const id = 'day-ceiling';
    await createCampaign(p, { id, dailyBudgetMicros: 1_000_000, ...open });
    // 4e14 is far above the edge's spend bound once it is enforced; then the edge refuses it first, with the same code.
    const first = await spend(p, id, 'c1', 400_000_000_000_000);
    if (first.status === 200) {
      t.equal((await spend(p, id, 'c2', 400_000_000_000_000)).status, 200);
      const third = await spend(p, id, 'c3', 400_000_000_000_000);
      t.equal(third.status, 400, 'the third would pass 1e15 micros');
      t.equal(third.body.error.code, 'INVALID_AMOUNT');
      t.match(third.body.error.message, /dayTotalMicrosMax/);
      t.equal((await status(p, id)).settledMicros, 800_000_000_000_000);
    } else {
      t.equal(first.body.error.code, 'INVALID_AMOUNT', 'refused at the edge');
    }
  });
});

t.test('with small limits', async (t) => {
  const p = await startPacer({
    env: {
      PACER_SHARDS: '1',
      PACER_EVENT_IDS_REMEMBERED_MAX: '0',
      PACER_RESERVATIONS_PER_CAMPAIGN_MAX: '3',
      PACER_RESERVATIONS_PER_SHARD_MAX: '5',
      PACER_CAMPAIGNS_MAX: '4',
    },
  });
  t.teardown(() => p.stop());

  await t.test('a campaign past its live reservations limit is denied RESERVATIONS_FULL', async (t) => {
    await createCampaign(p, { id: 'res-a', dailyBudgetMicros: 1_000_000, ...open });
    for (let i = 0; i < 3; i++) t.equal((await decide(p, 'res-a', 10, `a${i}`)).reserved, true);
    const full = await decide(p, 'res-a', 10, 'a3');
    t.same([full.allow, full.reason], [false, 'RESERVATIONS_FULL']);
    t.equal((await decide(p, 'res-a', 10, 'a0')).reserved, true, 'a retried decide of a live reservation still answers');
    t.equal((await decide(p, 'res-a', 10)).allow, true, 'a decide without requestId reserves nothing and is allowed');
    t.equal((await status(p, 'res-a')).reservations, 3);
  });

  await t.test('a shard past its live reservations limit is denied RESERVATIONS_FULL', async (t) => {
    await createCampaign(p, { id: 'res-b', dailyBudgetMicros: 1_000_000, ...open });
    for (let i = 0; i < 2; i++) t.equal((await decide(p, 'res-b', 10, `b${i}`)).reserved, true);
    t.equal((await decide(p, 'res-b', 10, 'b2')).reason, 'RESERVATIONS_FULL', 'the shard holds 5');
    t.same((await post(p.url, '/v1/release', { campaignId: 'res-a', requestId: 'a0' })).body, { released: true });
    t.equal((await decide(p, 'res-b', 10, 'b2')).reserved, true, 'a release makes room again');
    for (const [c, r] of [['res-a', 'a1'], ['res-a', 'a2'], ['res-b', 'b0'], ['res-b', 'b1'], ['res-b', 'b2']]) {
      await post(p.url, '/v1/release', { campaignId: c, requestId: r });
    }
  });

  await t.test('past the remembered event IDs a duplicate still changes nothing (the store decides)', (t) =>
    duplicateSequence(t, p, 'dup-store'));

  await t.test('creating a campaign past campaignsMax is answered 409 TOO_MANY_CAMPAIGNS', async (t) => {
    await createCampaign(p, { id: 'fourth', dailyBudgetMicros: 1_000 });
    const r = await post(p.adminUrl, '/v1/campaigns', { id: 'fifth', dailyBudgetMicros: 1_000 }, auth);
    t.equal(r.status, 409);
    t.equal(r.body.error.code, 'TOO_MANY_CAMPAIGNS');
    t.equal((await get(p.adminUrl, '/v1/campaigns/fifth', auth)).status, 404, 'nothing was created');
    const again = await post(p.adminUrl, '/v1/campaigns', { id: 'fourth', dailyBudgetMicros: 2_000 }, auth);
    t.equal(again.status, 200, 'an existing campaign can still be changed');
  });
});
