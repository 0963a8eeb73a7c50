import { Packr, Unpackr } from 'msgpackr';
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { createCampaign, startPacer } from '../helpers/server.js';
import { healthy, money } from './hostile.js';

/**
 * Hostile stream frames (docs/stream-protocol.md): each is answered with a coded error, the
 * connection stays open where the protocol says so, the process keeps serving and the campaign's
 * money does not move.
 */
const pacer = await startPacer();
t.teardown(() => pacer.stop());
await createCampaign(pacer, { id: 'hs-1', dailyBudgetMicros: 10_000_000, strategy: 'ASAP' });

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

interface Client {
  ws: WebSocket;
  /** Sends raw bytes (or a text frame) and resolves with the decoded answer frame. */
  send(data: Buffer | string): Promise<any[]>;
}

async function connect(port = pacer.port): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const waiting: ((frame: any[]) => void)[] = [];
  ws.on('message', (data: Buffer) => waiting.shift()?.(unpackr.unpack(data) as any[]));
  return {
    ws,
    send(data) {
      return new Promise((resolve) => {
        waiting.push(resolve);
        ws.send(data, { binary: typeof data !== 'string' });
      });
    },
  };
}

const client = await connect();
t.teardown(() => client.ws.close());

/** A frame-level refusal: `[[0, null, code, message]]`, then the same connection still works. */
async function frameRefused(t: Test, frame: Buffer | string, code: string): Promise<string> {
  const before = await money(pacer, 'hs-1');
  const answer = await client.send(frame);
  t.equal(answer.length, 1, 'one result');
  t.equal(answer[0][0], 0, 'an error result');
  t.equal(answer[0][1], null, 'with no correlation ID');
  t.equal(answer[0][2], code, `coded ${code}`);
  await stillServing(t, before);
  return answer[0][3] as string;
}

async function stillServing(t: Test, before: unknown): Promise<void> {
  t.equal(client.ws.readyState, WebSocket.OPEN, 'the connection stays open');
  const ok = await client.send(packr.pack([[1, 7, 'nobody']]));
  t.same(ok, [[1, 7, false, 'UNKNOWN_CAMPAIGN', false, 0, 0]], 'and answers the next frame');
  t.ok(await healthy(pacer), '/healthz still answers');
  t.same(await money(pacer, 'hs-1'), before, "the campaign's money and counters did not move");
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');

t.test('a frame with msgpack ext type 0x42 (a BigInt to msgpackr) is refused with UNSUPPORTED_TYPE (it used to stop the process)', async (t) => {
  const message = await frameRefused(t, hex('91 93 01 01 d4 42 05'), 'UNSUPPORTED_TYPE');
  t.match(message, /0x42/);
});

t.test("frames using msgpackr's structured-clone and record extensions are refused with UNSUPPORTED_TYPE", async (t) => {
  const cycle: unknown[] = [1, 1, 'hs-1'];
  cycle.push(cycle);
  await frameRefused(t, new Packr({ structuredClone: true }).pack([cycle]), 'UNSUPPORTED_TYPE');
  await frameRefused(t, new Packr({ useRecords: true }).pack([[1, 2, { campaignId: 'hs-1' }]]), 'UNSUPPORTED_TYPE');
  await frameRefused(t, new Packr({ useRecords: false, moreTypes: true }).pack([[1, 3, new Set(['hs-1'])]]), 'UNSUPPORTED_TYPE');
  await frameRefused(t, packr.pack([[1, 4, new Date(0)]]), 'UNSUPPORTED_TYPE');
  for (const ext of ['c7 01 10 00', 'c8 00 01 10 00', 'c9 00 00 00 01 10 00', 'd5 01 00 00', 'd6 ff 00 00 00 00', 'd7 00 00 00 00 00 00 00 00 00', 'd8 69 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00']) {
    await frameRefused(t, Buffer.concat([hex('91 93 01 01'), hex(ext)]), 'UNSUPPORTED_TYPE');
  }
});

t.test('garbage bytes, an empty frame, a truncated frame and trailing bytes are refused with INVALID_JSON', async (t) => {
  await frameRefused(t, hex('c1'), 'INVALID_JSON');
  await frameRefused(t, Buffer.alloc(0), 'INVALID_JSON');
  await frameRefused(t, hex('ff ff ff ff de ad be ef'), 'INVALID_JSON');
  await frameRefused(t, hex('91 93 01 01 a5 68 73'), 'INVALID_JSON');
  await frameRefused(t, hex('dd ff ff ff ff'), 'INVALID_JSON');
  await frameRefused(t, hex('91 91 01 c0 c0'), 'INVALID_JSON');
  await frameRefused(t, hex('81 a1 61 01'), 'INVALID_BODY');
});

t.test('a text frame is refused with INVALID_BODY and the connection stays open', async (t) => {
  await frameRefused(t, '[[1, 1, "hs-1"]]', 'INVALID_BODY');
});

t.test('a frame nested 10,000 arrays deep is refused with TOO_DEEP', async (t) => {
  const deep = Buffer.concat([Buffer.alloc(10_000, 0x91), hex('01')]);
  await frameRefused(t, deep, 'TOO_DEEP');
});

t.test('correlation IDs that are not unsigned 32-bit integers are refused and never echoed', async (t) => {
  const before = await money(pacer, 'hs-1');
  const bad = [-1, 2 ** 32, 1.5, 'id-7', null, true, [1, 2], { a: 1 }, 2 ** 64, -(2 ** 63), Buffer.from('x')];
  const answer = await client.send(packr.pack(bad.map((id) => [1, id, 'hs-1', 1_000, 'auc-x'])));
  t.equal(answer.length, bad.length);
  for (const r of answer) t.same(r.slice(0, 3), [0, null, 'INVALID_BODY']);
  const bigint = await client.send(hex('91 93 01 cf ff ff ff ff ff ff ff ff a4 68 73 2d 31'));
  t.same(bigint[0].slice(0, 3), [0, null, 'INVALID_BODY'], 'a uint64 ID is refused');
  await stillServing(t, before);
});

t.test('huge, negative and fractional amounts are refused per operation with INVALID_AMOUNT', async (t) => {
  const before = await money(pacer, 'hs-1');
  const amounts: Buffer[] = [hex('cf ff ff ff ff ff ff ff ff'), hex('d3 80 00 00 00 00 00 00 00'), hex('cb 7f f0 00 00 00 00 00 00'), hex('cb 7f f8 00 00 00 00 00 00'), hex('ff'), hex('cb 3f e0 00 00 00 00 00 00')];
  const ops = amounts.map((a, i) => Buffer.concat([hex('95 01'), Buffer.from([i]), hex('a4 68 73 2d 31'), a, hex('a1 72')]));
  const frame = Buffer.concat([Buffer.from([0x90 + ops.length]), ...ops]);
  const answer = await client.send(frame);
  t.equal(answer.length, amounts.length);
  answer.forEach((r, i) => t.same(r.slice(0, 3), [0, i, 'INVALID_AMOUNT'], `amount ${i} refused`));
  await stillServing(t, before);
});

t.test('a bad operation beside good ones is refused alone; maps and binary in fields get field errors', async (t) => {
  const answer = await client.send(packr.pack([[1, 1, { campaignId: 'hs-1' }], [1, 2, Buffer.from('hs-1')], [1, 3, 'hs-1']]));
  t.equal(answer[0][2], 'INVALID_CAMPAIGN_ID');
  t.equal(answer[1][2], 'INVALID_CAMPAIGN_ID');
  t.same(answer[2].slice(0, 4), [1, 3, true, 'OK']);
});

t.test('a frame of 1,001 operations is refused with INVALID_BODY and the connection stays open', async (t) => {
  const ops = Array.from({ length: 1_001 }, (_, i) => [1, i, 'hs-1']);
  await frameRefused(t, packr.pack(ops), 'INVALID_BODY');
});

t.test('a frame larger than 1 MiB closes only its own connection, without a close frame (1006)', async (t) => {
  const big = await connect();
  const closed = new Promise<number>((resolve) => big.ws.once('close', (code) => resolve(code)));
  big.ws.send(Buffer.alloc(1024 * 1024 + 1, 0xc0));
  t.equal(await closed, 1006, 'uWS 20.30 drops the TCP connection; the client reports 1006');
  const before = await money(pacer, 'hs-1');
  await stillServing(t, before);
});

t.test('a request to /v1/stream that is not a WebSocket upgrade is answered 404 NOT_FOUND', async (t) => {
  const r = await fetch(`${pacer.url}/v1/stream`);
  t.equal(r.status, 404);
  t.equal(((await r.json()) as any).error.code, 'NOT_FOUND');
});

t.test('stream connections past PACER_STREAM_CONNECTIONS_MAX are refused with 503 TOO_MANY_CONNECTIONS', async (t) => {
  const small = await startPacer({ env: { PACER_STREAM_CONNECTIONS_MAX: '2' } });
  t.teardown(() => small.stop());
  const a = await connect(small.port);
  const b = await connect(small.port);
  const refusal = await new Promise<{ status: number; retryAfter: string | undefined; body: any }>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${small.port}/v1/stream`);
    ws.on('open', () => reject(new Error('a third connection was accepted')));
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: JSON.parse(text) }));
    });
    ws.on('error', () => {});
  });
  t.equal(refusal.status, 503);
  t.equal(refusal.retryAfter, '1');
  t.equal(refusal.body.error.code, 'TOO_MANY_CONNECTIONS');
  t.same(await a.send(packr.pack([[1, 1, 'nobody']])), [[1, 1, false, 'UNKNOWN_CAMPAIGN', false, 0, 0]], 'the open connections keep working');
  await new Promise<void>((resolve) => {
    b.ws.once('close', () => resolve());
    b.ws.close();
  });
  let c: Client | null = null;
  for (let i = 0; i < 50 && c === null; i++) {
    c = await connect(small.port).catch(async () => {
      await new Promise((r) => setTimeout(r, 20));
      return null;
    });
  }
  t.ok(c !== null, 'a connection is accepted again once one closed');
  a.ws.close();
  c?.ws.close();
});
