import uWS from 'uWebSockets.js';

/**
 * The bare uWebSockets.js handler the pacer is measured against: it reads and parses the same JSON
 * body as /v1/decide and answers a fixed JSON, with nothing else. Started by bench/http.ts.
 */
const port = Number(process.env.PORT ?? 0);
const answer = '{"allow":true,"reason":"OK","reserved":false,"throttle":1,"pacingIndex":1}';
const app = uWS.App();
app.post('/v1/decide', (res) => {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  res.onData((chunk, isLast) => {
    if (!isLast || aborted) return;
    const body = JSON.parse(Buffer.from(chunk).toString('utf8')) as { campaignId?: unknown };
    if (typeof body.campaignId !== 'string') res.writeStatus('400 Bad Request');
    res.writeHeader('content-type', 'application/json').end(answer);
  });
});
app.listen('127.0.0.1', port, (sock) => {
  if (sock === false) throw new Error('baseline cannot listen');
  process.stdout.write(`${JSON.stringify({ port: uWS.us_socket_local_port(sock as unknown as uWS.us_socket) })}\n`);
});
