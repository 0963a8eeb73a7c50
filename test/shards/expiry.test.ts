import t from 'tap';
import { Campaign, type CampaignHooks, type Reservation } from '../../shards/campaign.js';
import { ExpiryQueue } from '../../shards/expiry.js';
import { GlobalProfile } from '../../shards/pacing/profile.js';
import { sfc32 } from '../../shards/rng.js';
import { always, config, iso } from '../helpers/campaign.js';

/**
 * shards/expiry.ts: the shard's reservations by expiry time. Due ones come out earliest first; a
 * reservation settled or released leaves the queue at once instead of waiting out its TTL.
 */
const fake = (expiresAtMs: number, requestId: string): Reservation =>
  ({ amount: 1, expiresAtMs, campaign: null as unknown as Campaign, requestId, slot: -1 }) as Reservation;

t.test('pops what is due, earliest first, and keeps the rest whatever was removed in between', async (t) => {
  const random = sfc32(11);
  const q = new ExpiryQueue();
  const live = new Set<Reservation>();
  for (let step = 0; step < 20_000; step++) {
    const u = random();
    if (u < 0.55 || live.size === 0) {
      const r = fake(Math.floor(random() * 1_000), `r${step}`);
      q.push(r);
      live.add(r);
    } else if (u < 0.85) {
      // Remove one from the middle, as a settled reservation does.
      const pick = [...live][Math.floor(random() * live.size)]!;
      q.remove(pick);
      q.remove(pick); // a second remove is nothing
      live.delete(pick);
      if (pick.slot !== -1) {
        t.fail(`step ${step}: a removed reservation still has slot ${pick.slot}`);
        return;
      }
    } else {
      const now = Math.floor(random() * 1_000);
      const due = [...live].filter((r) => r.expiresAtMs <= now).sort((a, b) => a.expiresAtMs - b.expiresAtMs);
      const popped: Reservation[] = [];
      for (let r = q.popDue(now); r !== undefined; r = q.popDue(now)) popped.push(r);
      if (popped.map((r) => r.expiresAtMs).join() !== due.map((r) => r.expiresAtMs).join()) {
        t.fail(`step ${step}: popped ${popped.length} due, expected ${due.length}`);
        return;
      }
      for (const r of popped) live.delete(r);
    }
    if (q.size !== live.size) {
      t.fail(`step ${step}: the queue holds ${q.size}, ${live.size} are live`);
      return;
    }
  }
  t.pass('20,000 random pushes, removals and pops agree with a sorted list');
});

t.test('a reservation leaves the queue when it is settled, released or expired', async (t) => {
  const expiries = new ExpiryQueue();
  const hooks: CampaignHooks = { globalProfile: new GlobalProfile(), onBreaker: () => undefined, onRollover: () => undefined, expiries };
  const now = iso('2025-03-10T12:00:00Z');
  const c = new Campaign(config({ strategy: 'ASAP', breaker: { enabled: false } }), now, hooks);
  for (const id of ['won', 'lost', 'late']) c.decide(now, 1_000, id, always, 60_000, true);
  t.equal(expiries.size, 3, 'each reservation queued');
  c.applySpend(now + 1, 900, 'won');
  t.equal(expiries.size, 2, 'a spend that settles one takes it out');
  t.ok(c.release('lost'));
  t.equal(expiries.size, 1, 'so does a release');
  t.equal(expiries.popDue(now + 59_999), undefined, 'nothing due before its time');
  const due = expiries.popDue(now + 60_000)!;
  t.equal(due.requestId, 'late');
  t.equal(c.expire(due.requestId, due.expiresAtMs), 1_000, 'the due one expires');
  t.equal(expiries.size, 0);
  t.ok(c.restoreReservation('back', 500 as never, now + 5_000));
  t.equal(expiries.size, 1, 'a restored reservation is queued too');
});
