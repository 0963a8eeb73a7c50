import type { Campaign } from '../../shards/campaign.js';
import { limits } from '../../shards/limits.js';
import type { DayCurve, DayShape } from '../../shards/pacing/day.js';
import type { Micros } from '../../shards/money.js';
import type { CounterStore, FlushBatch, FlushOutcome, ShardEvent, ShardPorts, Timers } from '../../shards/ports.js';
import { Reason } from '../../shards/reasons.js';
import { sfc32 } from '../../shards/rng.js';
import { Shard } from '../../shards/shard.js';
import { activeIntervals } from '../../shards/time/schedule.js';
import { addDays, type DayBounds, dayBounds, localToEpoch } from '../../shards/time/zone.js';
import { weekdays } from '../../shards/types.js';
import { OpKind, OpWriter, ResultReader } from '../../shards/wire.js';
import { parseCampaign } from '../model/campaign.js';
import { LeaseKeeper } from '../shard/lease-keeper.js';
import type { GrantRequest, LeaseAnswer, LeaseCalls, LeaseRequest } from '../store/leases.js';
import { MemoryStore } from '../store/memory.js';
import { settle } from './clock.js';
import { EventQueue } from './events.js';
import { AuditFailure } from './ledger.js';
import { MemoryLeaseStore } from './lease-store.js';
import { measure, type Measured } from './metrics.js';
import { clearingFraction, customDefaultWeights, noticeDelayMaxMs, type SimOptions, simDefaults } from './run.js';
import { daySlots, expectedRequests, poissonArrivals } from './traffic.js';

/**
 * The fleet simulator (`npm run simulate -- --instances N`): N production shards, one per
 * simulated pacer instance, each with the production lease keeper (src/shard/lease-keeper.ts) on
 * the simulated clock and timers, talking with simulated latency to MemoryLeaseStore (the lease
 * script's semantics in memory), all flushing to one memory counter store, so settled spend is
 * global. One campaign's traffic (the same arrivals for any N: their own sfc32 stream of the seed)
 * is split between the instances by `split`; win notices settle at the instance that reserved, or
 * with `elsewhereShare` at another one; loss notices go to the reserving instance. The auditor
 * checks after every step that the money committed across the fleet (the spend of every notice
 * delivered, each event once, plus every instance's live reservations and holds) stays within the
 * budget plus the late spend (notices after their reservation expired, which no pacer can refuse),
 * and that the store's settled spend plus the live leases never exceeds the budget.
 *
 * With one instance and `leases` false it is the single production pacer on the same traffic: the
 * reference the fleet's pacing error is compared with (test/sim/fleet.test.ts).
 */
export interface FleetOptions extends SimOptions {
  instances: number;
  /** Traffic shares of the instances (normalised); default equal. */
  split: number[] | null;
  /** Share of win notices that arrive at another instance than the one that reserved. */
  elsewhereShare: number;
  /** Round trip of a lease call (each way half of it). */
  leaseLatencyMs: number;
  /** Budget leases on (default: with more than one instance). */
  leases: boolean | null;
}

export const fleetDefaults = { instances: 1, split: null, elsewhereShare: 0, leaseLatencyMs: 2, leases: null } as const;

export interface FleetInstanceRow {
  instance: number;
  share: number;
  decisions: number;
  allowed: number;
  spentMicros: number;
  leaseGrants: number;
  leaseFailures: number;
  leaseGiveBacks: number;
  settledElsewhere: number;
  breakerTrips: number;
}

export interface FleetDayRow extends Measured {
  day: string;
  weekday: string;
  budgetMicros: number;
  spentMicros: number;
}

export interface FleetReport extends Measured {
  strategy: string;
  instances: number;
  leases: boolean;
  split: number[];
  elsewhereShare: number;
  leaseLatencyMs: number;
  seed: number;
  days: number;
  budgetMicros: number;
  spentMicros: number;
  decisions: number;
  allowed: number;
  wins: number;
  lateMicros: number;
  /** Largest (Σ spend delivered + Σ reserved and held) ÷ budget over the reported day. */
  maxCommittedRatio: number;
  /** Largest (settled + Σ live leases) ÷ budget, all days: the script's view, which counts spend settled but not yet reported twice. */
  maxLeasedRatio: number;
  /** Lease money not spent, in live leases, at the reported day's last step (÷ budget). */
  strandedAtEndRatio: number;
  /** Denials LEASE_EMPTY over the fleet on the reported day. */
  leaseEmptyDenials: number;
  auditedSteps: number;
  perInstance: FleetInstanceRow[];
  daily: FleetDayRow[];
}

/** The counter store of the fleet, counting calls in flight so the loop lets them finish. */
class CountingStore implements CounterStore {
  readonly kind = 'memory';
  inFlight = 0;
  constructor(private readonly target: MemoryStore) {}
  async apply(batch: FlushBatch): Promise<FlushOutcome> {
    this.inFlight++;
    try {
      return this.target.applySync(batch);
    } finally {
      this.inFlight--;
    }
  }
  load(campaignId: string, day: string, flightStartDay: string | null) {
    return this.target.load(campaignId, day, flightStartDay);
  }
  async close(): Promise<void> {}
}

function gaussian(u: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

export async function simulateFleet(options: Partial<FleetOptions> = {}): Promise<FleetReport> {
  const o: FleetOptions = { ...simDefaults, ...fleetDefaults, ...options } as FleetOptions;
  if (!Number.isSafeInteger(o.instances) || o.instances < 1 || o.instances > 64) throw new Error('instances must be 1 to 64');
  const useLeases = o.leases ?? o.instances > 1;
  const rawSplit = o.split ?? new Array<number>(o.instances).fill(1);
  if (rawSplit.length !== o.instances || !rawSplit.every((x) => Number.isFinite(x) && x >= 0) || rawSplit.reduce((a, b) => a + b, 0) <= 0) {
    throw new Error(`split needs ${o.instances} non-negative shares`);
  }
  const splitSum = rawSplit.reduce((a, b) => a + b, 0);
  const split = rawSplit.map((x) => x / splitSum);
  const campaignId = 'sim-campaign';
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(o.date);
  if (m === null) throw new Error('date must be YYYY-MM-DD');
  const reportDate = { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) };
  const days: DayBounds[] = [];
  for (let i = o.days - 1; i >= 0; i--) days.push(dayBounds(o.timezone, localToEpoch(o.timezone, addDays(reportDate, -i), 0)));
  const slots = days.map((d) => daySlots(o.traffic, o.trafficScale, o.timezone, d));
  const lastDay = days[days.length - 1]!;
  const meanPrice = o.bidMicros * ((clearingFraction.min + clearingFraction.max) / 2);
  const wm = o.window === null ? null : /^(\d{2}:\d{2})-(\d{2}:\d{2})$/.exec(o.window);
  if (o.window !== null && wm === null) throw new Error('window must be HH:MM-HH:MM');
  const schedule = wm === null ? null : [{ days: [...weekdays], start: wm[1]!, end: wm[2]! }];
  const active = activeIntervals(o.timezone, lastDay, schedule, null, null);
  const unthrottledMicros = Math.round(expectedRequests(slots[slots.length - 1]!, active) * o.winRate * meanPrice);
  const budget = o.dailyBudgetMicros ?? Math.max(1, Math.round(o.budgetFraction * unthrottledMicros));
  const config = parseCampaign(
    {
      id: campaignId,
      dailyBudgetMicros: budget,
      timezone: o.timezone,
      strategy: o.strategy,
      frontLoadedShare: o.frontLoadedShare,
      aheadPercent: o.aheadPercent,
      hourlyWeights: o.strategy === 'CUSTOM' ? (o.hourlyWeights ?? customDefaultWeights) : o.hourlyWeights,
      schedule,
      breaker: { enabled: o.breakerEnabled },
    },
    1,
  );

  // ---- the world ----------------------------------------------------------------------------------
  let now = days[0]!.startMs;
  const queue = new EventQueue();
  let dirty = false;
  const timers: Timers = {
    after(delayMs, fn) {
      const e = { kind: 'timer' as const, t: now + Math.max(0, Math.ceil(delayMs)), seq: queue.nextSeq(), fn, cancelled: false };
      queue.push(e);
      return () => {
        e.cancelled = true;
      };
    },
  };
  const fail = (message: string): never => {
    throw new AuditFailure(message, o.seed, now);
  };
  const memory = new MemoryStore();
  const leaseStore = new MemoryLeaseStore(() => now, { settledOf: (c, d) => memory.settledOf(c, d), reservationsOf: (c) => memory.reservationsOf(c) });
  let maxLeasedRatio = 0;
  const auditLeases = (day: string): void => {
    const held = memory.settledOf(campaignId, day) + leaseStore.leasedOf(campaignId, day);
    if (held / budget > maxLeasedRatio) maxLeasedRatio = held / budget;
    // Not an invariant: spend settled but not yet reported counts in both (the safe side).
  };
  /** A lease call over the network: half the latency there, the script, half back. */
  const half = o.leaseLatencyMs / 2;
  const overNetwork = <T>(call: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      timers.after(half, () => {
        const p = call();
        p.then((v) => timers.after(half, () => {
          dirty = true;
          resolve(v);
        }), (e: unknown) => timers.after(half, () => {
          dirty = true;
          reject(e instanceof Error ? e : new Error(String(e)));
        }));
      });
    });
  const network: LeaseCalls = {
    grant: (req: GrantRequest): Promise<LeaseAnswer> => overNetwork(async () => {
      const a = await leaseStore.grant(req);
      auditLeases(req.day);
      return a;
    }),
    giveBack: (req: LeaseRequest): Promise<LeaseAnswer> => overNetwork(() => leaseStore.giveBack(req)),
    missingReservations: (c: string, ids: readonly string[]) => overNetwork(() => leaseStore.missingReservations(c, ids)),
  };

  let failure: unknown = null;
  const breakerTrips = new Array<number>(o.instances).fill(0);
  const reportStart = lastDay.startMs;
  const inst: { shard: Shard; campaign: Campaign; keeper: LeaseKeeper | null; store: CountingStore }[] = [];
  for (let i = 0; i < o.instances; i++) {
    const store = new CountingStore(memory);
    const ports: ShardPorts = {
      clock: { now: () => now },
      random: i === 0 ? sfc32(o.seed) : sfc32(o.seed, i, 0x5eed, 0x2545f491),
      timers,
      store,
      sendResults: () => {},
      emit: (event: ShardEvent) => {
        if (event.type === 'breaker' && event.transition.atMs >= reportStart && (event.transition.reason === 'TRIP_FRACTION' || event.transition.reason === 'TRIP_VELOCITY')) breakerTrips[i]!++;
        if (event.type === 'fault' && failure === null) failure = new AuditFailure(`instance ${i} shard fault: ${event.message}`, o.seed, now);
      },
      batchIdPrefix: `sim:${o.seed}:i${i}`,
    };
    const shard = new Shard(ports, { reservationTtlMs: o.reservationTtlMs, flushIntervalMs: limits.flushIntervalMs, leases: useLeases });
    await shard.upsert(config);
    const campaign = shard.campaigns.get(campaignId);
    if (campaign === undefined) throw new Error('the shard did not create the campaign');
    const keeper = useLeases
      ? new LeaseKeeper(shard, network, ports.clock, timers, {
          holder: `sim-${o.seed}-i${i}:0`,
          reservationTtlMs: o.reservationTtlMs,
          spooling: () => false,
          onFault: (message) => {
            if (failure === null) failure = new AuditFailure(`instance ${i} lease keeper: ${message}`, o.seed, now);
          },
        })
      : null;
    keeper?.start();
    inst.push({ shard, campaign, keeper, store });
  }

  // ---- traffic: the same arrivals whatever the split (a stream of their own) -------------------
  const arrivals = sfc32(o.seed, 0x7a3f1c55, 0x1b873593, 0xcc9e2d51);
  const splitter = sfc32(o.seed, 0x51e7, 0x9e3779b9, 0x85ebca6b);
  const outcomes = sfc32(o.seed, 0x0c0e, 0xc2b2ae35, 0x27d4eb2f);
  const nextArrival = poissonArrivals(slots, lastDay.endMs, arrivals);
  const cumulative: number[] = [];
  split.reduce((a, x, i) => (cumulative[i] = a + x), 0);
  const pick = (): number => {
    const u = splitter();
    for (let i = 0; i < cumulative.length - 1; i++) if (u < cumulative[i]!) return i;
    return cumulative.length - 1;
  };
  const sigma = o.winDelayMs > 0 ? Math.log(noticeDelayMaxMs / Math.min(o.winDelayMs, noticeDelayMaxMs)) / 3.09 : 0;
  const noticeDelay = (): number =>
    o.winDelayMs <= 0 ? 0 : Math.min(noticeDelayMaxMs, Math.max(1, Math.round(o.winDelayMs * Math.exp(sigma * gaussian(outcomes)))));

  // ---- measurements -------------------------------------------------------------------------------
  const spentByDay = days.map((d) => new Float64Array(Math.ceil((d.endMs - d.startMs) / 60_000)));
  const spentByMinute = spentByDay[spentByDay.length - 1]!;
  /** Each day's curve and budget, as the first instance's campaign last planned them that day. */
  const plans = new Map<string, DayCurve>();
  let lastShape: DayShape | null = null;
  let lastBudget: Micros | null = null;
  const perInstance: FleetInstanceRow[] = split.map((share, i) => ({
    instance: i, share, decisions: 0, allowed: 0, spentMicros: 0, leaseGrants: 0, leaseFailures: 0, leaseGiveBacks: 0, settledElsewhere: 0, breakerTrips: 0,
  }));
  let decisions = 0;
  let allowed = 0;
  let wins = 0;
  let leaseEmpty = 0;
  let maxCommitted = 0;
  let steps = 0;
  /** Reservations by requestId: who holds it and until when (a notice after that is late spend). */
  const reservations = new Map<string, { instance: number; expiresAtMs: number; released: boolean }>();
  const seenEvents = new Set<string>();
  const delivered = new Map<string, number>();
  const late = new Map<string, number>();
  const dayIndexAt = (t: number): number => {
    for (let i = days.length - 1; i >= 0; i--) if (t >= days[i]!.startMs) return i;
    return 0;
  };

  const writers = inst.map(() => new OpWriter());
  const reader = new ResultReader();
  const batchIds: (string | null)[][] = inst.map(() => []);
  const batchBase = new Array<number>(o.instances).fill(0);
  let requestSeq = 0;
  let eventSeq = 0;
  let arrival = nextArrival(now);
  const endMs = lastDay.endMs;
  let strandedAtEnd = 0;

  for (;;) {
    const t = Math.min(Math.floor(arrival), queue.peekTime());
    if (t >= endMs) break;
    now = t;
    const di = dayIndexAt(t);
    const dayKey = days[di]!.key;
    const onReportDay = t >= reportStart;
    for (let i = 0; i < o.instances; i++) batchIds[i]!.length = 0;
    // Every instance gets its operations due now in one batch, as its router sends a turn's worth.
    const due: (() => void)[] = [];
    while (Math.floor(arrival) === t) {
      const i = pick();
      const requestId = `r${(requestSeq++).toString(36)}`;
      writers[i]!.decide(batchBase[i]! + batchIds[i]!.length, campaignId, o.bidMicros, requestId);
      batchIds[i]!.push(requestId);
      arrival = nextArrival(arrival);
      if (onReportDay) {
        decisions++;
        perInstance[i]!.decisions++;
      }
    }
    while (queue.peekTime() === t) {
      const e = queue.pop()!;
      if (e.kind === 'timer') {
        if (!e.cancelled) due.push(e.fn);
      } else if (e.kind === 'spend') {
        const r = reservations.get(e.requestId);
        const holder = r?.instance ?? 0;
        const i = (e as { instance?: number }).instance ?? holder;
        const w = writers[i]!;
        // A slot this instance's batch numbers from its own base.
        w.spend(batchBase[i]! + batchIds[i]!.length, campaignId, e.amount, e.eventId, e.requestId);
        batchIds[i]!.push(null);
        if (!seenEvents.has(e.eventId)) {
          seenEvents.add(e.eventId);
          const dk = days[di]!.key;
          delivered.set(dk, (delivered.get(dk) ?? 0) + e.amount);
          if (r === undefined || r.released || t >= r.expiresAtMs) late.set(dk, (late.get(dk) ?? 0) + e.amount);
          if (r !== undefined) r.released = true;
          spentByDay[di]![Math.floor((t - days[di]!.startMs) / 60_000)]! += e.amount;
          if (onReportDay) {
            wins++;
            perInstance[i]!.spentMicros += e.amount;
          }
        }
      } else if (e.kind === 'release') {
        const r = reservations.get(e.requestId);
        const i = r?.instance ?? 0;
        if (r !== undefined) r.released = true;
        writers[i]!.release(batchBase[i]! + batchIds[i]!.length, campaignId, e.requestId);
        batchIds[i]!.push(e.requestId);
      }
    }
    for (let i = 0; i < o.instances; i++) {
      const w = writers[i]!;
      if (w.count === 0) continue;
      const ids = batchIds[i]!;
      reader.reset(inst[i]!.shard.handleOps(w.take()));
      const base = batchBase[i]!;
      batchBase[i] = (base + ids.length) % 0x40000000;
      while (reader.next()) {
        if (reader.kind !== OpKind.DECIDE) continue;
        const id = ids[reader.slot - base];
        if (id === undefined || id === null) fail(`instance ${i}: a decide answer for slot ${reader.slot} that was no decide`);
        if (reader.code === Reason.LEASE_EMPTY && onReportDay) leaseEmpty++;
        if (reader.code !== Reason.OK) continue;
        if (onReportDay) {
          allowed++;
          perInstance[i]!.allowed++;
        }
        reservations.set(id!, { instance: i, expiresAtMs: t + o.reservationTtlMs, released: false });
        if (outcomes() < o.winRate) {
          const f = clearingFraction.min + (clearingFraction.max - clearingFraction.min) * outcomes();
          const price = Math.max(1, Math.floor(o.bidMicros * f));
          const eventId = `e${(eventSeq++).toString(36)}`;
          let at = i;
          if (o.instances > 1 && outcomes() < o.elsewhereShare) at = (i + 1 + Math.floor(outcomes() * (o.instances - 1))) % o.instances;
          const when = t + noticeDelay();
          queue.push({ kind: 'spend', t: when, seq: queue.nextSeq(), requestId: id!, eventId, amount: price, ...{ instance: at } });
          if (outcomes() < o.duplicateRate) queue.push({ kind: 'spend', t: when + noticeDelay(), seq: queue.nextSeq(), requestId: id!, eventId, amount: price, ...{ instance: at } });
        } else if (outcomes() < o.lossNoticeRate) {
          queue.push({ kind: 'release', t: t + noticeDelay(), seq: queue.nextSeq(), requestId: id! });
        }
      }
    }
    for (const fn of due) fn();
    if (due.length > 0 || dirty || inst.some((x) => x.store.inFlight > 0)) {
      dirty = false;
      await settle();
    }
    if (failure !== null) throw failure;
    // The shards sweep expired reservations every reservationSweepMs (src/shard/host.ts).
    if (t % limits.reservationSweepMs === 0 || due.length > 0) for (const x of inst) x.shard.sweep();
    for (const [id, r] of reservations) {
      if (r.expiresAtMs > t && !r.released) break;
      reservations.delete(id);
    }

    // ---- the audit ------------------------------------------------------------------------------
    let committed = delivered.get(dayKey) ?? 0;
    let stranded = 0;
    for (const x of inst) {
      const c = x.campaign;
      if (c.day.bounds.key === dayKey) committed += c.reserved + c.held;
      const l = c.lease;
      if (l !== null && l.expiresAtMs > t) stranded += Math.max(0, l.amountMicros - l.committed(c.reserved + c.held));
    }
    if (committed > budget + (late.get(dayKey) ?? 0)) fail(`committed ${committed} > budget ${budget} + late ${late.get(dayKey) ?? 0} across ${o.instances} instances`);
    if (onReportDay) {
      if (committed / budget > maxCommitted) maxCommitted = committed / budget;
      strandedAtEnd = stranded;
    }
    if (useLeases && ++steps % 64 === 0) auditLeases(dayKey);
    else if (!useLeases) steps++;
    const first = inst[0]!.campaign;
    if (first.day !== lastShape || first.budget !== lastBudget) {
      lastShape = first.day;
      lastBudget = first.budget;
      plans.set(lastShape.bounds.key, { curve: lastShape.curve, budgetMicros: first.budget });
    }
    if (steps % 4096 === 0) for (const x of inst) x.campaign.checkInvariants();
  }
  now = Math.max(now, endMs - 1);
  // Graceful shutdown: the shards flush, the keepers give their leases back; the simulated round
  // trips run on the queue meanwhile.
  let done = false;
  const stopping = (async () => {
    for (const x of inst) await x.shard.drain();
    for (const x of inst) await x.keeper?.stop();
    done = true;
  })();
  for (let k = 0; !done && k < 100_000; k++) {
    const e = queue.pop();
    if (e !== undefined) {
      now = Math.max(now, e.t);
      if (e.kind === 'timer' && !e.cancelled) e.fn();
    }
    await settle();
  }
  await stopping;
  if (failure !== null) throw failure;
  const settledInStore = memory.settledOf(campaignId, lastDay.key);
  const sent = delivered.get(lastDay.key) ?? 0;
  if (settledInStore !== sent) fail(`the store settled ${settledInStore}, the notices delivered ${sent}`);

  const measured = measure({ curve: inst[0]!.campaign.day.curve, budget, dayStartMs: reportStart, dayEndMs: lastDay.endMs, spentByMinute });
  const daily: FleetDayRow[] = [];
  days.forEach((d, i) => {
    const plan = plans.get(d.key);
    if (plan === undefined) return;
    const mm = measure({ curve: plan.curve, budget: plan.budgetMicros, dayStartMs: d.startMs, dayEndMs: d.endMs, spentByMinute: spentByDay[i]! });
    daily.push({ day: d.key, weekday: weekdays[d.weekday]!, budgetMicros: plan.budgetMicros, spentMicros: spentByDay[i]!.reduce((a, x) => a + x, 0), ...mm });
  });
  inst.forEach((x, i) => {
    const row = perInstance[i]!;
    row.leaseGrants = x.shard.totals.leaseGrants;
    row.leaseFailures = x.shard.totals.leaseFailures;
    row.leaseGiveBacks = x.shard.totals.leaseGiveBacks;
    row.settledElsewhere = x.shard.totals.leaseSettledElsewhere;
    row.breakerTrips = breakerTrips[i]!;
  });
  return {
    strategy: o.strategy,
    instances: o.instances,
    leases: useLeases,
    split,
    elsewhereShare: o.elsewhereShare,
    leaseLatencyMs: o.leaseLatencyMs,
    seed: o.seed,
    days: o.days,
    budgetMicros: budget,
    spentMicros: sent,
    ...measured,
    decisions,
    allowed,
    wins,
    lateMicros: late.get(lastDay.key) ?? 0,
    maxCommittedRatio: maxCommitted,
    maxLeasedRatio,
    strandedAtEndRatio: strandedAtEnd / budget,
    leaseEmptyDenials: leaseEmpty,
    auditedSteps: steps,
    perInstance,
    daily,
  };
}
