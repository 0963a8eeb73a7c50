import fc from 'fast-check';
import t from 'tap';
import type { ShardPorts } from '../../shards/ports.js';
import { OpStatus, Reason } from '../../shards/reasons.js';
import { sfc32 } from '../../shards/rng.js';
import { Shard } from '../../shards/shard.js';
import { dayBounds } from '../../shards/time/zone.js';
import { DecideFlag, OpKind, OpWriter, ResultReader } from '../../shards/wire.js';
import { Ledger, type SentSpend } from '../../src/sim/ledger.js';
import { MemoryStore } from '../../src/store/memory.js';
import { config, harness, iso } from '../helpers/campaign.js';

/**
 * Property: whatever the interleaving of decisions, win notices (matched, late, duplicated,
 * unmatched), loss notices, expiries, flushes and day rollovers, the shard never lets settled +
 * reserved exceed the budget by more than the spend it could not refuse (notices whose reservation
 * had already gone), reserved always equals the sum of live reservations, and settled equals the
 * sum of applied events, in the actor and in the store. The auditor is the simulator's ledger.
 * Fixed seeds: a failure replays.
 */
type Op =
  | { kind: 'decide'; bid: number }
  | { kind: 'win'; pick: number; share: number }
  | { kind: 'resend'; pick: number }
  | { kind: 'unmatched'; amount: number }
  | { kind: 'release'; pick: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'flush' };

const budget = 1_000_000;
const ttl = 60_000;

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('decide' as const), bid: fc.integer({ min: 1, max: 300_000 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('win' as const), pick: fc.nat(), share: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('resend' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unmatched' as const), amount: fc.integer({ min: 1, max: 50_000 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 90_000 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
);

async function run(batches: Op[][], strategy: 'ASAP' | 'EVEN', startIso: string): Promise<void> {
  let now = iso(startIso);
  const ledger = new Ledger(0);
  const store = new MemoryStore();
  const reader = new ResultReader();
  const lateReader = new ResultReader();
  const sent = new Map<number, SentSpend>();
  const ports: ShardPorts = {
    clock: { now: () => now },
    random: sfc32(1),
    // Flushes happen when the test says so (the 'flush' op), at any point of the interleaving.
    timers: { after: () => () => {} },
    store,
    sendResults(results) {
      lateReader.reset(results);
      while (lateReader.next()) {
        const s = sent.get(lateReader.slot)!;
        sent.delete(lateReader.slot);
        ledger.answered(s, lateReader.code === OpStatus.APPLIED);
      }
    },
    emit: () => {},
    batchIdPrefix: 'prop',
  };
  const shard = new Shard(ports, { reservationTtlMs: ttl, flushIntervalMs: 2 });
  await shard.upsert(config({ strategy, dailyBudgetMicros: budget, velocityCapMultiple: 1_000 }));
  const c = shard.campaigns.get('c1')!;
  const requests: { id: string; bid: number }[] = [];
  const events: { eventId: string; requestId: string; amount: number }[] = [];
  const writer = new OpWriter();
  let slot = 0;
  let seq = 0;
  const decides = new Map<number, { id: string; bid: number }>();
  // The ledger follows the batch in op order, as the shard does; answers are compared after.
  const releases = new Map<number, { id: string; want: number }>();
  const send = (): void => {
    if (writer.count === 0) return;
    reader.reset(shard.handleOps(writer.take()));
    while (reader.next()) {
      if (reader.kind === OpKind.DECIDE && reader.code === Reason.OK) {
        const r = decides.get(reader.slot)!;
        if ((reader.flags & DecideFlag.RESERVED) === 0) throw new Error('allowed without a reservation');
        ledger.reserve(r.id, r.bid, now + ttl, now);
        requests.push(r);
      } else if (reader.kind === OpKind.RELEASE) {
        const { id, want } = releases.get(reader.slot)!;
        if (reader.code !== want) throw new Error(`release of ${id}: ${reader.code}, expected ${want}`);
      }
    }
    decides.clear();
    releases.clear();
  };
  for (const batch of batches) {
    for (const o of batch) {
      switch (o.kind) {
        case 'decide': {
          const r = { id: `r${seq++}`, bid: o.bid };
          decides.set(slot, r);
          writer.decide(slot++, 'c1', o.bid, r.id);
          break;
        }
        case 'win': {
          const r = requests[o.pick % Math.max(1, requests.length)];
          if (r === undefined) break;
          const e = { eventId: `e${seq++}`, requestId: r.id, amount: Math.floor(r.bid * o.share) };
          events.push(e);
          sent.set(slot, ledger.spend(e.eventId, e.requestId, e.amount, dayBounds('UTC', now).key));
          writer.spend(slot++, 'c1', e.amount, e.eventId, e.requestId);
          break;
        }
        case 'resend': {
          const e = events[o.pick % Math.max(1, events.length)];
          if (e === undefined) break;
          sent.set(slot, ledger.spend(e.eventId, e.requestId, e.amount, dayBounds('UTC', now).key));
          writer.spend(slot++, 'c1', e.amount, e.eventId, e.requestId);
          break;
        }
        case 'unmatched': {
          const e = { eventId: `e${seq++}`, requestId: '', amount: o.amount };
          events.push(e);
          sent.set(slot, ledger.spend(e.eventId, '', e.amount, dayBounds('UTC', now).key));
          writer.spend(slot++, 'c1', e.amount, e.eventId, '');
          break;
        }
        case 'release': {
          const r = requests[o.pick % Math.max(1, requests.length)];
          if (r === undefined) break;
          releases.set(slot, { id: r.id, want: ledger.release(r.id) ? OpStatus.RELEASED : OpStatus.NOT_FOUND });
          writer.release(slot++, 'c1', r.id);
          break;
        }
        case 'advance':
          // Time passes between router turns: what was written so far goes first.
          send();
          now += o.ms;
          shard.sweep();
          ledger.expire(now);
          break;
        case 'flush':
          send();
          await shard.drain();
          break;
      }
    }
    send();
    ledger.check(c, now);
    c.checkInvariants();
  }
  await shard.drain();
  ledger.checkFinal(c, store, now);
}

const batches = fc.array(fc.array(op, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 60 });

t.test('no interleaving of decide, spend, release, expiry and flush overspends an ASAP campaign', async (t) => {
  await fc.assert(fc.asyncProperty(batches, (b) => run(b, 'ASAP', '2025-06-04T12:00:00Z')), { seed: 20250604, numRuns: 300 });
  t.pass('300 interleavings audited after every batch');
});

t.test('no interleaving overspends across a rollover at local midnight', async (t) => {
  await fc.assert(fc.asyncProperty(batches, (b) => run(b, 'ASAP', '2025-06-04T23:58:00Z')), { seed: 7, numRuns: 200 });
  t.pass('200 interleavings audited across midnight');
});

t.test('no interleaving overspends a paced (EVEN) campaign either', async (t) => {
  await fc.assert(fc.asyncProperty(batches, (b) => run(b, 'EVEN', '2025-06-04T08:00:00Z')), { seed: 99, numRuns: 200 });
  t.pass('200 interleavings audited');
});

t.test('the auditor is not vacuous: it catches a campaign that forgets a reservation', async (t) => {
  const broken = async (): Promise<void> => {
    const ledger = new Ledger(5);
    ledger.reserve('r1', 100, 60_000, 0);
    const h = harness(config(), iso('2025-06-04T12:00:00Z'));
    ledger.check(h.campaign, iso('2025-06-04T12:00:00Z'));
  };
  await t.rejects(broken(), { code: 'PACER_ERR_AUDIT', message: /reservations do not balance.*|seed 5/ });
});
