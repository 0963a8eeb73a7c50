import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { BenchPacer, benchToken, createCampaigns } from './lib/pacer.js';

/**
 * npm run bench:dashboard [-- --campaigns N --runs R --store memory|embedded|redis-postgres]
 *
 * What the dashboard's fleet page asks of a pacer with N campaigns: the time to answer one page of
 * 25 of the fleet report (worst off plan first; it orders the whole catalogue per request), of the
 * listing (id order), of a filtered report, and the time from a live subscribe of the page's 25
 * campaigns to their first status frame. R runs each, the median and the largest printed as JSON.
 */
const { values } = parseArgs({
  options: { campaigns: { type: 'string', default: '100000' }, runs: { type: 'string', default: '5' }, store: { type: 'string', default: 'memory' } },
});
const n = Number(values.campaigns);
const runs = Number(values.runs);
const auth = { authorization: `Bearer ${benchToken}` };

async function timed(url: string): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(url, { headers: auth });
  const body = (await r.json()) as { campaigns?: unknown[] };
  if (r.status !== 200 || !Array.isArray(body.campaigns)) throw new Error(`${url} answered ${r.status}`);
  return performance.now() - t0;
}

function summary(ms: number[]): { medianMs: number; maxMs: number } {
  const s = [...ms].sort((a, b) => a - b);
  return { medianMs: +s[Math.floor(s.length / 2)]!.toFixed(1), maxMs: +s[s.length - 1]!.toFixed(1) };
}

async function liveFirstStatus(adminUrl: string, ids: string[]): Promise<number> {
  const ws = new WebSocket(`${adminUrl.replace('http', 'ws')}/v1/live`);
  await new Promise((r) => ws.once('open', r));
  ws.send(JSON.stringify({ type: 'auth', token: benchToken }));
  await new Promise<void>((resolve) => ws.on('message', (d: Buffer) => JSON.parse(d.toString('utf8')).type === 'hello' && resolve()));
  const t0 = performance.now();
  const got = new Promise<number>((resolve) => ws.on('message', (d: Buffer) => JSON.parse(d.toString('utf8')).type === 'status' && resolve(performance.now() - t0)));
  ws.send(JSON.stringify({ type: 'subscribe', campaigns: ids }));
  const ms = await got;
  ws.close();
  return ms;
}

const bench = new BenchPacer(values.store as 'memory');
const pacer = await bench.start();
try {
  await createCampaigns(pacer.adminUrl, n, { prefix: 'dash-', concurrency: 16, bulk: true });
  const day = new Date().toISOString().slice(0, 10);
  const report: number[] = [];
  const filtered: number[] = [];
  const listing: number[] = [];
  const live: number[] = [];
  const ids = Array.from({ length: 25 }, (_, i) => `dash-${i}`);
  for (let i = 0; i < runs; i++) {
    report.push(await timed(`${pacer.adminUrl}/v1/report?day=${day}&limit=25`));
    filtered.push(await timed(`${pacer.adminUrl}/v1/report?day=${day}&limit=25&q=dash-9`));
    listing.push(await timed(`${pacer.adminUrl}/v1/campaigns?limit=25`));
    live.push(await liveFirstStatus(pacer.adminUrl, ids));
  }
  console.log(JSON.stringify({
    campaigns: n,
    store: values.store,
    runs,
    fleetReportPage: summary(report),
    fleetReportFilteredPage: summary(filtered),
    listingPage: summary(listing),
    liveSubscribe25FirstStatus: summary(live),
  }));
} finally {
  await bench.stop(pacer);
  await bench.cleanup();
}
