import t from 'tap';
import { adminToken, auth, get, post, startPacer } from '../helpers/server.js';
import { campaign, rawRequest } from '../helpers/admin-client.js';

/** Hostile admin input is refused with a code, changes nothing, and every error closes the connection. */
const pacer = await startPacer();
t.teardown(() => pacer.stop());
const admin = pacer.adminUrl;

t.test('a body nested 6,000 levels deep answers 400, not 500', async (t) => {
  const deep = `{"id":"deep-1","dailyBudgetMicros":1,"name":${'['.repeat(6_000)}${']'.repeat(6_000)}}`;
  const r = await post(admin, '/v1/campaigns', deep, auth);
  t.equal(r.status, 400);
  t.equal(r.body.error.code, 'INVALID_BODY');
  const patch = await fetch(`${admin}/v1/campaigns/deep-1`, {
    method: 'PATCH', headers: { ...auth, 'content-type': 'application/merge-patch+json' }, body: `{"breaker":${'{"a":'.repeat(6_000)}1${'}'.repeat(6_000)}}`,
  });
  t.equal(patch.status, 400);
  t.equal((await get(admin, '/v1/campaigns/deep-1', auth)).status, 404);
  t.equal((await get(admin, '/healthz')).status, 200, 'the admin thread still serves');
});

t.test('a name with NUL or other control characters is refused with 400', async (t) => {
  for (const name of ['a\u0000b', 'tab\there', 'bell\u0007', 'c1\u0085', 'lone \ud800 surrogate']) {
    const r = await post(admin, '/v1/campaigns', campaign('ctl-1', { name }), auth);
    t.same([r.status, r.body.error.code], [400, 'INVALID_FIELD'], JSON.stringify(name));
  }
  t.equal((await get(admin, '/v1/campaigns/ctl-1', auth)).status, 404);
  t.equal((await post(admin, '/v1/campaigns', campaign('ctl-1', { name: 'Crème brûlée 🍮' }), auth)).status, 201, 'Unicode text is fine');
  const actor = await post(admin, '/v1/campaigns', campaign('ctl-2'), { ...auth, 'x-pacer-actor': 'x'.repeat(201) });
  t.same([actor.status, actor.body.error.code], [400, 'INVALID_FIELD'], 'an over-long X-Pacer-Actor is refused');
});

t.test('hourlyWeights whose sum is not finite are refused', async (t) => {
  const r = await post(admin, '/v1/campaigns', campaign('weights-1', { strategy: 'CUSTOM', hourlyWeights: Array(24).fill(1e308) }), auth);
  t.same([r.status, r.body.error.code], [400, 'INVALID_FIELD']);
  t.match(r.body.error.message, /finite/);
  t.equal((await get(admin, '/v1/campaigns/weights-1', auth)).status, 404);
});

t.test('an admin body over adminBodyBytesMax (4 MiB) answers 413 BODY_TOO_LARGE', async (t) => {
  const head = `POST /v1/campaigns HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${adminToken}\r\ncontent-length: ${5 * 1024 * 1024}\r\nconnection: keep-alive\r\n\r\n`;
  const raw = await rawRequest(pacer.adminPort, head);
  t.match(raw.text, /^HTTP\/1\.1 413/);
  t.match(raw.text, /"code":"BODY_TOO_LARGE"/);
  t.ok(raw.closed, 'and closes the connection without reading the body');
  t.equal((await get(admin, '/v1/campaigns', auth)).status, 200, 'and the admin API serves on');
});

t.test('every admin error answer closes the connection', async (t) => {
  const ka = 'connection: keep-alive\r\nhost: x\r\n';
  const requests: [string, RegExp][] = [
    [`GET /v1/campaigns HTTP/1.1\r\n${ka}\r\n`, /^HTTP\/1\.1 401/],
    [`GET /v1/campaigns/nobody HTTP/1.1\r\n${ka}authorization: Bearer ${adminToken}\r\n\r\n`, /^HTTP\/1\.1 404/],
    [`POST /v1/campaigns HTTP/1.1\r\n${ka}authorization: Bearer ${adminToken}\r\ncontent-length: 5\r\n\r\n{nope`, /^HTTP\/1\.1 400/],
    [`POST /v1/campaigns HTTP/1.1\r\n${ka}authorization: Bearer ${adminToken}\r\ncontent-length: 2\r\n\r\n{}`, /^HTTP\/1\.1 400/],
    [`GET /nowhere HTTP/1.1\r\n${ka}\r\n`, /^HTTP\/1\.1 404/],
    [`PATCH /v1/campaigns HTTP/1.1\r\n${ka}authorization: Bearer ${adminToken}\r\ncontent-length: 0\r\n\r\n`, /^HTTP\/1\.1 405/],
  ];
  for (const [request, status] of requests) {
    const r = await rawRequest(pacer.adminPort, request);
    t.match(r.text, status, request.split('\r\n')[0]!);
    t.ok(r.closed, `${request.split('\r\n')[0]} closes`);
  }
});
