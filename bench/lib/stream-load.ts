import { Packr, Unpackr } from 'msgpackr';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

/**
 * The load generator of bench/stream.ts, in its own process: batched decisions over WebSocket
 * /v1/stream (docs/stream-protocol.md), `--batch` operations per frame, on `--connections`
 * connections, each keeping `--window` frames in flight (closed loop: a frame is sent when an
 * answer comes back), for `--duration` seconds after a one-second warm-up. Every operation is a
 * decide with a bid and a unique requestId, cycling through campaigns bench-0 … bench-N, the same
 * operations bench/lib/load.ts sends over HTTP. Prints one JSON line:
 * {batch, decisionsPerS, frames, decisions, errors, errorCodes}.
 */
const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    batch: { type: 'string', default: '100' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '4' },
    window: { type: 'string' },
    campaigns: { type: 'string', default: '1000' },
  },
});
const batch = Number(values.batch);
const durationMs = Number(values.duration) * 1000;
const connections = Number(values.connections);
const campaigns = Number(values.campaigns);
// Frames in flight per connection: enough to hide the round trip, few enough that large frames do
// not queue behind each other (on this machine 2 frames of 100 served more than 16); far below the
// 8,192 operations a connection may have outstanding (shards/limits.ts).
const window = values.window !== undefined ? Number(values.window) : Math.max(2, Math.min(16, Math.floor(256 / batch)));
const warmupMs = 1000;

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const ids = Array.from({ length: campaigns }, (_, i) => `bench-${i}`);
const nonce = Math.floor(Math.random() * 1e9).toString(36);
let counter = 0;
let measuring = false;
let decisions = 0;
let frames = 0;
let errors = 0;
const errorCodes: Record<string, number> = {};

function frame(): Buffer {
  const ops: unknown[] = new Array(batch);
  for (let k = 0; k < batch; k++) {
    counter++;
    ops[k] = [1, counter >>> 0, ids[counter % campaigns], 1500, `s${nonce}-${counter}`];
  }
  // pack() returns a view into a pooled buffer: copy before handing it to the socket.
  return Buffer.from(packr.pack(ops));
}

async function connection(): Promise<void> {
  const ws = new WebSocket(values.url!, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let stopped = false;
  ws.on('message', (data: Buffer) => {
    const results = unpackr.unpack(data) as unknown[][];
    if (measuring) {
      frames++;
      for (const r of results) {
        if (r[0] === 1) decisions++;
        else {
          errors++;
          const code = String(r[2]);
          errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        }
      }
    }
    if (!stopped) ws.send(frame());
  });
  for (let i = 0; i < window; i++) ws.send(frame());
  await new Promise((r) => setTimeout(r, warmupMs + durationMs));
  stopped = true;
  ws.close();
}

const all = Promise.all(Array.from({ length: connections }, connection));
setTimeout(() => (measuring = true), warmupMs);
const t0 = performance.now();
let measuredMs = 0;
setTimeout(() => {
  measuring = false;
  measuredMs = performance.now() - t0 - warmupMs;
}, warmupMs + durationMs);
await all;
process.stdout.write(
  JSON.stringify({ batch, window, connections, decisionsPerS: Math.round((decisions / measuredMs) * 1000), frames, decisions, errors, errorCodes }) + '\n',
);
