import t from 'tap';
import { CompactConfig, ConfigInterner } from '../../shards/intern.js';
import { shadowConfigOf } from '../../shards/pacing/shadow-config.js';
import type { CampaignConfig } from '../../shards/types.js';
import { config } from '../helpers/campaign.js';

/**
 * A shard's configurations (ConfigInterner.compact): each reads field for field what the
 * configuration it came from says, and the settings many campaigns have in common are one shared,
 * frozen object.
 */
const fields: (keyof CampaignConfig)[] = [
  'id', 'name', 'status', 'dailyBudgetMicros', 'timezone', 'strategy', 'frontLoadedShare', 'aheadPercent', 'hourlyWeights',
  'schedule', 'startAtMs', 'endAtMs', 'lifetimeBudgetMicros', 'catchUpMaxRatio', 'velocityCapMultiple', 'breaker', 'version',
];

const samples: CampaignConfig[] = [
  config({ id: 'plain' }),
  config({ id: 'named', name: 'Spring sale', status: 'PAUSED', timezone: 'Europe/Paris', strategy: 'FRONT_LOADED', frontLoadedShare: 0.6 }),
  config({
    id: 'custom',
    strategy: 'CUSTOM',
    hourlyWeights: Array.from({ length: 24 }, (_, h) => (h >= 8 && h < 20 ? 2 : 0.5)),
    schedule: [{ days: ['MON', 'TUE'], start: '09:00', end: '17:00' }],
    startAt: '2026-03-01T00:00:00Z',
    endAt: '2026-04-01T00:00:00Z',
    lifetimeBudgetMicros: 25_000_000,
    breaker: { tripAtFraction: 0.9, cooldownMs: 60_000 },
  }),
  config({ id: 'shadowed', mode: 'SHADOW', shadow: { strategy: 'ASAP' }, dailyBudgetMicros: 9_007_199_254 }, 7),
  { ...config({ id: 'archived' }), archived: true },
];

t.test('a compact configuration reads every field as the configuration it came from', async (t) => {
  const interner = new ConfigInterner();
  for (const c of samples) {
    const k = interner.compact(c);
    t.type(k, CompactConfig);
    for (const f of fields) t.same(k[f], c[f], `${c.id}.${f}`);
    t.equal(k.archived, c.archived ?? false, `${c.id}.archived`);
    t.equal(k.mode, c.mode ?? 'ENFORCE', `${c.id}.mode`);
    t.same(k.shadow, c.shadow ?? null, `${c.id}.shadow`);
    // The shadow's configuration is copied field by field: a spread would have lost the getters.
    t.same(shadowConfigOf(k), shadowConfigOf(interner.config(c)), `${c.id}: the shadow's configuration is the same`);
  }
});

t.test('campaigns with the same settings share them; a change of one setting does not', async (t) => {
  const interner = new ConfigInterner();
  const a = interner.compact(config({ id: 'a', timezone: 'Asia/Tokyo', dailyBudgetMicros: 5_000_000 }));
  const b = interner.compact(config({ id: 'b', timezone: 'Asia/Tokyo', dailyBudgetMicros: 7_000_000 }, 3));
  const c = interner.compact(config({ id: 'c', timezone: 'Asia/Tokyo', strategy: 'ASAP' }));
  const settingsOf = (x: CompactConfig): unknown => (x as unknown as { s: unknown }).s;
  t.equal(settingsOf(a), settingsOf(b), 'one settings object for the same zone, strategy and breaker');
  t.not(settingsOf(a), settingsOf(c), 'another for another strategy');
  t.equal(a.breaker, c.breaker, 'the breaker settings are shared across them all');
  t.equal(b.dailyBudgetMicros, 7_000_000, 'the money is the campaign\'s own');
  t.equal(b.version, 3);
  t.ok(Object.isFrozen(settingsOf(a)), 'the shared settings are frozen');
  t.throws(() => {
    (a.breaker as { cooldownMs: number }).cooldownMs = 1;
  }, TypeError, 'changing one campaign\'s breaker in place throws instead of changing them all');
});

t.test('past distinctMax, settings are the campaign\'s own and still read right', async (t) => {
  const interner = new ConfigInterner(2);
  const made = [0.5, 0.6, 0.7, 0.8].map((share, i) => interner.compact(config({ id: `f${i}`, strategy: 'FRONT_LOADED', frontLoadedShare: share })));
  t.same(made.map((m) => m.frontLoadedShare), [0.5, 0.6, 0.7, 0.8]);
  const again = interner.compact(config({ id: 'g', strategy: 'FRONT_LOADED', frontLoadedShare: 0.8 }));
  t.equal(again.frontLoadedShare, 0.8);
});
