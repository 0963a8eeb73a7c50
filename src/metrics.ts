import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  AggregatorRegistry,
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';
import { limits } from '../shards/limits.js';
import { reasonNames } from '../shards/reasons.js';
import type { Shard } from '../shards/shard.js';

/**
 * Prometheus metrics from every thread. Each thread keeps its own prom-client registry; the admin
 * thread asks the router and every shard for `getMetricsAsJSON()` when scraped and merges them
 * with `AggregatorRegistry.aggregate()` (built for the cluster module, and just as right for
 * worker threads). Series that differ by label (`shard`, `thread`) stay apart; the rest add up.
 *
 * Hot-path counting is plain field increments (ShardTotals, RouterMetrics' arrays): prom-client
 * objects are filled from them at scrape time through `collect()`, so a decision pays no label
 * lookup. Only the decision-latency histogram is observed per request.
 *
 * prom-client's default collectors run in every thread (`defaultCollectors`): `nodejs_*` (heap,
 * event loop, GC, handles) describe one V8 isolate and carry a `thread` label; `process_*` (CPU,
 * resident memory, file descriptors, start time) describe the whole process and come from the
 * main thread alone, without a label.
 *
 * With one router thread it runs on the main thread (`thread="router"`). With PACER_ROUTERS > 1
 * every router thread has its own RouterMetrics (`thread="router-0"`, …) without the process-wide
 * metrics, and main keeps one (`thread="main"`) with them: counters without a thread label (requests,
 * errors, the decision histogram, connections, in-flight operations) add up over the routers.
 */
export type JsonMetrics = MetricObjectWithValues<MetricValue<string>>[];

/** Event-loop utilisation of this thread since the previous scrape. */
function eluGauge(registry: Registry, thread: string): void {
  let last = performance.eventLoopUtilization();
  new Gauge({
    name: 'pacer_event_loop_utilization_ratio',
    help: 'Share of time the thread was busy since the previous scrape (0-1).',
    labelNames: ['thread'],
    registers: [registry],
    collect() {
      const now = performance.eventLoopUtilization();
      this.set({ thread }, performance.eventLoopUtilization(now, last).utilization);
      last = now;
    },
  });
}

/**
 * Gauges of prom-client's defaults whose names end in `_total`, which `promtool check metrics`
 * rejects for a non-counter. Each is the sum of a labelled gauge that stays
 * (`sum without (type) (nodejs_active_handles)` gives the same number), which is why prom-client's
 * maintainers proposed deleting them (prometheus/client_js#283); until they do, they are removed
 * with `registry.removeSingleMetric()`, the removal prom-client documents.
 */
export const rejectedDefaultMetrics = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * prom-client's default collectors for this thread. `withProcess` only in the router thread: the
 * process-wide figures (`process_*`, and `nodejs_version_info`) would otherwise be reported once
 * per thread with the same values.
 */
function defaultCollectors(registry: Registry, thread: string, withProcess: boolean): void {
  collectDefaultMetrics({ register: registry, labels: { thread } });
  for (const name of rejectedDefaultMetrics) registry.removeSingleMetric(name);
  if (withProcess) return;
  for (const m of registry.getMetricsAsArray()) {
    if (m.name.startsWith('process_') || m.name === 'nodejs_version_info') registry.removeSingleMetric(m.name);
  }
}

export const routes = ['decide', 'decide_batch', 'spend', 'spend_batch', 'release', 'stream'] as const;
export type Route = (typeof routes)[number];
/** A power of two. */
const decisionSampleEvery = 8;
const routeIndex = Object.fromEntries(routes.map((r, i) => [r, i])) as Record<Route, number>;

export interface RouterMetricsOptions {
  /** The `thread` label: `router` (one router, on main), `router-N`, or `main` (main beside several routers). */
  thread: string;
  /** Whether this registry reports the process-wide metrics (process_*, ready, assertion exits): main's only. */
  withProcess: boolean;
}

/** A router thread's metrics (on the main thread with one router). */
export class RouterMetrics {
  readonly registry = new Registry();
  private readonly requests = new Float64Array(routes.length);
  private readonly errors = new Map<string, number>();
  /** Unexpected exceptions caught by a handler, by route (see internal()). */
  private readonly internals = new Map<string, number>();
  readonly decisionSeconds: Histogram;
  /** Spend receipt to its acknowledgement written (after the store confirmed it); see spendAcked. */
  readonly spendAckSeconds: Histogram;
  wsConnections = 0;
  /** Whether /readyz answers ready (set by main once the process state exists). */
  ready: () => boolean = () => false;
  private decisionTick = 0;

  /** Threads that stopped on their own, by thread, kept across restarts (see assertionExit). */
  private readonly assertionExits: Record<string, number>;

  constructor(
    inFlight: () => number,
    private readonly dataDir: string | null = null,
    options: RouterMetricsOptions = { thread: 'router', withProcess: true },
  ) {
    const r = this.registry;
    defaultCollectors(r, options.thread, options.withProcess);
    eluGauge(r, options.thread);
    this.assertionExits = readExits(dataDir);
    if (options.withProcess) this.processMetrics();
    [this.decisionSeconds, this.spendAckSeconds] = this.hotPathMetrics(options.thread, inFlight);
  }

  /** Metrics of the whole process, reported once (main thread). */
  private processMetrics(): void {
    const r = this.registry;
    const exits = this.assertionExits;
    const self = this;
    new Counter({
      name: 'pacer_assertion_exits_total',
      help: 'Threads that stopped on their own (a broken invariant, a crash, an admin failure), after which the process exits 70 (71 for an uncaught exception) to be restarted; kept in the data directory, so it counts across restarts.',
      labelNames: ['thread'],
      registers: [r],
      collect() {
        this.reset();
        // Both series exist from the start: increase() sees the first exit as a step from 0.
        this.inc({ thread: 'shard' }, 0);
        this.inc({ thread: 'admin' }, 0);
        for (const [thread, n] of Object.entries(exits)) this.inc({ thread }, n);
      },
    });
    new Gauge({
      name: 'pacer_ready',
      help: '1 while /readyz answers ready or degraded (every shard and the campaign configuration loaded, not shutting down).',
      registers: [r],
      collect() {
        this.set(self.ready() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'pacer_process_resident_memory_bytes',
      help: 'Resident memory of the whole process (all threads).',
      registers: [r],
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
  }

  /** What one router thread counts (zeros in main's registry beside several routers). */
  private hotPathMetrics(thread: string, inFlight: () => number): [decision: Histogram, spendAck: Histogram] {
    const r = this.registry;
    const requests = this.requests;
    new Counter({
      name: 'pacer_http_requests_total',
      help: 'Hot-path requests received, by route (WebSocket frames count under stream).',
      labelNames: ['route'],
      registers: [r],
      collect() {
        this.reset();
        routes.forEach((route, i) => this.inc({ route }, requests[i]!));
      },
    });
    if (thread !== 'main') {
      // How the kernel spread the work over the router threads (they share the port: a skew here
      // is SO_REUSEPORT's hash of the connections, not a choice of ours).
      new Counter({
        name: 'pacer_router_requests_total',
        help: 'Hot-path requests (and stream frames) received by each router thread.',
        labelNames: ['thread'],
        registers: [r],
        collect() {
          this.reset();
          let n = 0;
          for (const x of requests) n += x;
          this.inc({ thread }, n);
        },
      });
    }
    const errors = this.errors;
    new Counter({
      name: 'pacer_http_errors_total',
      help: 'Hot-path requests answered with an error, by route and error code.',
      labelNames: ['route', 'code'],
      registers: [r],
      collect() {
        this.reset();
        for (const [key, n] of errors) {
          const [route, code] = key.split(' ') as [string, string];
          this.inc({ route, code }, n);
        }
      },
    });
    internalErrorsCounter(r, thread, this.internals);
    const decisionSeconds = new Histogram({
      name: 'pacer_decision_duration_seconds',
      help: 'Time from a decide request read by the router to its answer written, server side; sampled, one request in 8.',
      buckets: [0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
      registers: [r],
    });
    // Every acknowledgement is observed, not a sample: spend events (win notices) arrive at a
    // fraction of the decision rate, and one observation (about 300 ns) per answer is noise next
    // to the store round trip each of them waited for.
    const spendAckSeconds = new Histogram({
      name: 'pacer_spend_ack_seconds',
      help: 'Time from a spend received by the router to its acknowledgement written, after the counter store (or the spool) confirmed it; one observation per answer that acknowledges spend (an HTTP response, a stream answer frame).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [r],
    });
    const self = this;
    new Gauge({
      name: 'pacer_ws_connections',
      help: 'Open WebSocket stream connections.',
      registers: [r],
      collect() {
        this.set(self.wsConnections);
      },
    });
    new Gauge({
      name: 'pacer_router_inflight_operations',
      help: 'Operations dispatched to shards and not yet answered.',
      registers: [r],
      collect() {
        this.set(inFlight());
      },
    });
    return [decisionSeconds, spendAckSeconds];
  }

  request(route: Route): void {
    this.requests[routeIndex[route]]!++;
  }

  /**
   * Whether to time this decide request: one in decisionSampleEvery. Observing costs about 300 ns
   * (two clock reads and the histogram); a sample keeps the quantiles and costs an eighth of it.
   */
  sampleDecision(): boolean {
    return (++this.decisionTick & (decisionSampleEvery - 1)) === 0;
  }

  /** Observes one answer acknowledging spend, for a request read at `startedMs` (performance.now()). */
  spendAcked(startedMs: number): void {
    this.spendAckSeconds.observe((performance.now() - startedMs) / 1000);
  }

  /** Counts an unexpected exception caught on `route` (a hot-path route, `stream`, `uncaught`, …). */
  internal(route: string): void {
    this.internals.set(route, (this.internals.get(route) ?? 0) + 1);
  }

  error(route: Route, code: string): void {
    const key = `${route} ${code}`;
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }

  /**
   * Counts a thread that stopped on its own. The process exits right after, so the
   * count is written to the data directory at once (synchronously) and read back by the next
   * start: Prometheus then sees the counter step up across the restart instead of a reset.
   */
  assertionExit(thread: 'shard' | 'admin' | 'router' | 'main'): void {
    this.assertionExits[thread] = (this.assertionExits[thread] ?? 0) + 1;
    if (this.dataDir === null) return;
    try {
      const file = join(this.dataDir, exitsFile);
      writeFileSync(`${file}.tmp`, JSON.stringify(this.assertionExits));
      renameSync(`${file}.tmp`, file);
    } catch {
      // A full or read-only disk must not stop the exit that follows; the count is then lost.
    }
  }
}

const exitsFile = 'assertion-exits.json';

function readExits(dataDir: string | null): Record<string, number> {
  if (dataDir === null) return {};
  try {
    const parsed = JSON.parse(readFileSync(join(dataDir, exitsFile), 'utf8')) as unknown;
    const out: Record<string, number> = {};
    if (parsed !== null && typeof parsed === 'object') {
      for (const [k, v] of Object.entries(parsed)) if (/^[a-z]+$/.test(k) && Number.isSafeInteger(v) && (v as number) >= 0) out[k] = v as number;
    }
    return out;
  } catch {
    return {};
  }
}

/** Σ live lease amounts of a shard's campaigns (held), or Σ of the parts not committed. */
function leaseMoney(shard: Shard, held: boolean): number {
  let sum = 0;
  const now = Date.now();
  for (const c of shard.campaigns.values()) {
    const l = c.lease;
    if (l === null || l.expiresAtMs <= now) continue;
    sum += held ? l.amountMicros : Math.max(0, l.amountMicros - l.committed(c.reserved + c.held));
  }
  return sum;
}

/** A shard's metrics, read from its totals and state at scrape time. */
export function shardRegistry(
  index: number,
  shard: Shard,
  isDegraded: () => boolean,
  spoolBytes: () => number = () => 0,
): { registry: Registry; flushSeconds: Histogram } {
  const r = new Registry();
  const label = { shard: String(index) };
  defaultCollectors(r, `shard-${index}`, false);
  eluGauge(r, `shard-${index}`);
  const t = shard.totals;
  const counter = (name: string, help: string, read: () => number): void => {
    new Counter({
      name,
      help,
      labelNames: ['shard'],
      registers: [r],
      collect() {
        this.reset();
        this.inc(label, read());
      },
    });
  };
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['shard'],
      registers: [r],
      collect() {
        this.set(label, read());
      },
    });
  };
  new Counter({
    name: 'pacer_decisions_total',
    help: 'Decisions by reason (OK is an allow).',
    labelNames: ['shard', 'reason'],
    registers: [r],
    collect() {
      this.reset();
      reasonNames.forEach((reason, i) => this.inc({ ...label, reason }, t.decisions[i]!));
    },
  });
  new Counter({
    name: 'pacer_shadow_decisions_total',
    help: 'Decisions of campaigns with a shadow strategy or in mode SHADOW, by the reason the shadow would have answered (OK: it would have allowed); never enforced.',
    labelNames: ['shard', 'would_reason'],
    registers: [r],
    collect() {
      this.reset();
      reasonNames.forEach((reason, i) => {
        if (t.shadowDecisions[i]! > 0) this.inc({ ...label, would_reason: reason }, t.shadowDecisions[i]!);
      });
    },
  });
  new Counter({
    name: 'pacer_spend_events_total',
    help: 'Spend events by outcome: applied, duplicate, failed (store unavailable), overloaded.',
    labelNames: ['shard', 'outcome'],
    registers: [r],
    collect() {
      this.reset();
      this.inc({ ...label, outcome: 'applied' }, t.spendApplied);
      this.inc({ ...label, outcome: 'duplicate' }, t.spendDuplicate);
      this.inc({ ...label, outcome: 'failed' }, t.spendFailed);
      this.inc({ ...label, outcome: 'overloaded' }, t.spendOverloaded);
      this.inc({ ...label, outcome: 'late_duplicate' }, t.spendLateDuplicates);
      this.inc({ ...label, outcome: 'refused' }, t.spendRefused);
    },
  });
  counter('pacer_not_ready_total', "Operations answered NOT_READY: their campaign's counters were not loaded yet.", () => t.notReady);
  counter(
    'pacer_counters_out_of_range_total',
    'Campaigns loaded with stored counters outside the money bounds (kept paused, COUNTERS_OUT_OF_RANGE).',
    () => t.countersOutOfRange,
  );
  gauge('pacer_live_reservations', 'Live reservations of the shard (limit PACER_RESERVATIONS_PER_SHARD_MAX).', () => shard.reservationCount);
  counter('pacer_settled_micros_total', 'Money settled by applied spend events, in micros.', () => t.settledMicros);
  counter('pacer_reverted_micros_total', 'Money taken back for spooled events found duplicates at replay, in micros.', () => t.revertedMicros);
  counter('pacer_releases_total', 'Reservations released by loss notices.', () => t.releases);
  counter('pacer_lease_grants_total', 'Budget lease grants and renewals answered by Redis (PACER_LEASES).', () => t.leaseGrants);
  counter('pacer_lease_failures_total', 'Budget lease calls that failed or timed out (the lease runs to its expiry).', () => t.leaseFailures);
  counter('pacer_lease_give_backs_total', 'Budget leases given back (idle campaign, shutdown).', () => t.leaseGiveBacks);
  counter('pacer_lease_settled_elsewhere_total', "Reservations settled by a spend at another instance, found at a renewal.", () => t.leaseSettledElsewhere);
  gauge('pacer_leased_micros', 'Money this shard holds in live budget leases, in micros.', () => leaseMoney(shard, true));
  gauge('pacer_lease_unused_micros', 'Money in live leases not committed to a bid or spend here (stranded unless used), in micros.', () => leaseMoney(shard, false));
  counter('pacer_expired_reservations_total', 'Reservations that expired without a win or loss notice.', () => t.expiredReservations);
  new Counter({
    name: 'pacer_breaker_transitions_total',
    help: 'Budget breaker transitions by target state and reason.',
    labelNames: ['shard', 'to', 'reason'],
    registers: [r],
    collect() {
      this.reset();
      for (const [key, n] of t.breakerTransitions) {
        const [to, reason] = key.split(' ') as [string, string];
        this.inc({ ...label, to, reason }, n);
      }
    },
  });
  gauge('pacer_campaigns', 'Campaigns the shard owns.', () => shard.campaigns.size);
  gauge('pacer_pending_spend_events', 'Spend events applied in memory and not yet confirmed by the store.', () => shard.flusher.pendingEvents);
  gauge('pacer_store_degraded', '1 while the shard acknowledges spend from its spool (store unavailable).', () => (isDegraded() ? 1 : 0));
  const scan = new CampaignScan(shard);
  new Gauge({
    name: 'pacer_reserved_micros',
    help: 'Money reserved for bids in flight, in micros, summed over the shard\'s campaigns.',
    labelNames: ['shard'],
    registers: [r],
    async collect() {
      this.set(label, (await scan.read()).reserved);
    },
  });
  new Gauge({
    name: 'pacer_breakers_open',
    help: 'Campaigns whose budget breaker is not CLOSED, by state.',
    labelNames: ['shard', 'state'],
    registers: [r],
    async collect() {
      const counts = (await scan.read()).breakers;
      for (const [state, n] of Object.entries(counts)) this.set({ ...label, state }, n);
    },
  });
  gauge('pacer_spool_bytes', 'Bytes in the shard\'s spool file: spend acknowledged while the store was unavailable and not yet replayed.', spoolBytes);
  pacingQuality(r, label, scan);
  const flushSeconds = new Histogram({
    name: 'pacer_flush_duration_seconds',
    help: 'Time for a shard flush batch to be applied by the counter store.',
    labelNames: ['shard'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [r],
  });
  return { registry: r, flushSeconds };
}

/** Upper bounds of the pacing-index buckets: ±10%, ±25%, ±50% around the plan, and far beyond. */
export const pacingIndexBuckets = [0.25, 0.5, 0.75, 0.9, 1, 1.1, 1.25, 1.5, 2, 4];

interface ScanResult {
  atMs: number;
  reserved: number;
  breakers: { OPEN: number; HALF_OPEN: number; EXHAUSTED: number };
  /** Cumulative counts per pacingIndexBuckets entry, then +Inf. */
  byIndex: number[];
  exhaustedEarly: number;
  openPastCooldown: number;
}

/**
 * One pass over a shard's campaigns serves every per-campaign gauge of a scrape (reserved money,
 * breaker states, pacing quality). It walks the campaigns in slices of metricsScanCampaignsMax,
 * one per event-loop turn, so the shard's decisions wait for one slice at most, not for a walk of
 * a million campaigns; a pass younger than metricsSnapshotMaxAgeMs is reused. The counts are then
 * not one instant's (a campaign may change between slices): they are for watching, not for money.
 * Read-only: nothing here moves a campaign's state (a breaker due to leave OPEN is taken as having
 * left it, as its next decision will date it).
 */
class CampaignScan {
  private last: ScanResult | null = null;
  private running: Promise<ScanResult> | null = null;

  constructor(private readonly shard: Shard) {}

  read(): Promise<ScanResult> {
    if (this.running !== null) return this.running;
    if (this.last !== null && Date.now() - this.last.atMs <= limits.metricsSnapshotMaxAgeMs) return Promise.resolve(this.last);
    this.running = this.scan().finally(() => (this.running = null));
    return this.running;
  }

  private async scan(): Promise<ScanResult> {
    const now = Date.now();
    const out: ScanResult = {
      atMs: now,
      reserved: 0,
      breakers: { OPEN: 0, HALF_OPEN: 0, EXHAUSTED: 0 },
      byIndex: new Array<number>(pacingIndexBuckets.length + 1).fill(0),
      exhaustedEarly: 0,
      openPastCooldown: 0,
    };
    let inSlice = 0;
    for (const c of this.shard.campaigns.values()) {
      count(out, c, now);
      if (++inSlice === limits.metricsScanCampaignsMax) {
        inSlice = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    for (let i = 1; i < out.byIndex.length; i++) out.byIndex[i]! += out.byIndex[i - 1]!;
    this.last = out;
    return out;
  }
}

type ScannedCampaign = ReturnType<Shard['campaigns']['values']> extends Iterable<infer C> ? C : never;

function count(out: ScanResult, c: ScannedCampaign, now: number): void {
  out.reserved += c.reserved;
  const state = c.breaker.state;
  if (state !== 'CLOSED') out.breakers[state]++;
  // A campaign not visited since its day ended still holds yesterday's figures: leave it out.
  if (now >= c.day.bounds.endMs) return;
  if (state === 'EXHAUSTED') {
    if (c.day.curve.fraction(now) < limits.exhaustedEarlyPlanShareMax) out.exhaustedEarly++;
    return;
  }
  const cooldown = c.config.breaker.cooldownMs;
  if (state === 'OPEN' && now < (c.breaker.sinceMs ?? now) + cooldown && now - leftClosedAtMs(c.breaker.events) > cooldown) {
    out.openPastCooldown++;
  }
  // ASAP plans the whole budget at once: its index only says how much traffic there was.
  if (c.inactive !== 0 || c.planMicros <= 0 || c.config.strategy === 'ASAP') return;
  let i = 0;
  while (i < pacingIndexBuckets.length && !(c.pacingIndex <= pacingIndexBuckets[i]!)) i++;
  out.byIndex[i]!++;
}

/**
 * Pacing quality over a shard's campaigns, with a fixed number of series whatever the number of
 * campaigns: the distribution of the pacing index, the campaigns that ran out of budget early, and
 * the breakers that keep a campaign paused past its cooldown, all from one CampaignScan.
 *
 * The distribution is a gauge with an `index_le` label, not a histogram: a histogram's buckets are
 * counters (rate() over them must make sense) and these counts go down as well as up, and
 * `promtool check metrics` rejects an `le` label on a gauge. PromQL's label_replace() renames it
 * for histogram_quantile().
 */
function pacingQuality(r: Registry, label: { shard: string }, scan: CampaignScan): void {
  new Gauge({
    name: 'pacer_campaigns_by_pacing_index',
    help: 'Active campaigns (not ASAP, not exhausted) whose pacing index (committed spend / plan so far, as of their last decision) is at most index_le; cumulative like histogram buckets (label_replace index_le to le for histogram_quantile).',
    labelNames: ['shard', 'index_le'],
    registers: [r],
    async collect() {
      const s = await scan.read();
      pacingIndexBuckets.forEach((le, i) => this.set({ ...label, index_le: String(le) }, s.byIndex[i]!));
      this.set({ ...label, index_le: '+Inf' }, s.byIndex[pacingIndexBuckets.length]!);
    },
  });
  new Gauge({
    name: 'pacer_campaigns_exhausted_early',
    help: `Campaigns whose budget ran out today while their plan had not yet reached ${limits.exhaustedEarlyPlanShareMax * 100}% of it.`,
    labelNames: ['shard'],
    registers: [r],
    async collect() {
      this.set(label, (await scan.read()).exhaustedEarly);
    },
  });
  new Gauge({
    name: 'pacer_breakers_open_past_cooldown',
    help: 'Campaigns whose breaker is OPEN and has not been CLOSED for longer than its cooldown (it tripped again from HALF_OPEN).',
    labelNames: ['shard'],
    registers: [r],
    async collect() {
      this.set(label, (await scan.read()).openPastCooldown);
    },
  });
}

/** When the breaker last left CLOSED, from its kept events (the oldest kept one if none says). */
function leftClosedAtMs(events: readonly { at: string; from: string }[]): number {
  for (let i = events.length - 1; i >= 0; i--) if (events[i]!.from === 'CLOSED') return Date.parse(events[i]!.at);
  return events.length > 0 ? Date.parse(events[0]!.at) : Infinity;
}

/** The admin thread's own metrics. */
/** pacer_internal_errors_total of one thread, read from its count by route at each scrape. */
function internalErrorsCounter(r: Registry, thread: string, byRoute: ReadonlyMap<string, number>): void {
  new Counter({
    name: 'pacer_internal_errors_total',
    help: 'Unexpected exceptions a handler caught and answered 500 INTERNAL (or a stream error result), by thread and route.',
    labelNames: ['thread', 'route'],
    registers: [r],
    collect() {
      this.reset();
      for (const [route, n] of byRoute) this.inc({ thread, route }, n);
    },
  });
}

/** Unexpected exceptions the admin API answered 500 INTERNAL, by route pattern (admin thread only). */
export const adminInternalErrors = new Map<string, number>();

export function adminRegistry(campaigns: () => number, databaseUp: () => boolean): Registry {
  const r = new Registry();
  defaultCollectors(r, 'admin', false);
  eluGauge(r, 'admin');
  internalErrorsCounter(r, 'admin', adminInternalErrors);
  new Gauge({
    name: 'pacer_configured_campaigns',
    help: 'Campaigns in the configuration catalogue.',
    registers: [r],
    collect() {
      this.set(campaigns());
    },
  });
  new Gauge({
    name: 'pacer_config_database_up',
    help: '1 while the configuration database answers.',
    registers: [r],
    collect() {
      this.set(databaseUp() ? 1 : 0);
    },
  });
  return r;
}

/**
 * Merges the threads' metrics into Prometheus text. The process-wide `process_*` metrics come from
 * the router thread alone: they lose its `thread` label, and prom-client's `omit` aggregator (set
 * on process_start_time_seconds for the cluster module, where every worker is its own process)
 * becomes `first`, or the start time would vanish from the merge.
 */
export async function exposition(parts: JsonMetrics[]): Promise<string> {
  for (const part of parts) {
    for (const m of part) {
      if (!m.name.startsWith('process_')) continue;
      m.aggregator = 'first';
      // A fresh object: prom-client shares one labels object between the default metrics, and
      // the structured clone that carried them here kept it shared.
      for (const v of m.values) {
        const { thread: _thread, ...rest } = v.labels as Record<string, string | number>;
        v.labels = rest;
      }
    }
  }
  return AggregatorRegistry.aggregate(parts as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
}
