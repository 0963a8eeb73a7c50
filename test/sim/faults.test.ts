import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { CampaignSnapshot, FlushBatch, FlushOutcome } from '../../shards/ports.js';
import { defaultFaults, type SimBackingStore } from '../../src/sim/faults.js';
import { AuditFailure } from '../../src/sim/ledger.js';
import { simulate } from '../../src/sim/run.js';
import { MemoryStore } from '../../src/store/memory.js';

/**
 * The simulator with store faults: the production shard behind the production resilient store
 * and spool, over a store that refuses, hangs, loses replies after writing and answers late, with
 * outages and pacer restarts, all drawn from the seed. The auditor checks every step; these tests
 * check that a day through the faults keeps exact totals and the hard cap, that a lossy store
 * restart is measured, and that a store that counts a retried batch twice is caught, with the
 * seed that replays it. A tenth of the built-in volume (40,000 opportunities over the day) keeps
 * the day's run to about a second on an idle machine; no assertion on timing.
 */
const day = { trafficScale: 0.1, budgetFraction: 0.5 };
/** A fifth of that for the other runs: 8,000 opportunities. */
const small = { trafficScale: 0.02, budgetFraction: 0.5 };

/** The memory store, kept at hand so a test can read the totals it holds after the run. */
function capturing(): { make: () => SimBackingStore; last: () => SimBackingStore } {
  let last: SimBackingStore | null = null;
  return {
    make: () => (last = new MemoryStore()),
    last: () => last!,
  };
}

t.test('a simulated day with store faults keeps exact totals and the hard cap', async (t) => {
  // Seed 6 also has a restart that waits for a hung call carrying spend (found by trying seeds 1-12).
  const backing = capturing();
  const r = await simulate({ ...day, seed: 6, faults: defaultFaults, backing: backing.make });
  const f = r.detail.faults!;
  t.ok(f.rejected > 0 && f.hung > 0 && f.lostReplies > 0 && f.lateReplies > 0, `every call fault happened (${JSON.stringify(f)})`);
  t.ok(f.outages > 0 && f.restarts > 0 && f.spoolPeriods > 0, 'outages, restarts and spooling happened');
  t.ok(f.resentAfterRestart > 0, `a restart with spend in flight made the exchange resend it (${f.resentAfterRestart})`);
  t.equal(f.errors.length, 0, 'the resilient store logged no error');
  t.equal(backing.last().settledOf('sim-campaign', r.detail.day), r.spentMicros, 'the store holds exactly Σ distinct events sent');
  t.ok(r.spentMicros <= r.budgetMicros + r.detail.lateMicros, `spent ${r.spentMicros} ≤ budget ${r.budgetMicros} + late ${r.detail.lateMicros}`);
  t.ok(r.deliveryRatio > 0.99, `the day still delivers (${r.deliveryRatio})`);
});

t.test('a run with faults replays exactly from its seed', async (t) => {
  const a = await simulate({ ...small, seed: 5, faults: defaultFaults });
  const b = await simulate({ ...small, seed: 5, faults: defaultFaults });
  t.same({ ...a, detail: null }, { ...b, detail: null });
  t.same(a.detail.faults, b.detail.faults);
});

t.test('a store restart that loses its last second of writes is measured by the auditor', async (t) => {
  const r = await simulate({ ...small, seed: 1, faults: { ...defaultFaults, storeLossesPerDay: 2 } });
  const f = r.detail.faults!;
  t.equal(f.storeRestarts, 2);
  t.ok(f.lostAcknowledgedMicros > 0, `acknowledged spend was lost (${f.lostAcknowledgedMicros} micros in ${f.lostAcknowledgedEvents} events)`);
  t.equal(f.storeSettledDropMicros, f.lostAcknowledgedMicros, 'the store’s totals dropped by exactly what the auditor finds missing');
  t.ok(f.lostAcknowledgedMicros <= f.windowAcknowledgedMicros, 'no more than what was acknowledged in the lost second');
});

/**
 * A broken store: it applies a batch it has seen before again instead of answering it from its
 * record of applied batch IDs (a Redis script without the batch check would). Only a retry after a
 * lost or late reply sends a batch twice, so only faults expose it.
 */
class DoubleApplyStore implements SimBackingStore {
  readonly kind = 'double-apply';
  private readonly inner = new MemoryStore();
  private readonly seen = new Set<string>();
  private readonly extra = new Map<string, number>();

  async apply(batch: FlushBatch): Promise<FlushOutcome> {
    if (this.seen.has(batch.batchId)) {
      for (const d of batch.campaigns) {
        const key = `${d.campaignId}\n${d.day}`;
        for (const e of d.events) this.extra.set(key, (this.extra.get(key) ?? 0) + e.amountMicros);
      }
    }
    this.seen.add(batch.batchId);
    return this.inner.apply(batch);
  }

  async load(campaignId: string, day: string, flightStartDay: string | null): Promise<CampaignSnapshot> {
    const s = await this.inner.load(campaignId, day, flightStartDay);
    return { ...s, settledMicros: s.settledMicros + (this.extra.get(`${campaignId}\n${day}`) ?? 0) };
  }

  settledOf(campaignId: string, day: string): number {
    return this.inner.settledOf(campaignId, day) + (this.extra.get(`${campaignId}\n${day}`) ?? 0);
  }

  async close(): Promise<void> {}
}

t.test('a store that double-applies a retried batch is caught by the auditor, with its seed', async (t) => {
  const clean = await simulate({ ...small, seed: 7, backing: () => new DoubleApplyStore() });
  t.ok(clean.spentMicros > 0, 'without faults no batch is retried, so the broken store goes unnoticed');
  const err = await simulate({ ...small, seed: 7, faults: defaultFaults, backing: () => new DoubleApplyStore() }).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof AuditFailure, `the run fails its audit (${String(err)})`);
  t.equal((err as AuditFailure).seed, 7, 'the failure carries its seed');
  t.match((err as AuditFailure).message, /seed 7\b/, 'and its message names it');
  t.match((err as AuditFailure).message, /counted twice|≠/, 'and says what broke');
});

t.test('npm run simulate -- --faults reports the faults, and documents them in --help', async (t) => {
  const cli = fileURLToPath(new URL('../../dist/src/sim/cli.js', import.meta.url));
  const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
  t.match(help.stdout, /--faults/);
  t.match(help.stdout, /--store-loss N/);
  const run = spawnSync(process.execPath, [cli, '--faults', '--traffic-scale', '0.01', '--seed', '4', '--json'], { encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout) as { seed: number; faults: { restarts: number; calls: number } };
  t.equal(out.seed, 4);
  t.ok(out.faults.calls > 0 && out.faults.restarts > 0, 'the JSON carries what the faults did');
  const bad = spawnSync(process.execPath, [cli, '--store-loss', '1'], { encoding: 'utf8' });
  t.equal(bad.status, 2, 'a lossy store restart needs --faults');
});
