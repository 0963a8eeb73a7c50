/**
 * What a campaign's traffic profile costs once it has learned a day, in process: N campaigns in one
 * Shard (memory store, a simulated clock), a decision each every 10 minutes of a local day (so
 * every hour is observed and learned), after a full collection on the first day and after the
 * rollover into the second, per campaign: the V8 heap used, and the memory of array buffers (typed
 * arrays' backing stores, outside the heap: the shard's columns among them).
 *
 *   npx tsc -p . && node --expose-gc dist/bench/profile-memory.js [--campaigns N]
 */
import { inProcessShard } from './lib/in-process-shard.js';
import { OpWriter } from '../shards/wire.js';
import { parseCampaign } from '../src/model/campaign.js';

const i = process.argv.indexOf('--campaigns');
const n = i > 0 ? Number(process.argv[i + 1]) : 10_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

let now = Date.parse('2026-03-10T00:00:30Z');
const shard = inProcessShard(() => now, 'profile-memory');
const heap = (): number => {
  gc!();
  return process.memoryUsage().heapUsed;
};
const buffers = (): number => process.memoryUsage().arrayBuffers;
const h0 = heap();
const b0 = buffers();
const c0 = shard.columns.bytes;
for (let k = 0; k < n; k += 500) {
  await shard.loadMany(Array.from({ length: Math.min(500, n - k) }, (_, j) => parseCampaign({ id: `pm${k + j}`, dailyBudgetMicros: 1_000_000_000, strategy: 'EVEN' }, 1)));
}
const decideAll = (): void => {
  const w = new OpWriter();
  for (let k = 0; k < n; k++) w.decide(k, `pm${k}`, -1, '');
  shard.handleOps(w.take());
};
// A day in 10-minute steps: every local hour (UTC here) observed in full.
for (let m = 0; m < 24 * 6; m++) {
  decideAll();
  shard.summaries();
  now += 600_000;
}
now -= 600_000;
const dayOne = { heap: heap() - h0, buffers: buffers() - b0, columns: shard.columns.bytes - c0 };
now = Date.parse('2026-03-11T00:05:00Z');
decideAll();
shard.summaries();
const dayTwo = { heap: heap() - h0, buffers: buffers() - b0, columns: shard.columns.bytes - c0 };
if (shard.campaigns.size !== n) throw new Error('not all campaigns loaded');
const per = (b: number): number => Math.round(b / n);
process.stdout.write(`${JSON.stringify({
  bench: 'profile-memory',
  campaigns: n,
  dayOneHeapBytesPerCampaign: per(dayOne.heap),
  dayOneArrayBufferBytesPerCampaign: per(dayOne.buffers),
  dayOneColumnsBytesPerCampaign: per(dayOne.columns),
  dayTwoHeapBytesPerCampaign: per(dayTwo.heap),
  dayTwoArrayBufferBytesPerCampaign: per(dayTwo.buffers),
  dayTwoColumnsBytesPerCampaign: per(dayTwo.columns),
})}\n`);
