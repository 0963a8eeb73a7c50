import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { limits } from '../../shards/limits.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createCampaign, get, post, startPacer } from '../helpers/server.js';
import { healthy, money } from './hostile.js';

/**
 * Hostile hot-path HTTP input: every answer is coded, the process keeps serving, and the campaign's
 * money and counters do not move. Regression tests for inputs that used to stop the process.
 */
const pacer = await startPacer();
t.teardown(() => pacer.stop());
await createCampaign(pacer, { id: 'h-1', dailyBudgetMicros: 10_000_000, strategy: 'ASAP' });

const nested = (depth: number, inner = ''): string => '['.repeat(depth) + inner + ']'.repeat(depth);

/** Posts `body` raw and checks the coded refusal, the process and the campaign afterwards. */
async function refused(t: Test, path: string, body: string, status: number, code: string): Promise<any> {
  const before = await money(pacer, 'h-1');
  const r = await post(pacer.url, path, body);
  t.equal(r.status, status, `${path} answers ${status}`);
  t.equal(r.body?.error?.code, code, `the code is ${code}`);
  t.type(r.body?.error?.message, 'string', 'with a message');
  t.ok(await healthy(pacer), '/healthz still answers');
  t.same(await money(pacer, 'h-1'), before, "the campaign's money and counters did not move");
  return r.body;
}

t.test('a campaignId nested 6,000 arrays deep is refused with 400 (it used to stop the process)', async (t) => {
  const body = await refused(t, '/v1/decide', `{"campaignId":${nested(6_000)}}`, 400, 'INVALID_CAMPAIGN_ID');
  t.match(body.error.message, /got an array of 1 items/, 'the message describes the value without serialising it');
});

t.test('deep nesting in every field of every route is refused with a code', async (t) => {
  const deep = nested(6_000, '"h-1"');
  await refused(t, '/v1/decide', `{"campaignId":"h-1","bidMicros":${deep}}`, 400, 'INVALID_AMOUNT');
  await refused(t, '/v1/decide', `{"campaignId":"h-1","requestId":${deep}}`, 400, 'INVALID_REQUEST_ID');
  await refused(t, '/v1/spend', `{"campaignId":"h-1","eventId":${deep},"amountMicros":1}`, 400, 'INVALID_EVENT_ID');
  await refused(t, '/v1/spend', `{"campaignId":"h-1","eventId":"e","amountMicros":${deep}}`, 400, 'INVALID_AMOUNT');
  await refused(t, '/v1/release', `{"campaignId":"h-1","requestId":${deep}}`, 400, 'INVALID_REQUEST_ID');
  await refused(t, '/v1/decide/batch', `{"requests":[{"campaignId":${deep}}]}`, 400, 'INVALID_CAMPAIGN_ID');
  await refused(t, '/v1/spend/batch', `{"events":[{"campaignId":${deep}}]}`, 400, 'INVALID_CAMPAIGN_ID');
});

t.test('a body that is nothing but 500,000 nested arrays is refused with a code', async (t) => {
  const r = await post(pacer.url, '/v1/decide', nested(500_000));
  t.equal(r.status, 400);
  t.match(r.body.error.code, /^(INVALID_JSON|INVALID_BODY)$/);
  t.ok(await healthy(pacer));
});

t.test('values JSON cannot hold exactly are refused as amounts, not echoed in full', async (t) => {
  await refused(t, '/v1/decide', '{"campaignId":"h-1","bidMicros":1e400}', 400, 'INVALID_AMOUNT');
  await refused(t, '/v1/spend', '{"campaignId":"h-1","eventId":"e","amountMicros":-0.5}', 400, 'INVALID_AMOUNT');
  const long = await refused(t, '/v1/decide', `{"campaignId":"${'x'.repeat(100_000)}"}`, 400, 'INVALID_CAMPAIGN_ID');
  t.ok(long.error.message.length < 300, 'a long value is clipped in the message');
  await refused(t, '/v1/decide', '{"__proto__":{"campaignId":"h-1"},"campaignId":"h-1"}', 400, 'UNKNOWN_FIELD');
});

t.test('a bid above bidMicrosMax and a spend above spendMicrosMax are refused naming the limit', async (t) => {
  const bid = await refused(t, '/v1/decide', JSON.stringify({ campaignId: 'h-1', bidMicros: limits.bidMicrosMax + 1 }), 400, 'INVALID_AMOUNT');
  t.match(bid.error.message, /bidMicrosMax/);
  const spend = await refused(
    t,
    '/v1/spend',
    JSON.stringify({ campaignId: 'h-1', eventId: 'big-1', amountMicros: limits.spendMicrosMax + 1 }),
    400,
    'INVALID_AMOUNT',
  );
  t.match(spend.error.message, /spendMicrosMax/);
  const batch = await refused(
    t,
    '/v1/spend/batch',
    JSON.stringify({ events: [{ campaignId: 'h-1', eventId: 'ok-1', amountMicros: 1 }, { campaignId: 'h-1', eventId: 'big-2', amountMicros: 2 ** 53 - 1 }] }),
    400,
    'INVALID_AMOUNT',
  );
  t.match(batch.error.message, /item 1/, 'the batch is refused whole, naming the item');
  const atLimit = await post(pacer.url, '/v1/decide', { campaignId: 'h-1', bidMicros: limits.bidMicrosMax });
  t.equal(atLimit.status, 200, 'a bid at the limit is accepted');
});

t.test('internal errors are exported as pacer_internal_errors_total', async (t) => {
  const res = await fetch(`${pacer.adminUrl}/metrics`);
  t.equal(res.status, 200, '/metrics answers without the admin token');
  t.match(await res.text(), /# HELP pacer_internal_errors_total /);
  const hot = await get(pacer.url, '/metrics');
  t.equal(hot.status, 404, 'the hot-path port does not serve /metrics');
});

t.test('PACER_STREAM_CONNECTIONS_MAX is validated like the other settings', async (t) => {
  t.equal(loadConfig({ PACER_STREAM_CONNECTIONS_MAX: '3' }).streamConnectionsMax, 3);
  t.equal(loadConfig({}).streamConnectionsMax, limits.streamConnectionsMax);
  for (const bad of ['0', '-1', '1.5', 'many']) {
    t.throws(() => loadConfig({ PACER_STREAM_CONNECTIONS_MAX: bad }), ConfigError, `${bad} is refused`);
  }
});

const preload = fileURLToPath(new URL('./fixtures/throw-on-signal.mjs', import.meta.url));

t.test('an exception that escapes every handler in the main thread stops the pacer with exit code 71', async (t) => {
  const p = await startPacer({ env: { NODE_OPTIONS: `--import=${preload}` } });
  t.teardown(() => p.kill());
  p.child.kill('SIGUSR2');
  const code = await new Promise<number | null>((resolve) => p.child.once('exit', (c) => resolve(c)));
  t.equal(code, 71);
  t.match(p.stderr(), /"msg":"uncaught exception; stopping for a restart","failedThread":"router"/);
  t.notMatch(p.stderr(), /no handler catches/, 'the error message is not logged (it may quote client input)');
});

t.test('an exception that escapes every handler in a shard stops the pacer with exit code 71', async (t) => {
  const p = await startPacer({ env: { NODE_OPTIONS: `--import=${preload}` } });
  t.teardown(() => p.kill());
  p.child.kill('SIGUSR1');
  const code = await new Promise<number | null>((resolve) => p.child.once('exit', (c) => resolve(c)));
  t.equal(code, 71);
  t.match(p.stderr(), /"msg":"uncaught exception; stopping for a restart","failedThread":"shard-0"/);
});

t.test('an exception that escapes every handler in the admin thread stops the pacer with exit code 71, not an abort', async (t) => {
  const p = await startPacer({ env: { NODE_OPTIONS: `--import=${preload}` } });
  t.teardown(() => p.kill());
  p.child.kill('SIGHUP');
  const code = await new Promise<number | null>((resolve) => p.child.once('exit', (c) => resolve(c)));
  t.equal(code, 71, 'not 134: the admin thread closed its listen socket before the process exited');
  t.match(p.stderr(), /"msg":"uncaught exception; stopping for a restart","failedThread":"admin"/);
  t.notMatch(p.stderr(), /no handler catches/, 'the error message is not logged');
});
