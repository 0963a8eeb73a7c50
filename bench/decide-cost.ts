/**
 * The shard's CPU time per operation, in process (no threads, no HTTP): N campaigns loaded into one
 * Shard (memory store, a simulated clock that moves 1 ms per batch so control ticks and hour
 * changes happen), then rounds of batches of B decisions for random campaigns, each with a bid and
 * a requestId, followed by a spend for every second allowed one and a release for the others.
 * Reports the CPU µs per decision (decide batches only) and per spend or release, the median of
 * the rounds: CPU time, not wall time, so that the machine's other work changes it little.
 *
 *   npx tsc -p . && node dist/bench/decide-cost.js [--campaigns N --batch B --rounds R --ops OPS]
 */
import { parseArgs } from 'node:util';
import { Reason } from '../shards/reasons.js';
import { sfc32 } from '../shards/rng.js';
import { inProcessShard } from './lib/in-process-shard.js';
import { OpWriter, ResultReader } from '../shards/wire.js';
import { parseCampaign } from '../src/model/campaign.js';

const { values } = parseArgs({
  options: {
    campaigns: { type: 'string', default: '10000' },
    batch: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '7' },
    ops: { type: 'string', default: '200000' },
  },
});
const n = Number(values.campaigns);
const batch = Number(values.batch);
const rounds = Number(values.rounds);
const opsPerRound = Number(values.ops);

let now = Date.parse('2026-03-10T08:00:00Z');
const shard = inProcessShard(() => now, 'decide-cost');
const strategies = ['EVEN', 'ASAP', 'FRONT_LOADED', 'ADAPTIVE'] as const;
const configs = Array.from({ length: n }, (_, i) =>
  parseCampaign({ id: `dc-${i}`, dailyBudgetMicros: 50_000_000_000, strategy: strategies[i % strategies.length] }, 1),
);
for (let i = 0; i < n; i += 500) await shard.loadMany(configs.slice(i, i + 500));

const pick = sfc32(2);
const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
let seq = 0;
const decideUs: number[] = [];
const settleUs: number[] = [];
for (let round = 0; round < rounds; round++) {
  let dUs = 0;
  let sUs = 0;
  let decided = 0;
  let settled = 0;
  while (decided < opsPerRound) {
    const w = new OpWriter();
    const ids: string[] = [];
    const requests: string[] = [];
    for (let k = 0; k < batch; k++) {
      const id = `dc-${Math.floor(pick() * n)}`;
      const requestId = `q${seq++}`;
      ids.push(id);
      requests.push(requestId);
      w.decide(k, id, 1_000, requestId);
    }
    const data = w.take();
    const t0 = cpuUs();
    const out = shard.handleOps(data);
    dUs += cpuUs() - t0;
    decided += batch;
    const r = new ResultReader().reset(out);
    const s = new OpWriter();
    let k = 0;
    let m = 0;
    while (r.next()) {
      if (r.code === Reason.OK) {
        if (m++ % 2 === 0) s.spend(k, ids[k]!, 700, `e${requests[k]!}`, requests[k]!);
        else s.release(k, ids[k]!, requests[k]!);
      }
      k++;
    }
    if (m > 0) {
      const sdata = s.take();
      const t1 = cpuUs();
      shard.handleOps(sdata);
      sUs += cpuUs() - t1;
      settled += m;
    }
    now += 1;
  }
  decideUs.push(dUs / decided);
  if (settled > 0) settleUs.push(sUs / settled);
}
await shard.drain();
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
};
const r3 = (x: number): number => Math.round(x * 1000) / 1000;
console.log(JSON.stringify({
  bench: 'decide-cost',
  campaigns: n,
  batch,
  rounds,
  opsPerRound,
  cpuUsPerDecision: r3(median(decideUs)),
  cpuUsPerSpendOrRelease: r3(median(settleUs)),
  decisionRounds: decideUs.map(r3),
}));
