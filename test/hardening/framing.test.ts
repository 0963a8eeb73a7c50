import t from 'tap';
import { auth, createCampaign, get, post, startPacer } from '../helpers/server.js';
import { answers, healthy, money, rawHttp, request } from './hostile.js';

/**
 * HTTP/1.1 framing on the hot-path port (RFC 9112), over raw sockets: what is answered, what is
 * refused with a code, what uWS closes on its own, and that none of it changes a campaign.
 * docs/api.md, "HTTP framing", is the contract these tests check.
 */
const pacer = await startPacer();
t.teardown(() => pacer.stop());
await createCampaign(pacer, { id: 'f-1', dailyBudgetMicros: 10_000_000, strategy: 'ASAP' });

const decide = (requestId: string): string => JSON.stringify({ campaignId: 'f-1', bidMicros: 1_000, requestId });
/** `n` header lines, Host first. */
const headerLines = (n: number): string => ['Host: pacer', ...Array.from({ length: n - 1 }, (_, i) => `X-Filler-${i}: v`)].map((l) => `${l}\r\n`).join('');
const spend = (eventId: string): string => JSON.stringify({ campaignId: 'f-1', eventId, amountMicros: 500 });

t.test('pipelined requests answered at once (health, validation errors) are each answered, in order', async (t) => {
  const reply = await rawHttp(
    pacer.port,
    request('GET', '/healthz') + request('POST', '/v1/decide', '{"campaignId":7}') + request('GET', '/readyz') + request('POST', '/v1/spend', '{}'),
  );
  const got = answers(reply.text);
  t.same(got.map((a) => a.status), [200, 400, 200, 400]);
  t.equal(JSON.parse(got[1]!.body).error.code, 'INVALID_CAMPAIGN_ID');
  t.equal(JSON.parse(got[2]!.body).status, 'ready');
  t.equal(JSON.parse(got[3]!.body).error.code, 'MISSING_FIELD');
});

t.test('pipelined requests that need a shard close the connection unanswered and none of them runs', async (t) => {
  const before = await money(pacer, 'f-1');
  const reply = await rawHttp(
    pacer.port,
    request('POST', '/v1/decide', decide('pipe-1')) + request('POST', '/v1/decide', decide('pipe-2')) + request('POST', '/v1/spend', spend('pipe-e1')),
  );
  t.equal(reply.text, '', 'uWS answers none of them');
  t.ok(reply.closed, 'and closes the connection');
  t.same(await money(pacer, 'f-1'), before, 'no reservation is held and no spend counted: resending all of them is safe');
  t.ok(await healthy(pacer));
  const resent = await post(pacer.url, '/v1/decide', decide('pipe-1'));
  t.match(resent.body, { allow: true, reserved: true }, 'the resent request runs normally');
});

t.test('a request waits for its answer before the next one on a kept-alive connection (no pipelining)', async (t) => {
  const a = await post(pacer.url, '/v1/decide', decide('ka-1'));
  const b = await post(pacer.url, '/v1/decide', decide('ka-2'));
  t.equal(a.status, 200);
  t.equal(b.status, 200);
});

t.test('conflicting Content-Length headers are refused with 400 INVALID_FRAMING and change nothing', async (t) => {
  const before = await money(pacer, 'f-1');
  const body = spend('cl-1');
  const reply = await rawHttp(
    pacer.port,
    `POST /v1/spend HTTP/1.1\r\nHost: pacer\r\nContent-Length: ${body.length}\r\nContent-Length: 5\r\n\r\n${body}`,
  );
  const [a] = answers(reply.text);
  t.equal(a?.status, 400);
  t.equal(JSON.parse(a!.body).error.code, 'INVALID_FRAMING');
  t.equal(a?.headers.connection, 'close', 'the connection is closed: its next byte has no agreed position');
  t.ok(reply.closed);
  t.same(await money(pacer, 'f-1'), before);
  t.ok(await healthy(pacer));
});

t.test('Content-Length with Transfer-Encoding is closed by the HTTP parser before any handler runs', async (t) => {
  const before = await money(pacer, 'f-1');
  const body = spend('te-1');
  const reply = await rawHttp(
    pacer.port,
    `POST /v1/spend HTTP/1.1\r\nHost: pacer\r\nContent-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
  );
  t.equal(reply.text, '', 'uWS 20.30 sends no answer');
  t.ok(reply.closed, 'and closes the connection at once');
  t.same(await money(pacer, 'f-1'), before);
  t.ok(await healthy(pacer));
});

t.test('a chunked body without Content-Length is read like any other', async (t) => {
  const body = spend('chunked-1');
  const reply = await rawHttp(
    pacer.port,
    `POST /v1/spend HTTP/1.1\r\nHost: pacer\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
  );
  const [a] = answers(reply.text);
  t.equal(a?.status, 200);
  t.equal(JSON.parse(a!.body).status, 'applied');
});

t.test('HEAD answers carry no body, and the connection goes on serving', async (t) => {
  const reply = await rawHttp(
    pacer.port,
    'HEAD /healthz HTTP/1.1\r\nHost: pacer\r\n\r\n' +
      'HEAD /v1/decide HTTP/1.1\r\nHost: pacer\r\n\r\n' +
      'HEAD /nowhere HTTP/1.1\r\nHost: pacer\r\n\r\n' +
      'HEAD /readyz HTTP/1.1\r\nHost: pacer\r\n\r\n' +
      'GET /healthz HTTP/1.1\r\nHost: pacer\r\n\r\n',
  );
  const got = answers(reply.text);
  t.same(got.map((a) => a.status), [200, 405, 404, 200, 200]);
  t.same(got.slice(0, 4).map((a) => a.body), ['', '', '', ''], 'no HEAD answer has a body');
  t.equal(got[1]!.headers.allow, 'POST');
  t.equal(got[4]!.body, '{"status":"ok"}', 'the GET after them is answered with its body');
});

t.test('malformed request lines get no answer and are closed by the idle timeout; nothing runs', async (t) => {
  const before = await money(pacer, 'f-1');
  const inputs = [
    'GARBAGE\r\n\r\n',
    'GET /healthz HTTP/1.1\r\n\r\n', // HTTP/1.1 without Host
    'GET /healthz HTTP/1.1\nHost: pacer\n\n', // bare LF line ends
    `POST /v1/spend HTTP/1.1\r\nHost: pacer\r\nNoColonHere\r\ncontent-length: 55\r\n\r\n${spend('bad-line-1')}`,
    `GET /healthz HTTP/1.1\r\n${headerLines(49)}\r\n`, // more header lines than uWS parses
  ];
  const replies = await Promise.all(inputs.map((x) => rawHttp(pacer.port, x, 15_000)));
  for (const [i, r] of replies.entries()) {
    t.equal(r.text, '', `input ${i}: no answer`);
    t.ok(r.closed, `input ${i}: closed by the server`);
  }
  t.same(await money(pacer, 'f-1'), before);
  t.ok(await healthy(pacer));
});

t.test('a request with 48 header lines is still answered', async (t) => {
  const [a] = answers((await rawHttp(pacer.port, `GET /healthz HTTP/1.1\r\n${headerLines(48)}\r\n`)).text);
  t.equal(a?.status, 200);
});

t.test('Content-Length values that are not a decimal number close the connection unanswered', async (t) => {
  for (const cl of ['-1', '0x10', '1e3']) {
    const r = await rawHttp(pacer.port, `POST /v1/decide HTTP/1.1\r\nHost: pacer\r\nContent-Length: ${cl}\r\n\r\n{}`, 3_000);
    t.ok(r.closed, `Content-Length: ${cl} closes`);
    t.notMatch(r.text, /^HTTP\/1\.1 200/, `Content-Length: ${cl} is not answered 200`);
  }
  t.ok(await healthy(pacer));
});

t.test('dates that do not exist are refused, not rolled over', async (t) => {
  const c = await post(pacer.adminUrl, '/v1/campaigns', { id: 'f-date', dailyBudgetMicros: 1_000, startAt: '2026-02-30T00:00:00Z' }, auth);
  t.equal(c.status, 400);
  t.equal(c.body.error.code, 'INVALID_FIELD');
  t.match(c.body.error.message, /startAt/);
  const e = await post(pacer.adminUrl, '/v1/campaigns', { id: 'f-date', dailyBudgetMicros: 1_000, endAt: '2026-12-01T24:00:00Z' }, auth);
  t.equal(e.status, 400);
  for (const bad of ['2026-02-30T00:00:00Z', '2026-12-01', 'yesterday', '2026-12-01T10:00:00']) {
    const h = await get(pacer.adminUrl, `/v1/campaigns/f-1/history?from=${encodeURIComponent(bad)}`, auth);
    t.equal(h.status, 400, `history from=${bad} is refused`);
    t.equal(h.body.error.code, 'INVALID_FIELD');
  }
  const range = `from=${encodeURIComponent('2024-02-29T00:00:00+01:00')}&to=${encodeURIComponent('2024-03-01T00:00:00.123456Z')}`;
  const ok = await get(pacer.adminUrl, `/v1/campaigns/f-1/history?${range}`, auth);
  t.equal(ok.status, 200, 'a real leap day with an offset, and a microsecond fraction, are accepted');
  t.equal(ok.body.from, '2024-02-28T23:00:00.000Z');
});
