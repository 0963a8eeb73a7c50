import t from 'tap';
import type { ShardPorts } from '../../shards/ports.js';
import { OpStatus } from '../../shards/reasons.js';
import { sfc32 } from '../../shards/rng.js';
import { Shard } from '../../shards/shard.js';
import { OpWriter, ResultReader } from '../../shards/wire.js';
import { MemoryStore } from '../../src/store/memory.js';
import { config } from '../helpers/campaign.js';

/**
 * Several routers share every shard (PACER_ROUTERS): each numbers its operations with slots of its
 * own, so a shard must send every late result (spend acknowledgements after their flush) back to the
 * router the operation came from, and a resend that arrives through another router while the first
 * copy is on its way must be answered there.
 */
interface Late {
  origin: number;
  slot: number;
  code: number;
}

function rig(): { shard: Shard; late: Late[]; flushed(): Promise<void> } {
  const late: Late[] = [];
  const reader = new ResultReader();
  const ports: ShardPorts = {
    clock: { now: () => Date.parse('2026-03-10T12:00:00Z') },
    random: sfc32(7),
    timers: {
      after(delayMs, fn) {
        const h = setTimeout(fn, delayMs);
        return () => clearTimeout(h);
      },
    },
    store: new MemoryStore(),
    sendResults(results, origin) {
      reader.reset(results);
      while (reader.next()) late.push({ origin, slot: reader.slot, code: reader.code });
    },
    emit: () => {},
    batchIdPrefix: 'origins',
  };
  const shard = new Shard(ports, { reservationTtlMs: 60_000, flushIntervalMs: 0 });
  return { shard, late, flushed: () => new Promise((r) => setTimeout(r, 20)) };
}

function spend(slot: number, campaignId: string, eventId: string, amount: number): ArrayBuffer {
  const w = new OpWriter();
  w.spend(slot, campaignId, amount, eventId, '');
  return w.take();
}

t.test('a spend is acknowledged to the router it came from, and a resend through another router is answered there', async (t) => {
  const { shard, late, flushed } = rig();
  await shard.upsert(config({ id: 'c', dailyBudgetMicros: 1_000_000, strategy: 'ASAP' }));
  // The same slot number from two routers: only the origin tells them apart.
  t.equal(new ResultReader().reset(shard.handleOps(spend(5, 'c', 'imp-1', 100), 1)).next(), false, 'answered after its flush');
  t.equal(new ResultReader().reset(shard.handleOps(spend(5, 'c', 'imp-1', 100), 0)).next(), false, 'the resend waits for the first copy');
  t.equal(new ResultReader().reset(shard.handleOps(spend(9, 'c', 'imp-2', 40), 2)).next(), false);
  await flushed();
  t.same(
    late.sort((a, b) => a.origin - b.origin),
    [
      { origin: 0, slot: 5, code: OpStatus.DUPLICATE },
      { origin: 1, slot: 5, code: OpStatus.APPLIED },
      { origin: 2, slot: 9, code: OpStatus.APPLIED },
    ],
  );
  t.equal(shard.status('c')!.settledMicros, 140, 'the resent event counted once');

  // A resend after the flush is answered from the shard's memory of event IDs, to its own router.
  late.length = 0;
  shard.handleOps(spend(77, 'c', 'imp-1', 100), 3);
  t.same(late, [{ origin: 3, slot: 77, code: OpStatus.DUPLICATE }]);
  t.equal(shard.status('c')!.settledMicros, 140);
});
