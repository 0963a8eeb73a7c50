import t from 'tap';
import fc from 'fast-check';
import { mergeMinute, type MinuteRow } from '../../src/store/config-store.js';
import { MemoryConfigStore } from '../../src/store/memory.js';
import { type CampaignRecord, parseCampaign } from '../../src/model/campaign.js';

/**
 * The memory configuration store keeps its campaigns, audit trail and minute rows as columns
 * (src/store/memory.ts, src/model/table.ts). Its answers must be those of the plain objects it
 * replaced: here against a reference built the old way (a Map of row objects merged with
 * mergeMinute, filtered and sorted), over random writes in any order, merges and prunes.
 */

const minute = (campaignId: string, minuteMs: number, n: number, denied: Record<string, number>, shadow: boolean): MinuteRow => ({
  campaignId, minuteMs, day: new Date(minuteMs).toISOString().slice(0, 10), decisions: n, allowed: n - 1, denied: Object.values(denied).reduce((a, b) => a + b, 0),
  deniedByReason: denied, spendEvents: n % 3, settledMicros: n * 1_000 + 0.5, duplicateEvents: n % 2, unmatchedEvents: 0, expiredReservations: n % 5,
  budgetMicros: 1_000_000 + n, throttle: n / 7, breakerState: n % 2 === 0 ? 'CLOSED' : 'OPEN',
  ...(shadow ? { shadow: { strategy: n % 2 === 0 ? 'EVEN' : 'ASAP', decisions: n, allowed: n, deniedByReason: n % 2 === 0 ? {} : { PACED: 1 }, settledMicros: n, estimatedMicros: 2 * n } } : {}),
});

t.test('minute rows: the same answers as rows kept as objects, in any order, merged and pruned', async (t) => {
  const m0 = Date.UTC(2026, 11, 1);
  const op = fc.record({
    campaign: fc.constantFrom('a', 'b', 'c', 'unstored'),
    minute: fc.integer({ min: 0, max: 40 }),
    n: fc.integer({ min: 1, max: 1_000 }),
    denied: fc.constantFrom<Record<string, number>[]>({}, { PACED: 2 }, { PACED: 1, BREAKER_OPEN: 3 }),
    shadow: fc.boolean(),
    pruneAt: fc.option(fc.integer({ min: 0, max: 45 }), { freq: 10 }),
  });
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 80 }), async (ops) => {
      const store = new MemoryConfigStore();
      for (const id of ['a', 'b', 'c']) {
        await store.saveCampaign({ config: parseCampaign({ id, dailyBudgetMicros: 1_000 }, 1), createdAt: '2026-12-01T00:00:00.000Z', updatedAt: '2026-12-01T00:00:00.000Z', archivedAt: null }, null, 'test');
      }
      const ref = new Map<string, MinuteRow>();
      for (const o of ops) {
        if (o.pruneAt !== null) {
          const cutoff = m0 + o.pruneAt * 60_000;
          await store.prune(1, cutoff + 86_400_000);
          for (const [k, m] of ref) if (m.minuteMs < cutoff) ref.delete(k);
          continue;
        }
        const m = minute(o.campaign, m0 + o.minute * 60_000, o.n, o.denied, o.shadow);
        await store.writeHistory([m], []);
        const key = `${m.campaignId}\n${m.minuteMs}`;
        const have = ref.get(key);
        if (have === undefined) ref.set(key, structuredClone(m));
        else mergeMinute(have, structuredClone(m));
      }
      for (const id of ['a', 'b', 'c', 'unstored']) {
        const want = [...ref.values()].filter((m) => m.campaignId === id && m.minuteMs >= m0 + 5 * 60_000 && m.minuteMs < m0 + 30 * 60_000).sort((x, y) => x.minuteMs - y.minuteMs);
        const got = (await store.history(id, m0 + 5 * 60_000, m0 + 30 * 60_000)).minutes;
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          t.same(got, want, `campaign ${id}`);
          return false;
        }
      }
      return true;
    }),
    { numRuns: 200 },
  );
  t.pass('200 random histories agree byte for byte');
});

t.test('history written before its campaign was stored stays with it', async (t) => {
  const store = new MemoryConfigStore();
  const m0 = Date.UTC(2026, 11, 1);
  await store.writeHistory([minute('late', m0, 5, {}, false)], []);
  await store.saveCampaign({ config: parseCampaign({ id: 'late', dailyBudgetMicros: 1_000 }, 1), createdAt: '2026-12-01T00:00:00.000Z', updatedAt: '2026-12-01T00:00:00.000Z', archivedAt: null }, null, 'test');
  await store.writeHistory([minute('late', m0 + 60_000, 6, {}, false)], []);
  t.same((await store.history('late', m0, m0 + 120_000)).minutes.map((m) => m.decisions), [5, 6]);
});

t.test('the audit trail: one numbering across campaigns, pages by id, null budgets and odd timestamps', async (t) => {
  const store = new MemoryConfigStore();
  const rec = (id: string, v: number, body: Record<string, unknown>, at: string): CampaignRecord =>
    ({ config: parseCampaign({ id, ...body }, v), createdAt: '2026-12-01T00:00:00.000Z', updatedAt: at, archivedAt: null });
  const a1 = rec('a', 1, { dailyBudgetMicros: 1_000 }, '2026-12-01T00:00:00.000Z');
  const b1 = rec('b', 1, { dailyBudgetMicros: 5_000, lifetimeBudgetMicros: 9_000 }, '2026-12-01T00:00:01.000Z');
  const a2 = rec('a', 2, { dailyBudgetMicros: 2_000, lifetimeBudgetMicros: 7_000 }, '2026-12-01 00:00:02+00');
  t.ok(await store.saveCampaign(a1, null, 'ann'));
  t.ok(await store.saveCampaign(b1, null, 'bob', 'launch'));
  t.ok(await store.saveCampaign(a2, a1, 'ann', 'more'));
  t.notOk(await store.saveCampaign(a2, a1, 'ann'), 'a stale previous is refused');
  t.same(await store.budgetChanges('a'), [
    { id: 1, at: '2026-12-01T00:00:00.000Z', budget: 'daily', oldMicros: null, newMicros: 1_000, actor: 'ann', reason: null, version: 1 },
    { id: 4, at: '2026-12-01 00:00:02+00', budget: 'daily', oldMicros: 1_000, newMicros: 2_000, actor: 'ann', reason: 'more', version: 2 },
    { id: 5, at: '2026-12-01 00:00:02+00', budget: 'lifetime', oldMicros: null, newMicros: 7_000, actor: 'ann', reason: 'more', version: 2 },
  ]);
  t.same((await store.budgetChanges('b')).map((c) => [c.id, c.budget, c.reason]), [[2, 'daily', 'launch'], [3, 'lifetime', 'launch']]);
  t.same((await store.budgetChanges('a', 1, 1)).map((c) => c.id), [4], 'after an id, at most limit');
  t.same(await store.budgetChanges('nobody'), []);
});
