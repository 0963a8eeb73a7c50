import t from 'tap';
import { campaignBodySchema, campaignFields, numericBounds, readOnlyFields } from '../../src/model/campaign.js';
import { auth, post, startPacer } from '../helpers/server.js';
import { campaign } from '../helpers/admin-client.js';

/** The model's JSON Schema says what the API does: every bound it states holds over HTTP. */
const pacer = await startPacer();
t.teardown(() => pacer.stop());
const schema = campaignBodySchema() as { properties: Record<string, any> };

t.test('the body schema names every field the API takes, and only those', async (t) => {
  t.same(Object.keys(schema.properties).sort(), [...campaignFields, ...readOnlyFields].sort());
});

t.test('every numeric bound of the schema is the one the admin API enforces', async (t) => {
  let n = 0;
  for (const [path, { min, max }] of Object.entries(numericBounds)) {
    const [head, sub] = path.split('.') as [string, string | undefined];
    const stated = sub === undefined ? schema.properties[head] : schema.properties[head].properties[sub];
    t.same([stated.minimum, stated.maximum], [min, max], `${path} in the schema`);
    const body = (v: number) => campaign(`bound-${n++}`, sub === undefined ? { [head]: v } : { breaker: { [sub]: v } });
    for (const v of [min, max]) t.equal((await post(pacer.adminUrl, '/v1/campaigns', body(v), auth)).status, 201, `${path} = ${v} is accepted`);
    for (const v of [min - 0.5, max + 1]) {
      const r = await post(pacer.adminUrl, '/v1/campaigns', body(v), auth);
      t.same([r.status, r.body.error.code], [400, 'INVALID_FIELD'], `${path} = ${v} is refused`);
    }
  }
  for (const field of ['dailyBudgetMicros', 'lifetimeBudgetMicros'] as const) {
    const max = schema.properties[field].maximum as number;
    t.equal((await post(pacer.adminUrl, '/v1/campaigns', campaign(`bound-${n++}`, { [field]: max }), auth)).status, 201, `${field} = ${max}`);
    const r = await post(pacer.adminUrl, '/v1/campaigns', campaign(`bound-${n++}`, { [field]: max + 1 }), auth);
    t.same([r.status, r.body.error.code], [400, 'INVALID_AMOUNT'], `${field} = ${max} + 1`);
  }
});
