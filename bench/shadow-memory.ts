/**
 * What a shadow costs in memory, in process: N campaigns loaded into one shard actor (memory
 * store, simulated clock), each given one decision so that its traffic state exists, without a
 * shadow and then with one (`shadow: {strategy: 'ASAP'}`); the heap after a full collection, per
 * campaign. `npx tsc -p . && node --expose-gc dist/bench/shadow-memory.js [--campaigns N]`.
 */
import { inProcessShard } from './lib/in-process-shard.js';
import { OpWriter } from '../shards/wire.js';
import { parseCampaign } from '../src/model/campaign.js';

const i = process.argv.indexOf('--campaigns');
const n = i > 0 ? Number(process.argv[i + 1]) : 20_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

async function heapWith(shadow: boolean): Promise<number> {
  const now = Date.parse('2026-03-10T12:00:00Z');
  const shard = inProcessShard(() => now, 'bench');
  gc!();
  const before = process.memoryUsage().heapUsed;
  for (let k = 0; k < n; k++) {
    await shard.upsert(parseCampaign({ id: `c${k}`, dailyBudgetMicros: 1_000_000, strategy: 'EVEN', ...(shadow ? { shadow: { strategy: 'ASAP' } } : {}) }, 1));
  }
  const w = new OpWriter();
  for (let k = 0; k < n; k++) w.decide(k, `c${k}`, -1, '');
  shard.handleOps(w.take());
  shard.summaries();
  gc!();
  const used = process.memoryUsage().heapUsed - before;
  // Keep the shard alive until measured.
  if (shard.campaigns.size !== n) throw new Error('not all campaigns loaded');
  return used;
}

const plain = await heapWith(false);
const shadowed = await heapWith(true);
const kb = (b: number): string => (b / n / 1024).toFixed(2);
process.stdout.write(`${JSON.stringify({ campaigns: n, withoutShadowKbPerCampaign: Number(kb(plain)), withShadowKbPerCampaign: Number(kb(shadowed)), shadowKbPerCampaign: Number(kb(shadowed - plain)) })}\n`);
