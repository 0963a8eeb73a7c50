import t from 'tap';
import { parseChange } from '../../src/store/config-feed.js';

/**
 * The configuration feed reads NOTIFY payloads that the database's trigger builds; anything else on
 * the channel (a hand-sent NOTIFY, a truncated payload) is ignored, never thrown.
 */
t.test('a payload from pacer_config_notify() is read as a change', async (t) => {
  t.same(parseChange('{"seq":12,"kind":"config","campaignId":"c1","version":3,"origin":"","atMs":1764633600000}'), {
    seq: 12, kind: 'config', campaignId: 'c1', version: 3, origin: '', atMs: 1764633600000,
  });
  t.same(parseChange('{"seq":13,"kind":"breakerReset","campaignId":"c1","version":null,"origin":"abc-123","atMs":1}'), {
    seq: 13, kind: 'breakerReset', campaignId: 'c1', version: null, origin: 'abc-123', atMs: 1,
  });
});

t.test('anything else on the channel is ignored', async (t) => {
  for (const payload of [
    undefined, '', 'hello', 'null', '[]', '{}', '{"seq":"1","kind":"config","campaignId":"c","version":1,"origin":"","atMs":1}',
    '{"seq":1,"kind":"drop","campaignId":"c","version":1,"origin":"","atMs":1}',
    '{"seq":1,"kind":"config","campaignId":5,"version":1,"origin":"","atMs":1}',
    '{"seq":1,"kind":"config","campaignId":"c","version":1.5,"origin":"","atMs":1}',
    '{"seq":1,"kind":"config","campaignId":"c","version":1,"origin":"","atMs":"x"}',
    `{"seq":1,"kind":"config","campaignId":"${'x'.repeat(9000)}","version":1,"origin":"","atMs":1}`,
    '{"seq":1,"kind":"config"', '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[',
  ]) {
    t.equal(parseChange(payload), null, String(payload).slice(0, 60));
  }
});
