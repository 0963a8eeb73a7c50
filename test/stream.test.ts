import { Packr, Unpackr } from 'msgpackr';
import { readFileSync } from 'node:fs';
import t from 'tap';
import WebSocket from 'ws';
import { createCampaign, startPacer, status } from './helpers/server.js';
import { type StreamClient, streamClient } from './helpers/stream-client.js';

const pacer = await startPacer();
t.teardown(() => pacer.stop());

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });
const connect = (): Promise<StreamClient> => streamClient(pacer.port);

t.test('a frame of decide, spend and release operations is answered in one frame, in order', async (t) => {
  await createCampaign(pacer, { id: 'ws-1', dailyBudgetMicros: 1_000_000, strategy: 'ASAP' });
  const c = await connect();
  t.teardown(() => c.ws.close());
  const answer = await c.request([
    [1, 1, 'ws-1', 2_000, 'auc-1'],
    [1, 2, 'ws-1', 3_000, 'auc-2'],
    [1, 3, 'nobody'],
  ]);
  t.same(answer.map((r) => r.slice(0, 5)), [
    [1, 1, true, 'OK', true],
    [1, 2, true, 'OK', true],
    [1, 3, false, 'UNKNOWN_CAMPAIGN', false],
  ]);
  const settle = await c.request([
    [2, 10, 'ws-1', 'imp-1', 1_900, 'auc-1'],
    [2, 11, 'ws-1', 'imp-1', 1_900, 'auc-1'],
    [3, 12, 'ws-1', 'auc-2'],
    [3, 13, 'ws-1', 'auc-2'],
  ]);
  t.same(settle, [
    [2, 10, 'applied', true, false, false],
    [2, 11, 'duplicate', false, false, false],
    [3, 12, true],
    [3, 13, false],
  ]);
  const s = await status(pacer, 'ws-1');
  t.equal(s.settledMicros, 1_900);
  t.equal(s.reservedMicros, 0);
});

t.test('bad operations get error results and the good ones in the frame still run', async (t) => {
  await createCampaign(pacer, { id: 'ws-2', dailyBudgetMicros: 1_000_000, strategy: 'ASAP' });
  const c = await connect();
  t.teardown(() => c.ws.close());
  const answer = await c.request([
    [2, 1, 'ws-2', 'e-1', -5],
    [9, 2, 'ws-2'],
    'not an op',
    [2, 4, 'ws-2', 'e-2', 10],
  ]);
  t.equal(answer[0][0], 0);
  t.equal(answer[0][2], 'INVALID_AMOUNT');
  t.equal(answer[1][2], 'INVALID_BODY');
  t.equal(answer[2][2], 'INVALID_BODY');
  t.same(answer[3], [2, 4, 'applied', false, false, false]);
  t.equal((await status(pacer, 'ws-2')).settledMicros, 10);

  const notMsgpack = await new Promise<any[]>((resolve) => {
    c.ws.once('message', (d: Buffer) => resolve(unpackr.unpack(d) as any[]));
    c.ws.send(Buffer.from([0x93, 0x01, 0x02]));
  });
  t.equal(notMsgpack[0][2], 'INVALID_JSON');
  const text = await new Promise<any[]>((resolve) => {
    c.ws.once('message', (d: Buffer) => resolve(unpackr.unpack(d) as any[]));
    c.ws.send('hello');
  });
  t.equal(text[0][2], 'INVALID_BODY', 'text frames are refused');
});

t.test('a client that never reads is cut off instead of growing the server', async (t) => {
  await createCampaign(pacer, { id: 'ws-slow', dailyBudgetMicros: 1_000_000_000, strategy: 'ASAP' });
  const rssMb = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pacer.child.pid}/status`, 'utf8'))![1]) / 1024;
  // The server's own count of open stream connections (pacer_ws_connections, summed over routers):
  // a close the server made is seen here even when the paused client has not read the FIN yet.
  const serverConnections = async (): Promise<number> => {
    const text = await (await fetch(`${pacer.adminUrl}/metrics`)).text();
    return text.split('\n').filter((l) => l.startsWith('pacer_ws_connections')).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
  };
  const connectionsBefore = await serverConnections();
  const rssBefore = rssMb();
  const ws = new WebSocket(`ws://127.0.0.1:${pacer.port}/v1/stream`);
  await new Promise<void>((resolve) => ws.once('open', () => resolve()));
  // Stop reading: the socket's receive buffer fills, then the server's send buffer.
  (ws as unknown as { _socket: { pause(): void } })._socket.pause();
  const frame = packr.pack(Array.from({ length: 1000 }, (_, i) => [1, i, 'ws-slow']));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  let sent = 0;
  const timer = setInterval(() => {
    for (let i = 0; i < 20 && ws.readyState === WebSocket.OPEN; i++) {
      ws.send(frame);
      sent++;
    }
  }, 5);
  let polling = true;
  const serverClosed = (async () => {
    // Seen open by the server (the count rose) and then closed by it (back to what it was).
    let seenOpen = false;
    while (polling) {
      await new Promise((r) => setTimeout(r, 250));
      const open = await serverConnections();
      if (open > connectionsBefore) seenOpen = true;
      else if (seenOpen) return;
    }
    await new Promise(() => {});
  })();
  const result = await Promise.race([closed.then(() => 'closed'), serverClosed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 20_000))]);
  polling = false;
  clearInterval(timer);
  if (result === 'open') ws.terminate();
  t.equal(result, 'closed', `the server closed the connection (after ${sent} frames of 1,000 decisions)`);
  const grown = rssMb() - rssBefore;
  t.ok(grown < 150, `server memory grew ${grown.toFixed(0)} MB, bounded by the backpressure limit`);
  const health = await fetch(`${pacer.url}/healthz`);
  t.equal(health.status, 200, 'the server is healthy after the slow client');
});
