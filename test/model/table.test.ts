import t from 'tap';
import { type CampaignRecord, parseCampaign } from '../../src/model/campaign.js';
import { CampaignTable, isoOf } from '../../src/model/table.js';
import { ConfigInterner } from '../../shards/intern.js';

/** The catalogue's columns (src/model/table.ts) give back exactly the records they were given. */

const interner = new ConfigInterner();
const record = (body: Record<string, unknown>, version = 1, times: Partial<CampaignRecord> = {}): CampaignRecord => ({
  config: interner.config(parseCampaign(body, version)),
  createdAt: '2026-12-01T10:00:00.000Z',
  updatedAt: '2026-12-01T10:00:00.000Z',
  archivedAt: null,
  ...times,
});

const bodies: Record<string, unknown>[] = [
  { id: 'plain', dailyBudgetMicros: 1_000_000 },
  { id: 'named', name: 'A campaign', dailyBudgetMicros: 9_007_199_254_740, strategy: 'ASAP', breaker: { enabled: false } },
  {
    id: 'full', name: 'Ünïcode ✓', status: 'PAUSED', dailyBudgetMicros: 5_000_000, timezone: 'America/New_York', strategy: 'CUSTOM',
    hourlyWeights: Array.from({ length: 24 }, (_, h) => (h % 3) + 0.25), schedule: [{ days: ['MON', 'TUE'], start: '09:00', end: '17:30' }],
    startAt: '2026-01-01T00:00:00Z', endAt: '2027-01-01T00:00:00Z', lifetimeBudgetMicros: 100_000_000, catchUpMaxRatio: 3.5,
    velocityCapMultiple: 7, mode: 'SHADOW', shadow: { strategy: 'FRONT_LOADED', frontLoadedShare: 0.8 },
  },
  { id: 'ahead', dailyBudgetMicros: 2_000_000, strategy: 'AHEAD', aheadPercent: 33.3, frontLoadedShare: 0.61 },
];

t.test('a record comes back equal, with its fields in the same order (the API keeps its key order)', async (t) => {
  const table = new CampaignTable();
  const given = bodies.map((b, i) => record(b, i + 1, i === 2 ? { updatedAt: '2026-12-01T11:22:33.456Z', archivedAt: '2026-12-01T11:22:33.456Z' } : {}));
  for (const r of given) table.set(r);
  t.equal(table.size, given.length);
  for (const r of given) {
    const back = table.get(r.config.id)!;
    t.equal(JSON.stringify(back), JSON.stringify(r), `${r.config.id} byte for byte`);
    t.equal(table.versionOf(r.config.id), r.config.version);
  }
  t.same([...table.values()].map((r) => r.config.id), given.map((r) => r.config.id), 'values in the order first stored');
  t.same(table.peek('full'), { name: 'Ünïcode ✓', status: 'PAUSED', strategy: 'CUSTOM', archived: true });
  t.same(table.peek('plain'), { name: 'plain', status: 'ACTIVE', strategy: campaignDefaultsStrategy(), archived: false });
  t.equal(table.get('nope'), undefined);
  t.equal(table.peek('nope'), undefined);
});

t.test('a replaced record replaces; a changed returned object does not change the table', async (t) => {
  const table = new CampaignTable();
  table.set(record(bodies[0]!));
  const next = record({ ...bodies[0]!, dailyBudgetMicros: 3_000_000, timezone: 'Europe/Paris' }, 2, { updatedAt: '2026-12-02T00:00:00.001Z' });
  table.set(next);
  t.equal(table.size, 1);
  t.equal(JSON.stringify(table.get('plain')), JSON.stringify(next));
  const got = table.get('plain')!;
  got.config.dailyBudgetMicros = 1 as never;
  got.createdAt = 'x';
  t.equal(table.get('plain')!.config.dailyBudgetMicros, 3_000_000);
  t.equal(table.get('plain')!.createdAt, next.createdAt);
  t.throws(() => (got.config.breaker as { enabled: boolean }).enabled = false, 'shared settings are frozen');
});

t.test('timestamps that epoch ms would not give back are kept as they came', async (t) => {
  const table = new CampaignTable();
  const odd = record(bodies[0]!, 1, { createdAt: '2026-12-01T10:00:00Z', updatedAt: '2026-12-01T10:00:00.000+01:00', archivedAt: 'not a date' });
  table.set(odd);
  t.same(table.get('plain'), odd);
  t.equal(table.peek('plain')!.archived, true);
  const normal = record(bodies[0]!, 2);
  table.set(normal);
  t.equal(JSON.stringify(table.get('plain')), JSON.stringify(normal), 'and forgotten once normal again');
});

t.test('configurations stored before archived, mode or shadow existed, and fields added later', async (t) => {
  const table = new CampaignTable();
  const old = record(bodies[0]!);
  const legacy = { ...old, config: { ...old.config } } as CampaignRecord;
  delete (legacy.config as { archived?: boolean }).archived;
  (legacy.config as unknown as Record<string, unknown>).futureField = { a: [1, 2] };
  table.set(legacy);
  const back = table.get('plain')!;
  t.equal(back.config.archived, false, 'a missing archived reads false, as the interner made it');
  t.same((back.config as unknown as Record<string, unknown>).futureField, { a: [1, 2] }, 'an unknown field is carried');
});

t.test('campaigns with the same settings share them; a settings object goes with its last user', async (t) => {
  const table = new CampaignTable(2);
  for (let i = 0; i < 100; i++) table.set(record({ id: `c${i}`, dailyBudgetMicros: 1_000 + i }));
  t.equal(table.get('c1')!.config.breaker, table.get('c99')!.config.breaker, 'one breaker object for all');
  const internals = table as unknown as { profiles: unknown[]; freeProfiles: number[]; profileByKey: Map<string, number> };
  t.equal(internals.profiles.filter((p) => p !== undefined).length, 1);
  // Past distinctMax (2 here) settings are kept per campaign, not shared, and still freed with their user.
  for (let i = 0; i < 5; i++) table.set(record({ id: `u${i}`, dailyBudgetMicros: 1_000, aheadPercent: 40 + i }));
  t.equal(internals.profileByKey.size, 2);
  const live = (): number => internals.profiles.filter((p) => p !== undefined).length;
  t.equal(live(), 6);
  for (let v = 2; v < 50; v++) table.set(record({ id: 'u4', dailyBudgetMicros: 1_000, aheadPercent: 50 + v }, v));
  t.equal(live(), 6, 'editing a campaign with its own settings 48 times keeps one settings object for it');
  t.equal(table.get('u4')!.config.aheadPercent, 99);
  for (let i = 0; i < 100; i++) table.set(record({ id: `c${i}`, dailyBudgetMicros: 1_000 + i, aheadPercent: 40 }, 2));
  t.equal(live(), 5, 'the 100 moved to the shared settings of u0; the defaults were dropped with their last user');
  t.equal(internals.profileByKey.size, 1);
  t.equal(table.get('c5')!.config.aheadPercent, 40);
  t.equal(table.get('c5')!.config.breaker, table.get('u0')!.config.breaker);
});

function campaignDefaultsStrategy(): string {
  return parseCampaign({ id: 'x', dailyBudgetMicros: 1 }, 1).strategy;
}

t.test('isoOf writes what toISOString writes', async (t) => {
  const probes = [0, 1, 999, 86_399_999, 86_400_000, 951_782_400_000, 951_868_800_000, 253_402_300_799_999, 253_402_300_800_000, -1, -86_400_001, 1.5, 4_102_444_800_000, 1_709_164_800_000, 8.64e15];
  let seed = 12345;
  for (let i = 0; i < 100_000; i++) {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    probes.push(Math.floor((seed / 2 ** 32) * 253_402_300_800_000));
  }
  const wrong = probes.filter((ms) => isoOf(ms) !== new Date(ms).toISOString());
  t.same(wrong, [], `${probes.length} instants from 1970 to 9999 and outside`);
});

t.test('where and idsWhere filter on the columns and build only what passes', async (t) => {
  const table = new CampaignTable();
  for (let i = 0; i < 30; i++) {
    const body = { id: `w${i}`, ...(i % 3 === 0 ? { name: `named ${i}` } : {}), dailyBudgetMicros: 1_000, status: i % 2 === 0 ? 'ACTIVE' : 'PAUSED', strategy: i % 5 === 0 ? 'ASAP' : 'EVEN' };
    table.set(record(body, 1, i % 7 === 0 ? { archivedAt: '2026-12-01T12:00:00.000Z' } : {}));
  }
  const keep = (c: { id: string; name: string; status: string; strategy: string; archived: boolean }): boolean => !c.archived && c.status === 'ACTIVE' && (c.strategy === 'ASAP' || c.name.startsWith('named'));
  const want = [...table.values()].filter((r) => keep({ id: r.config.id, name: r.config.name, status: r.config.status, strategy: r.config.strategy, archived: r.archivedAt !== null }));
  t.ok(want.length > 2 && want.length < 30, `${want.length} of 30 pass`);
  t.equal(JSON.stringify([...table.where(keep)]), JSON.stringify(want));
  t.same(table.idsWhere(keep), want.map((r) => r.config.id));
});
