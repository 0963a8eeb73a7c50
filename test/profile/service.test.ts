import t from 'tap';
import type { ProfileService as Service } from '../../src/profile/service.js';

// The compiled module: its piscina pool loads task.js beside it, which only dist/ has.
const compiled = new URL('../../dist/src/profile/service.js', import.meta.url).href;
const { ProfileService } = (await import(compiled)) as { ProfileService: typeof Service };

/**
 * The profile service's fit (src/profile/service.ts) against a store and a host of the test's own:
 * a campaign whose history is too short for any hour to count answers null without starting the
 * pool's thread (the first round after a deployment visits every campaign, none with history),
 * and one with a full hour of history is fitted on the pool, stored and sent to its shard.
 */
const hourMs = 3_600_000;
const nowMs = Date.UTC(2026, 11, 3, 12, 0, 0);

function service(minutesOf: (id: string) => number, ids: string[] = [], slots = false) {
  const saved: string[] = [];
  const sent: string[] = [];
  const historyRead: string[] = [];
  const store = {
    history: async (campaignId: string) => {
      historyRead.push(campaignId);
      // One decision a minute from 10:00 UTC on, the given number of minutes.
      const minutes = Array.from({ length: minutesOf(campaignId) }, (_, i) => ({
        minuteMs: nowMs - 2 * hourMs + i * 60_000,
        decisions: 1,
        breakerState: 'CLOSED',
        deniedByReason: {},
      }));
      return { minutes, breakers: [] };
    },
    saveProfiles: async (ps: { campaignId: string }[]) => void saved.push(...ps.map((p) => p.campaignId)),
  };
  const host = {
    get: (id: string) => ({ config: { id, timezone: 'UTC' }, createdAt: '', updatedAt: '', archivedAt: null }),
    all: () => ids.map((id) => host.get(id)),
    // The catalogue's slots (src/admin/campaigns.ts): the service keeps its days by slot then.
    ...(slots ? { slotOf: (id: string) => (ids.includes(id) ? ids.indexOf(id) : undefined) } : {}),
    shardCount: 1,
    send: async (_shard: number, ps: { campaignId: string }[]) => {
      sent.push(...ps.map((p) => p.campaignId));
      return ps.length;
    },
  };
  const svc = new ProfileService(store as never, host as never, { halfLifeDays: 14, historyRetentionDays: 30, historyLagMs: 0 });
  return { svc, saved, sent, historyRead, pool: () => (svc as unknown as { pool: unknown }).pool };
}

t.test('a history shorter than one countable hour: null, and no pool thread is started', async (t) => {
  const s = service(() => 29);
  t.equal(await s.svc.fit('short', nowMs), null);
  t.same(s.historyRead, ['short'], 'the history was read');
  t.equal(s.pool(), null, 'no piscina pool (no thread) was created');
  t.same(s.saved, [], 'nothing stored');
  t.same(s.sent, [], 'nothing sent to the shard');
  await s.svc.close();
});

t.test('a full hour of history is fitted on the pool, stored and sent', async (t) => {
  const s = service(() => 60);
  const fitted = await s.svc.fit('full', nowMs);
  t.not(fitted, null);
  t.equal(fitted!.hoursUsed, 1, 'the one complete hour (10:00) is used; 11:00 has no rows');
  t.not(s.pool(), null, 'the fit ran on the pool');
  t.same(s.saved, ['full']);
  t.same(s.sent, ['full']);
  await s.svc.close();
});

t.test('a campaign created today is first fitted at its next local midnight: the round reads no history for it', async (t) => {
  const s = service(() => 60, ['new', 'restored']);
  await s.svc.created({ config: { id: 'new', timezone: 'UTC' } } as never, nowMs);
  // 'restored' stands for a campaign loaded at startup without a profile fitted today: it is fitted.
  await s.svc.tick(nowMs);
  t.same(s.historyRead, ['restored'], 'only the campaign that was not created today had its history read');
  t.same(s.saved.filter((id) => id !== '#global'), ['restored'], 'only it was fitted (#global: the shard-wide fallback refitted after the round)');
  await s.svc.close();
});

t.test('with the catalogue\'s slots: fitted days kept by slot, once a local day, again the next day', async (t) => {
  const ids = Array.from({ length: 1500 }, (_, i) => `c${i}`); // past the first 1,024 slots
  const s = service((id) => (id === 'c1499' || id === 'c3' ? 60 : 0), ids, true);
  await s.svc.created({ config: { id: 'c0', timezone: 'UTC' } } as never, nowMs);
  await s.svc.tick(nowMs);
  t.equal(s.historyRead.length, 1499, 'every campaign but the one created today was read once');
  t.notOk(s.historyRead.includes('c0'));
  t.same(s.saved.filter((id) => id !== '#global').sort(), ['c1499', 'c3'], 'the two with history were fitted');
  s.historyRead.length = 0;
  await s.svc.tick(nowMs + 60_000);
  t.same(s.historyRead, [], 'the same local day: nothing read again');
  const days = (s.svc as unknown as { fittedDay: { byId: Map<string, string>; size: number } }).fittedDay;
  t.equal(days.byId.size, 0, 'kept by slot, not in a Map');
  t.equal(days.size, 1500);
  await s.svc.tick(nowMs + 24 * hourMs);
  t.equal(s.historyRead.length, 1500, 'the next local day: every campaign, the one created yesterday too');
  await s.svc.close();
});
