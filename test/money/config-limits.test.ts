import t from 'tap';
import { limits } from '../../shards/limits.js';
import { ConfigError, loadConfig } from '../../src/config.js';

/** The limits of client-driven memory default to shards/limits.ts and are validated when set. */
t.test('the memory limits default to shards/limits.ts', async (t) => {
  const c = loadConfig({});
  t.equal(c.reservationsPerCampaignMax, limits.reservationsPerCampaignMax);
  t.equal(c.reservationsPerShardMax, limits.reservationsPerShardMax);
  t.equal(c.eventIdsRememberedMax, limits.eventIdsRememberedMax);
  t.equal(c.campaignsMax, limits.campaignsMax);
});

t.test('a bad memory limit stops the start with a message naming the variable', async (t) => {
  for (const [name, value] of [
    ['PACER_RESERVATIONS_PER_CAMPAIGN_MAX', '0'],
    ['PACER_RESERVATIONS_PER_SHARD_MAX', 'many'],
    ['PACER_EVENT_IDS_REMEMBERED_MAX', '-1'],
    ['PACER_CAMPAIGNS_MAX', String(limits.campaignsMax + 1)],
  ] as const) {
    t.throws(() => loadConfig({ [name]: value }), new RegExp(name), `${name}=${value}`);
    t.throws(() => loadConfig({ [name]: value }), ConfigError);
  }
  t.equal(loadConfig({ PACER_EVENT_IDS_REMEMBERED_MAX: '0' }).eventIdsRememberedMax, 0, '0 turns remembering off');
});
