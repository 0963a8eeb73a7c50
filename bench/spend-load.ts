import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';

/**
 * The load generator of bench/spend.ts, in its own process (forked, so it shares no event loop with
 * the pacer): sends spend events open-loop at a fixed rate over WebSocket /v1/stream, one operation
 * per frame, and measures each acknowledgement's latency from the moment its frame was sent. The
 * generator is open-loop (it sends what is due whatever the answers), so a server stall still
 * counts in full; it wakes every millisecond rather than spinning, so that it does not take a core
 * from the pacer on a 2-core machine (a spinning generator measured mostly its own CPU theft).
 * Optionally interleaves decisions to measure the hot path. The parent may mark phases ('outage', 'recovered') over IPC; samples are kept per phase.
 *
 * Input (env): BENCH_URL, BENCH_RATE, BENCH_DURATION_S, BENCH_WARMUP_S, BENCH_CAMPAIGNS (JSON
 * array), BENCH_CONNECTIONS, BENCH_DUP_SHARE, BENCH_DECIDE_RATE. Output: one JSON line on stdout.
 */
const url = process.env.BENCH_URL!;
const rate = Number(process.env.BENCH_RATE);
const durationMs = Number(process.env.BENCH_DURATION_S) * 1000;
const warmupMs = Number(process.env.BENCH_WARMUP_S) * 1000;
const campaigns = JSON.parse(process.env.BENCH_CAMPAIGNS!) as string[];
const connections = Number(process.env.BENCH_CONNECTIONS);
const dupShare = Number(process.env.BENCH_DUP_SHARE);
const decideRate = Number(process.env.BENCH_DECIDE_RATE ?? 0);
const run = Date.now().toString(36);

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

type Phase = 'warmup' | 'steady' | 'outage' | 'recovered';
let phase: Phase = 'warmup';
process.on('message', (m: { phase: Phase }) => {
  phase = m.phase;
});

interface Pending {
  /** When the frame was sent (performance.now()). */
  dueMs: number;
  phase: Phase;
  kind: 'spend' | 'decide';
  campaign: number;
  amount: number;
  eventIndex: number;
}
const pending = new Map<number, Pending>();
const samples: Record<Phase, { spend: number[]; decide: number[] }> = {
  warmup: { spend: [], decide: [] },
  steady: { spend: [], decide: [] },
  outage: { spend: [], decide: [] },
  recovered: { spend: [], decide: [] },
};
const counts = { sent: 0, applied: 0, duplicate: 0, errors: 0, decisions: 0 };
const errorCodes: Record<string, number> = {};
/** Per campaign, the distinct events answered applied or duplicate: what the store must hold. */
const acknowledged = new Map<number, number>();
const settledOk = campaigns.map(() => 0);
const amounts: number[] = [];
const eventCampaign: number[] = [];

let seed = 0x9e3779b9;
function random(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const sockets: WebSocket[] = await Promise.all(
  Array.from({ length: connections }, () => new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/stream`);
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  })),
);

for (const ws of sockets) {
  ws.on('message', (data: Buffer) => {
    const now = performance.now();
    const results = unpackr.unpack(data) as unknown[][];
    for (const r of results) {
      const id = r[1] as number;
      const p = pending.get(id);
      if (p === undefined) continue;
      pending.delete(id);
      const latency = now - p.dueMs;
      if (p.kind === 'decide') {
        counts.decisions++;
        samples[p.phase].decide.push(latency);
        continue;
      }
      samples[p.phase].spend.push(latency);
      if (r[0] === 0) {
        counts.errors++;
        errorCodes[String(r[2])] = (errorCodes[String(r[2])] ?? 0) + 1;
        continue;
      }
      if (r[2] === 'applied') counts.applied++;
      else counts.duplicate++;
      if (!acknowledged.has(p.eventIndex)) {
        acknowledged.set(p.eventIndex, p.amount);
        settledOk[p.campaign]! += p.amount;
      }
    }
  });
}

let nextId = 1;
let socket = 0;
function sendSpend(_dueMs: number): void {
  let eventIndex: number;
  if (amounts.length > 0 && random() < dupShare) {
    eventIndex = Math.floor(random() * amounts.length); // a resend of an earlier event
  } else {
    eventIndex = amounts.length;
    eventCampaign.push(Math.floor(random() * campaigns.length));
    amounts.push(1 + Math.floor(random() * 10_000));
  }
  const campaign = eventCampaign[eventIndex]!;
  const amount = amounts[eventIndex]!;
  const id = nextId++ >>> 0;
  pending.set(id, { dueMs: performance.now(), phase, kind: 'spend', campaign, amount, eventIndex });
  const frame = packr.pack([[2, id, campaigns[campaign], `b-${run}-${eventIndex}`, amount]]);
  sockets[socket++ % sockets.length]!.send(Buffer.from(frame));
  counts.sent++;
}

function sendDecide(_dueMs: number): void {
  const id = nextId++ >>> 0;
  const campaign = Math.floor(random() * campaigns.length);
  pending.set(id, { dueMs: performance.now(), phase, kind: 'decide', campaign, amount: 0, eventIndex: -1 });
  sockets[socket++ % sockets.length]!.send(Buffer.from(packr.pack([[1, id, campaigns[campaign], 1, `d-${id}`]])));
}

const start = performance.now();
let spendsSent = 0;
let decidesSent = 0;
process.send?.({ started: true });
await new Promise<void>((resolve) => {
  const tick = (): void => {
    const now = performance.now();
    const elapsed = now - start;
    if (phase === 'warmup' && elapsed >= warmupMs) phase = 'steady';
    if (elapsed >= warmupMs + durationMs) {
      resolve();
      return;
    }
    // Every event that is due is sent now, stamped with the time it was due.
    const due = Math.floor((elapsed * rate) / 1000);
    for (; spendsSent < due; spendsSent++) sendSpend(start + (spendsSent * 1000) / rate);
    const dueDecides = Math.floor((elapsed * decideRate) / 1000);
    for (; decidesSent < dueDecides; decidesSent++) sendDecide(start + (decidesSent * 1000) / decideRate);
    setTimeout(tick, 1);
  };
  tick();
});
const sendEnd = performance.now();
const drainDeadline = Date.now() + 30_000;
while (pending.size > 0 && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 10));
for (const ws of sockets) ws.close();

function stats(xs: number[]) {
  const s = Float64Array.from(xs).sort();
  const q = (p: number) => (s.length === 0 ? null : Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]! * 1000) / 1000);
  return { n: s.length, p50Ms: q(0.5), p90Ms: q(0.9), p99Ms: q(0.99), p999Ms: q(0.999), maxMs: s.length === 0 ? null : Math.round(s[s.length - 1]! * 1000) / 1000 };
}

const phases: Record<string, unknown> = {};
for (const p of ['steady', 'outage', 'recovered'] as const) {
  if (samples[p].spend.length + samples[p].decide.length === 0) continue;
  phases[p] = { spend: stats(samples[p].spend), decide: stats(samples[p].decide) };
}
process.stdout.write(JSON.stringify({
  sent: counts.sent,
  achievedRate: Math.round((spendsSent * 1000) / (sendEnd - start)),
  applied: counts.applied,
  duplicate: counts.duplicate,
  errors: counts.errors,
  errorCodes,
  unanswered: pending.size,
  distinctEvents: amounts.length,
  phases,
  expectedSettled: Object.fromEntries(campaigns.map((c, i) => [c, settledOk[i]])),
}) + '\n');
process.exit(0);
