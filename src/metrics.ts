import { performance } from 'node:perf_hooks';
import { AggregatorRegistry, Counter, Gauge, Histogram, type MetricObjectWithValues, type MetricValue, Registry } from 'prom-client';
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
 * lookup. Only the decision-latency histogram is observed per request. prom-client's default
 * Node.js metrics are left out: `promtool check metrics` rejects some of their names.
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

export const routes = ['decide', 'decide_batch', 'spend', 'spend_batch', 'release', 'stream'] as const;
export type Route = (typeof routes)[number];
/** A power of two. */
const decisionSampleEvery = 8;
const routeIndex = Object.fromEntries(routes.map((r, i) => [r, i])) as Record<Route, number>;

/** The router's metrics (main thread). */
export class RouterMetrics {
  readonly registry = new Registry();
  private readonly requests = new Float64Array(routes.length);
  private readonly errors = new Map<string, number>();
  /** Unexpected exceptions caught by a handler, by route (see internal()). */
  private readonly internals = new Map<string, number>();
  readonly decisionSeconds: Histogram;
  wsConnections = 0;
  private decisionTick = 0;

  constructor(inFlight: () => number) {
    const r = this.registry;
    eluGauge(r, 'router');
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
    const internals = this.internals;
    new Counter({
      name: 'pacer_internal_errors_total',
      help: 'Unexpected exceptions a handler caught and answered 500 INTERNAL (or a stream error result), by thread and route.',
      labelNames: ['thread', 'route'],
      registers: [r],
      collect() {
        this.reset();
        for (const [route, n] of internals) this.inc({ thread: 'router', route }, n);
      },
    });
    this.decisionSeconds = new Histogram({
      name: 'pacer_decision_duration_seconds',
      help: 'Time from a decide request read by the router to its answer written, server side; sampled, one request in 8.',
      buckets: [0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
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
    new Gauge({
      name: 'pacer_process_resident_memory_bytes',
      help: 'Resident memory of the whole process (all threads).',
      registers: [r],
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
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

  /** Counts an unexpected exception caught on `route` (a hot-path route, `stream`, `uncaught`, …). */
  internal(route: string): void {
    this.internals.set(route, (this.internals.get(route) ?? 0) + 1);
  }

  error(route: Route, code: string): void {
    const key = `${route} ${code}`;
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }
}

/** A shard's metrics, read from its totals and state at scrape time. */
export function shardRegistry(index: number, shard: Shard, isDegraded: () => boolean): { registry: Registry; flushSeconds: Histogram } {
  const r = new Registry();
  const label = { shard: String(index) };
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
  new Gauge({
    name: 'pacer_reserved_micros',
    help: 'Money reserved for bids in flight, in micros, summed over the shard\'s campaigns.',
    labelNames: ['shard'],
    registers: [r],
    collect() {
      let reserved = 0;
      for (const c of shard.campaigns.values()) reserved += c.reserved;
      this.set(label, reserved);
    },
  });
  new Gauge({
    name: 'pacer_breakers_open',
    help: 'Campaigns whose budget breaker is not CLOSED, by state.',
    labelNames: ['shard', 'state'],
    registers: [r],
    collect() {
      const counts = { OPEN: 0, HALF_OPEN: 0, EXHAUSTED: 0 };
      for (const c of shard.campaigns.values()) {
        const s = c.breaker.state;
        if (s !== 'CLOSED') counts[s]++;
      }
      for (const [state, n] of Object.entries(counts)) this.set({ ...label, state }, n);
    },
  });
  const flushSeconds = new Histogram({
    name: 'pacer_flush_duration_seconds',
    help: 'Time for a shard flush batch to be applied by the counter store.',
    labelNames: ['shard'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [r],
  });
  return { registry: r, flushSeconds };
}

/** The admin thread's own metrics. */
export function adminRegistry(campaigns: () => number, databaseUp: () => boolean): Registry {
  const r = new Registry();
  eluGauge(r, 'admin');
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

/** Merges the threads' metrics into Prometheus text. */
export async function exposition(parts: JsonMetrics[]): Promise<string> {
  return AggregatorRegistry.aggregate(parts as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
}
