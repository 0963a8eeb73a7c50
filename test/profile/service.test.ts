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

function service(minutesOf: (id: string) => number, ids: string[] = []) {
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
