import t from 'tap';
import { Campaign } from '../../shards/campaign.js';
import { CampaignIndex, hashOf, IdIndex } from '../../shards/id-index.js';
import { GlobalProfile } from '../../shards/pacing/profile.js';
import { shardOf } from '../../src/hash.js';
import { config, iso } from '../helpers/campaign.js';

/**
 * The shard's campaigns by ID (shards/id-index.ts) answer what the Map they replace answered: every
 * ID added is found, in the order added, past the index's growth; an ID never added is not; a
 * campaign set again under its ID replaces the old one in its place.
 */
const noon = iso('2026-03-10T12:00:00Z');
const hooks = { globalProfile: new GlobalProfile(), onBreaker: () => {}, onRollover: () => {} };

t.test('an IdIndex finds every slot past its growth, and no ID it was not given', async (t) => {
  // IDs of one shard of four: they share fnv1a(id) % 4, which the finaliser must spread.
  const ids = Array.from({ length: 40_000 }, (_, i) => `camp-${i}`).filter((id) => shardOf(id, 4) === 1);
  const index = new IdIndex((slot) => ids[slot]!);
  ids.forEach((_, slot) => index.add(slot));
  let wrong = 0;
  ids.forEach((id, slot) => void (index.get(id) !== slot && wrong++));
  t.equal(wrong, 0, `all ${ids.length} IDs found at their slot`);
  t.equal(index.get('camp-40000'), undefined);
  t.equal(index.get(''), undefined);
  // The low bits of one shard's hashes are spread: each of 8 buckets holds about an eighth.
  const buckets = new Array<number>(8).fill(0);
  for (const id of ids) buckets[hashOf(id) & 7]!++;
  t.ok(Math.min(...buckets) > ids.length / 8 / 2, `low bits spread over one shard's IDs (${buckets.join(', ')})`);
});

t.test('a CampaignIndex: get, has, size, values in order, a set again replaces in place', async (t) => {
  const index = new CampaignIndex();
  const made = Array.from({ length: 2_000 }, (_, i) => new Campaign(config({ id: `c${i}` }), noon, hooks));
  for (const c of made) index.set(c.id, c);
  t.equal(index.size, 2_000);
  t.equal(index.get('c1999'), made[1999]);
  t.ok(index.has('c0'));
  t.notOk(index.has('c2000'));
  t.equal(index.get('nope'), undefined);
  t.same([...index.values()].map((c) => c.id), made.map((c) => c.id), 'in the order added');
  const again = new Campaign(config({ id: 'c7', version: 2 }), noon, hooks);
  index.set('c7', again);
  t.equal(index.size, 2_000, 'replaced, not added');
  t.equal(index.get('c7'), again);
  t.equal([...index.values()][7], again, 'in its place');
  t.same([...index].slice(0, 2).map(([id, c]) => [id, c.id]), [['c0', 'c0'], ['c1', 'c1']], 'entries as a Map gives them');
  t.throws(() => index.set('other', made[0]!), /set under other/);
});
