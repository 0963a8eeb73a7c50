import { execSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { LeaseClient } from '../src/store/leases.js';
import { openRedisCluster, whenReady } from '../src/store/redis.js';
import { startRedisCluster } from '../test/helpers/redis-cluster.js';
import { adminToken, createCampaign, type Pacer, post, startPacer } from '../test/helpers/server.js';
import { createDatabase, uniqueName } from '../test/helpers/services.js';
import { committedInStore, runFleet } from './lib/fleet.js';
import { root } from './lib/process.js';

/**
 * bench:cluster: 1, 2 and 3 pacer instances (dist/src/main.js, one shard each, budget leases on)
 * over a real three-master Redis Cluster of redis-server processes and one PostgreSQL database,
 * the same campaigns and traffic in every run: small ASAP budgets that the traffic can spend in
 * the run, bids split 70/20/10 between the instances (70/30 with two), a third of the win notices
 * sent to any instance. Prints one JSON line per run:
 *
 *   instances, decisionsPerS, overspendRatio (Σ max(0, settled − budget) ÷ Σ budget),
 *   deliveryRatio (Σ settled ÷ Σ budget at the end), strandedMaxRatio (the largest share of the
 *   budgets held in leases but not committed to a bid or spend, sampled every 100 ms: money other
 *   instances could not have), leaseRenewalsPerS (lease grants and renewals of all instances per s)
 *
 * and rewrites the table between the cluster markers in bench/README.md. Environment knobs:
 * BENCH_CLUSTER_DURATION_MS (default 20000), BENCH_CLUSTER_CAMPAIGNS (8), BENCH_CLUSTER_BUDGET
 * (micros per campaign, 400000), BENCH_CLUSTER_PORTS (redis-server ports, 17200-17299).
 */
const durationMs = Number(process.env.BENCH_CLUSTER_DURATION_MS ?? 20_000);
const campaignCount = Number(process.env.BENCH_CLUSTER_CAMPAIGNS ?? 8);
const budget = Number(process.env.BENCH_CLUSTER_BUDGET ?? 400_000);
const bid = 1_000;
process.env.TEST_REDIS_CLUSTER_PORTS ??= process.env.BENCH_CLUSTER_PORTS ?? '17200-17299';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const shares: Record<number, number[]> = { 1: [1], 2: [0.7, 0.3], 3: [0.7, 0.2, 0.1] };

interface Run {
  instances: number;
  decisionsPerS: number;
  overspendRatio: number;
  deliveryRatio: number;
  strandedMaxRatio: number;
  leaseRenewalsPerS: number;
}

async function leaseGrants(p: Pacer): Promise<number> {
  const text = await (await fetch(`${p.adminUrl}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } })).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith('pacer_lease_grants_total')) sum += Number(line.split(' ').pop());
  return sum;
}

async function one(instances: number, seeds: string, db: string): Promise<Run> {
  const prefix = uniqueName('bench-cluster');
  const env = {
    PACER_STORE: 'redis', PACER_REDIS_CLUSTER: seeds, PACER_REDIS_KEY_PREFIX: prefix, PACER_DATABASE_URL: db,
    PACER_SHARDS: '1', PACER_LEASES: 'on', PACER_RESERVATION_TTL_MS: '5000',
  };
  const pacers: Pacer[] = [];
  for (let i = 0; i < instances; i++) pacers.push(await startPacer({ env }));
  const redis = openRedisCluster(seeds.split(',').map((s) => ({ host: s.split(':')[0]!, port: Number(s.split(':')[1]) })), 'bench');
  await whenReady(redis, 5_000);
  const leases = new LeaseClient(redis, prefix, 86_400);
  const day = new Date().toISOString().slice(0, 10);
  try {
    const ids = Array.from({ length: campaignCount }, (_, i) => `bc-${instances}-${i}`);
    for (const id of ids) await createCampaign(pacers[0]!, { id, dailyBudgetMicros: budget, strategy: 'ASAP', velocityCapMultiple: 1_000, breaker: { enabled: false } });
    for (const p of pacers) {
      for (const id of ids) {
        for (let i = 0; i < 300; i++) {
          const d = await post(p.url, '/v1/decide', { campaignId: id });
          if (d.body.reason !== 'UNKNOWN_CAMPAIGN' && d.body.reason !== 'NOT_READY') break;
          await sleep(20);
        }
      }
    }
    let done = false;
    let strandedMax = 0;
    const sampler = (async () => {
      while (!done) {
        let stranded = 0;
        for (const id of ids) {
          const snap = await leases.snapshot(id, day);
          const [committed, settled] = await committedInStore(redis, prefix, id, day);
          stranded += Math.max(0, snap.leasedMicros - (committed - settled));
        }
        strandedMax = Math.max(strandedMax, stranded / (budget * ids.length));
        await sleep(100);
      }
    })();
    const grants0 = (await Promise.all(pacers.map(leaseGrants))).reduce((a, b) => a + b, 0);
    const result = await runFleet({
      urls: pacers.map((p) => p.url), shares: shares[instances]!, campaigns: ids, bidMicros: bid,
      concurrency: 16, batch: 20, durationMs, winShare: 0.8, elsewhereShare: 0.33, seed: 7,
    });
    done = true;
    await sampler;
    const grants1 = (await Promise.all(pacers.map(leaseGrants))).reduce((a, b) => a + b, 0);
    let settledSum = 0;
    let over = 0;
    for (const id of ids) {
      const s = (await committedInStore(redis, prefix, id, day))[1];
      settledSum += s;
      over += Math.max(0, s - budget);
    }
    const total = budget * ids.length;
    const round = (x: number): number => Math.round(x * 10_000) / 10_000;
    return {
      instances,
      decisionsPerS: Math.round((result.decisions * 1000) / result.elapsedMs),
      overspendRatio: round(over / total),
      deliveryRatio: round(settledSum / total),
      strandedMaxRatio: round(strandedMax),
      leaseRenewalsPerS: Math.round(((grants1 - grants0) * 1000) / result.elapsedMs),
    };
  } finally {
    for (const p of pacers) await p.stop();
    redis.disconnect();
  }
}

function commit(): string {
  try {
    const sha = execSync('git rev-parse --short HEAD', { cwd: root }).toString().trim();
    const dirty = execSync('git status --porcelain -- src shards bench', { cwd: root }).toString().trim() !== '';
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return 'unknown';
  }
}

const cluster = await startRedisCluster(3);
const db = await createDatabase('bench_cluster');
const loadBefore = loadavg()[0]!;
const runs: Run[] = [];
try {
  for (const n of [1, 2, 3]) {
    const r = await one(n, cluster.seeds, db.url);
    console.log(JSON.stringify(r));
    runs.push(r);
  }
} finally {
  await db.drop();
  await cluster.destroy();
}
const loadAfter = loadavg()[0]!;
const at = new Date().toISOString();
const summary = { bench: 'cluster', at, commit: commit(), loadAvg1m: [loadBefore, loadAfter], durationMs, campaigns: campaignCount, budgetMicros: budget, runs };
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results', `cluster-${at.replace(/[:.]/g, '-')}.json`), JSON.stringify(summary, null, 2) + '\n');

// The table between the markers is this run's, regenerated; nothing in it is typed by hand.
const readme = join(root, 'bench/README.md');
const text = readFileSync(readme, 'utf8');
const rows = runs.map((r) => `| ${r.instances} | ${r.decisionsPerS} | ${r.overspendRatio} | ${r.deliveryRatio} | ${r.strandedMaxRatio} | ${r.leaseRenewalsPerS} |`);
const table = [
  '<!-- cluster:begin -->',
  `Commit ${summary.commit}, ${at.slice(0, 16).replace('T', ' ')} UTC, load average (1 min) ${loadBefore.toFixed(2)} before / ${loadAfter.toFixed(2)} after, ${campaignCount} campaigns of ${budget} micros, ${durationMs} ms per run (\`npm run bench:cluster\`).`,
  '',
  '| instances | decisionsPerS | overspendRatio | deliveryRatio | strandedMaxRatio | leaseRenewalsPerS |',
  '| --- | --- | --- | --- | --- | --- |',
  ...rows,
  '<!-- cluster:end -->',
].join('\n');
const begin = text.indexOf('<!-- cluster:begin -->');
const end = text.indexOf('<!-- cluster:end -->');
if (begin >= 0 && end > begin) writeFileSync(readme, text.slice(0, begin) + table + text.slice(end + '<!-- cluster:end -->'.length));
console.log(JSON.stringify({ bench: 'cluster', loadAvg1m: [loadBefore, loadAfter], commit: summary.commit }));
