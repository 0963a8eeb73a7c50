import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { BenchPacer, benchToken, createCampaigns } from './lib/pacer.js';

/**
 * npm run bench:live [-- --campaigns N --seconds S]
 *
 * What the live feed (/v1/live) costs with N campaigns (EVEN, memory store): the CPU time of the
 * whole pacer process (utime + stime of /proc/PID/stat) over S seconds with no live client, then
 * over S seconds with one client subscribed to `all`, and how many status entries that client got
 * (an `all` subscription polls liveAllPollPerTickMax campaigns per tick, whatever N is).
 */
const { values } = parseArgs({ options: { campaigns: { type: 'string', default: '100000' }, seconds: { type: 'string', default: '10' } } });
const n = Number(values.campaigns);
const seconds = Number(values.seconds);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const bench = new BenchPacer('memory');
const pacer = await bench.start();
try {
  await createCampaigns(pacer.adminUrl, n, { prefix: 'live-', concurrency: 16, bulk: true });
  const cpuSeconds = (): number => {
    const f = readFileSync(`/proc/${pacer.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  };
  const over = async (): Promise<number> => {
    const c0 = cpuSeconds();
    await sleep(seconds * 1000);
    return cpuSeconds() - c0;
  };
  await sleep(2_000);
  const idle = await over();
  const ws = new WebSocket(`${pacer.adminUrl.replace('http', 'ws')}/v1/live`);
  await new Promise((r) => ws.once('open', r));
  let frames = 0;
  let entries = 0;
  ws.on('message', (d: Buffer) => {
    const f = JSON.parse(d.toString('utf8')) as { type: string; campaigns?: unknown[] };
    if (f.type !== 'status') return;
    frames++;
    entries += f.campaigns!.length;
  });
  ws.send(JSON.stringify({ type: 'auth', token: benchToken }));
  ws.send(JSON.stringify({ type: 'subscribe', all: true }));
  await sleep(1_000);
  frames = 0;
  entries = 0;
  const withAll = await over();
  ws.close();
  const result = { campaigns: n, seconds, cpuSecondsIdle: +idle.toFixed(2), cpuSecondsWithAllSubscriber: +withAll.toFixed(2), statusFrames: frames, statusEntries: entries };
  console.log(JSON.stringify(result));
} finally {
  await bench.stop(pacer);
  await bench.cleanup();
}
