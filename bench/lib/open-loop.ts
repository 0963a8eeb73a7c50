import { Unpackr } from 'msgpackr';
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

/**
 * The open-loop load generator of bench/latency.ts, in its own process. It sends decisions on a
 * fixed schedule, `--rate` a second, whatever the answers do, and measures every decision's
 * latency from the moment the schedule meant it to be sent, not from when it went out: a stall of
 * the server (or of this generator) counts in full for every request that should have been sent
 * during it, which a closed-loop client (wrk, autocannon without -R) leaves out ("coordinated
 * omission"). wrk2 works this way; it is not packaged here, so this is its small equivalent.
 *
 * --transport http: raw TCP sockets, HTTP/1.1 keep-alive, one request at a time per connection
 *   (no pipelining), `POST /v1/decide` with a bid and a unique requestId. A request due while
 *   every connection is busy waits in a queue, and its wait is part of its latency.
 * --transport stream: WebSocket /v1/stream, `--batch` decisions per frame, frames sent on
 *   schedule round-robin over the connections (several frames in flight per connection, answered
 *   in order); every decision of a frame has that frame's latency.
 *
 * The schedule advances on a 1 ms timer (a busy loop would take a core from the server on this
 * 2-core machine): a request's intended time is exact, its actual send is up to the timer's
 * lateness later, reported as `sendLagP99Ms` so that the generator's own delay is visible.
 * Prints one JSON line: {transport, rate, achievedRate, p50Ms, p99Ms, p999Ms, maxMs, n, errors,
 * unanswered, sendLagP99Ms, generatorCpuPct, …}.
 */
const { values } = parseArgs({
  options: {
    transport: { type: 'string', default: 'http' },
    url: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string' },
    batch: { type: 'string', default: '100' },
    campaigns: { type: 'string', default: '1000' },
  },
});
const transport = values.transport!;
if (transport !== 'http' && transport !== 'stream') throw new Error('--transport must be http or stream');
const rate = Number(values.rate);
if (!(rate > 0)) throw new Error('--rate must be a positive number of decisions per second');
const durationMs = Number(values.duration) * 1000;
const warmupMs = Number(values.warmup) * 1000;
const campaigns = Number(values.campaigns);
const batch = transport === 'stream' ? Number(values.batch) : 1;
const connections = Number(values.connections ?? (transport === 'http' ? 64 : 4));
/** How long to wait for the last answers after the schedule ends; later ones count as unanswered. */
const drainMs = 5_000;
const url = new URL(values.url!);
const nonce = Math.floor(Math.random() * 1e9).toString(36);

/** Latencies (ms) of measured decisions, and send lags; grown as needed. */
class Samples {
  private xs = new Float64Array(1 << 16);
  n = 0;
  add(x: number): void {
    if (this.n === this.xs.length) {
      const next = new Float64Array(this.xs.length * 2);
      next.set(this.xs);
      this.xs = next;
    }
    this.xs[this.n++] = x;
  }
  sorted(): Float64Array {
    return this.xs.subarray(0, this.n).sort();
  }
}
const latency = new Samples();
const lag = new Samples();
let errors = 0;
const errorCodes: Record<string, number> = {};
let answered = 0;
let issued = 0;

function pct(s: Float64Array, p: number): number | null {
  if (s.length === 0) return null;
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 1000) / 1000;
}

let t0 = 0;
const measured = (intended: number): boolean => intended >= t0 + warmupMs && intended < t0 + warmupMs + durationMs;

function record(intended: number, ok: boolean, code?: string): void {
  answered++;
  if (!measured(intended)) return;
  if (!ok) {
    errors++;
    const c = code ?? 'unknown';
    errorCodes[c] = (errorCodes[c] ?? 0) + 1;
  }
  latency.add(performance.now() - intended);
}

// ---------------------------------------------------------------- HTTP on raw sockets

class HttpConnection {
  private buf: Buffer = Buffer.alloc(0);
  private intended = 0;
  busy = false;

  constructor(
    private readonly socket: Socket,
    private readonly onFree: (c: HttpConnection) => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => {});
  }

  send(intended: number, request: Buffer): void {
    this.busy = true;
    this.intended = intended;
    this.socket.write(request);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    const head = this.buf.indexOf('\r\n\r\n');
    if (head < 0) return;
    const headers = this.buf.toString('latin1', 0, head);
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(headers);
    const length = m === null ? 0 : Number(m[1]);
    if (this.buf.length < head + 4 + length) return;
    const status = Number(headers.slice(9, 12));
    this.buf = this.buf.subarray(head + 4 + length);
    this.busy = false;
    record(this.intended, status === 200, status === 200 ? undefined : `HTTP ${status}`);
    this.onFree(this);
  }
}

function decideRequest(i: number): Buffer {
  const body = `{"campaignId":"bench-${i % campaigns}","bidMicros":1500,"requestId":"o${nonce}-${i}"}`;
  return Buffer.from(
    `POST /v1/decide HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    'latin1',
  );
}

async function runHttp(): Promise<{ send: (i: number, intended: number) => void; close: () => void }> {
  const free: HttpConnection[] = [];
  /** Requests due while every connection was busy: [index, intended time]. */
  const backlog: number[] = [];
  let head = 0;
  const onFree = (c: HttpConnection): void => {
    if (head < backlog.length) {
      const i = backlog[head++]!;
      const intended = backlog[head++]!;
      if (head > 1 << 16) {
        backlog.splice(0, head);
        head = 0;
      }
      lag.add(performance.now() - intended);
      c.send(intended, decideRequest(i));
    } else free.push(c);
  };
  const sockets: Socket[] = [];
  await Promise.all(
    Array.from({ length: connections }, () => new Promise<void>((resolve, reject) => {
      const s = connect(Number(url.port), url.hostname, () => {
        sockets.push(s);
        free.push(new HttpConnection(s, onFree));
        resolve();
      });
      s.once('error', reject);
    })),
  );
  return {
    send(i, intended) {
      const c = free.pop();
      if (c === undefined) backlog.push(i, intended);
      else {
        lag.add(performance.now() - intended);
        c.send(intended, decideRequest(i));
      }
    },
    close() {
      for (const s of sockets) s.destroy();
    },
  };
}

// ---------------------------------------------------------------- WebSocket stream

/**
 * A frame of `batch` decide operations, MessagePack written by hand (the generator must not be the
 * bottleneck at hundreds of thousands of decisions a second): [[1, id, campaignId, 1500,
 * requestId], …] with fixstr strings (every ID here is under 32 bytes).
 */
function decideFrame(first: number): Buffer {
  const parts: number[] = [];
  if (batch < 16) parts.push(0x90 | batch);
  else parts.push(0xdc, batch >> 8, batch & 0xff);
  for (let k = 0; k < batch; k++) {
    const i = first + k;
    const id = i >>> 0;
    parts.push(0x95, 0x01, 0xce, (id >>> 24) & 0xff, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff);
    const c = `bench-${i % campaigns}`;
    parts.push(0xa0 | c.length);
    for (let j = 0; j < c.length; j++) parts.push(c.charCodeAt(j));
    parts.push(0xcd, 1500 >> 8, 1500 & 0xff);
    const r = `o${nonce}-${i}`;
    parts.push(0xa0 | r.length);
    for (let j = 0; j < r.length; j++) parts.push(r.charCodeAt(j));
  }
  return Buffer.from(parts);
}

async function runStream(): Promise<{ send: (i: number, intended: number) => void; close: () => void }> {
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
  const wsUrl = `ws://${url.host}/v1/stream`;
  const sockets = await Promise.all(
    Array.from({ length: connections }, () => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    })),
  );
  const inFlight = sockets.map(() => [] as number[]);
  sockets.forEach((ws, k) => {
    ws.on('message', (data: Buffer) => {
      const intended = inFlight[k]!.shift()!;
      const results = unpackr.unpack(data) as unknown[][];
      for (const r of results) record(intended, r[0] === 1, r[0] === 1 ? undefined : String(r[2]));
    });
  });
  let next = 0;
  return {
    send(i, intended) {
      const k = next++ % sockets.length;
      inFlight[k]!.push(intended);
      lag.add(performance.now() - intended);
      sockets[k]!.send(decideFrame(i));
    },
    close() {
      for (const ws of sockets) ws.terminate();
    },
  };
}

// ---------------------------------------------------------------- the schedule

const client = transport === 'http' ? await runHttp() : await runStream();
/** Units on the schedule: requests over HTTP, frames over the stream. */
const unitsPerS = rate / batch;
const unitMs = 1000 / unitsPerS;
const endMs = warmupMs + durationMs;
const cpu0 = process.cpuUsage();
t0 = performance.now();
let units = 0;
let measuredIssued = 0;
await new Promise<void>((resolve) => {
  const tick = (): void => {
    const elapsed = performance.now() - t0;
    const due = Math.min(Math.floor(elapsed / unitMs) + 1, Math.ceil(endMs / unitMs));
    for (; units < due; units++) {
      const intended = t0 + units * unitMs;
      client.send(units * batch, intended);
      issued += batch;
      if (measured(intended)) measuredIssued += batch;
    }
    if (elapsed >= endMs) resolve();
    else setTimeout(tick, 1);
  };
  tick();
});
const scheduleEnd = performance.now();
while (answered < issued && performance.now() - scheduleEnd < drainMs) await new Promise((r) => setTimeout(r, 10));
const cpu = process.cpuUsage(cpu0);
client.close();

const s = latency.sorted();
const l = lag.sorted();
process.stdout.write(
  JSON.stringify({
    transport,
    batch,
    connections,
    rate,
    achievedRate: Math.round((s.length / durationMs) * 1000),
    n: s.length,
    p50Ms: pct(s, 50),
    p99Ms: pct(s, 99),
    p999Ms: pct(s, 99.9),
    maxMs: s.length === 0 ? null : Math.round(s[s.length - 1]! * 1000) / 1000,
    errors,
    errorCodes,
    unanswered: Math.max(0, measuredIssued - s.length),
    sendLagP50Ms: pct(l, 50),
    sendLagP99Ms: pct(l, 99),
    generatorCpuPct: Math.round(((cpu.user + cpu.system) / 1000 / (scheduleEnd - t0)) * 1000) / 10,
  }) + '\n',
);
process.exit(0);
