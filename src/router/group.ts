import { createServer } from 'node:net';
import { type MessagePort, Worker } from 'node:worker_threads';
import { limits } from '../../shards/limits.js';
import type { PacerConfig } from '../config.js';
import { log } from '../log.js';
import type { MainToRouter, RouterToMain } from '../messages.js';
import type { JsonMetrics, RouterMetrics } from '../metrics.js';
import { ConnectionCount } from './connections.js';
import type { RouterState } from './http.js';
import { Router } from './router.js';

/**
 * The process's routers as main sees them, one router on the main thread or PACER_ROUTERS router
 * threads, behind one interface so that main's start, readiness and shutdown read the same either
 * way (ARCHITECTURE.md, "Several router threads on one port").
 */
export interface Routers {
  readonly count: number;
  /** Starts listening on config.port (every router on the same port); the port, or null when one cannot. */
  listen(): Promise<number | null>;
  /** Main's state changed: every router must answer /readyz from the new one. */
  stateChanged(): void;
  /** Whether every router answers from main's current state (ready is announced only then). */
  readonly stateApplied: boolean;
  /** Main's metrics and every router thread's, one part per thread. */
  metrics(): Promise<JsonMetrics[]>;
  /** A shard is gone: what waits on it fails. */
  shardExited(shard: number): void;
  /** Operations dispatched and not yet answered, over all routers (main's own router only; threads report at drain). */
  readonly pending: number;
  /**
   * Stops accepting on every router, answers new requests with 503 SHUTTING_DOWN and waits for
   * what is in flight, until deadlineMs; resolves with the operations left unanswered.
   */
  drain(deadlineMs: number): Promise<number>;
  /** Resolves true once every router thread has ended (they must before the process exits), false at the deadline. */
  stopped(deadlineMs: number): Promise<boolean>;
}

/** What main gives the routers. */
export interface RouterHost {
  config: PacerConfig;
  /** By router, then by shard: the router's end of its channel to each shard. */
  shardPorts: MessagePort[][];
  state: RouterState;
  /** Main's metrics (the router's, too, when it runs on main). */
  metrics: RouterMetrics;
  /** A router thread's exception escaped every handler (err null: the thread logged it itself). */
  onUncaught(thread: string, err: unknown): void;
  /** A router thread ended on its own. */
  onExit(thread: string, code: number): void;
  /** Every router now answers from main's current state. */
  onStateApplied(): void;
}

export function startRouters(host: RouterHost): Routers {
  return host.config.routers === 1 ? new MainRouter(host) : new RouterThreads(host);
}

/** PACER_ROUTERS=1: the router runs on the main thread and reads main's state directly. */
class MainRouter implements Routers {
  readonly count = 1;
  readonly stateApplied = true;
  private readonly router: Router;

  constructor(private readonly host: RouterHost) {
    this.router = new Router(host.config, host.shardPorts[0]!, host.state, host.metrics);
  }

  listen(): Promise<number | null> {
    return this.router.listen(this.host.config.host, this.host.config.port);
  }

  stateChanged(): void {}

  async metrics(): Promise<JsonMetrics[]> {
    return [await this.host.metrics.registry.getMetricsAsJSON()];
  }

  shardExited(shard: number): void {
    this.router.dispatcher.failShard(shard);
  }

  get pending(): number {
    return this.router.dispatcher.pending;
  }

  drain(deadlineMs: number): Promise<number> {
    return this.router.drain(deadlineMs);
  }

  async stopped(): Promise<boolean> {
    // Open connections on the main thread do not stop the process from exiting.
    return true;
  }
}

interface Thread {
  name: string;
  worker: Worker;
  appliedSeq: number;
  exited: boolean;
  /** Unanswered operations it reported when it drained, or null until it has. */
  drained: number | null;
}

/**
 * PACER_ROUTERS > 1: one worker thread per router (src/router-entry.ts). Main tells each which port
 * to listen on, pushes the state /readyz answers (each acknowledges, so ready is announced only
 * when every router answers ready), gathers their metrics for the admin's /metrics, and stops them.
 */
class RouterThreads implements Routers {
  private readonly threads: Thread[];
  private seq = 0;
  private metricsCorr = 0;
  private readonly metricsWaiters = new Map<number, (m: JsonMetrics) => void>();
  private listening: ((msg: RouterToMain) => void) | null = null;

  constructor(private readonly host: RouterHost) {
    const streamConnections = new ConnectionCount();
    this.threads = host.shardPorts.map((ports, index) => {
      const name = `router-${index}`;
      const worker = new Worker(new URL('../router-entry.js', import.meta.url), {
        workerData: { index, config: host.config, shardPorts: ports, streamConnections: streamConnections.buffer },
        transferList: ports,
        name,
      });
      const thread: Thread = { name, worker, appliedSeq: -1, exited: false, drained: null };
      worker.on('message', (msg: RouterToMain) => this.onMessage(thread, msg));
      // An 'error' event is an exception that escaped in that thread outside the thread guard
      // (before it was installed): the uncaught-exception policy.
      worker.on('error', (err) => host.onUncaught(name, err));
      worker.on('exit', (code) => {
        thread.exited = true;
        host.onExit(name, code);
      });
      return thread;
    });
    this.stateChanged();
  }

  get count(): number {
    return this.threads.length;
  }

  private onMessage(thread: Thread, msg: RouterToMain): void {
    switch (msg.type) {
      case 'listening':
      case 'listenFailed':
        this.listening?.(msg);
        break;
      case 'stateApplied':
        thread.appliedSeq = msg.seq;
        if (this.stateApplied) this.host.onStateApplied();
        break;
      case 'metrics': {
        const waiter = this.metricsWaiters.get(msg.corr);
        this.metricsWaiters.delete(msg.corr);
        waiter?.(msg.metrics);
        break;
      }
      case 'drained':
        thread.drained = msg.pending;
        break;
      case 'fatal':
        if (msg.uncaught === true) this.host.onUncaught(thread.name, null);
        else log('error', 'router thread failed', { thread: thread.name, message: msg.message });
        break;
      default: {
        const bad: never = msg;
        log('warn', 'unknown router message', { msg: bad });
      }
    }
  }

  private post(thread: Thread, msg: MainToRouter): void {
    if (!thread.exited) thread.worker.postMessage(msg);
  }

  async listen(): Promise<number | null> {
    const { host, port: configured } = this.host.config;
    // uSockets sets SO_REUSEPORT only on a socket bound to a named port, so port 0 cannot be shared:
    // a free port is found first, and every router binds that one.
    const port = configured === 0 ? await freePort(host) : configured;
    if (port === null) return null;
    let answers = 0;
    let failed = false;
    return new Promise((resolve) => {
      this.listening = (msg) => {
        answers++;
        if (msg.type === 'listenFailed') failed = true;
        if (answers === this.threads.length) resolve(failed ? null : port);
      };
      for (const t of this.threads) this.post(t, { type: 'listen', port });
    });
  }

  stateChanged(): void {
    this.seq++;
    const { state } = this.host;
    const msg: MainToRouter = { type: 'state', seq: this.seq, notReady: state.notReadyReason(), degraded: state.degradedReason() };
    for (const t of this.threads) this.post(t, msg);
  }

  get stateApplied(): boolean {
    return this.threads.every((t) => t.appliedSeq === this.seq);
  }

  async metrics(): Promise<JsonMetrics[]> {
    const own = this.host.metrics.registry.getMetricsAsJSON() as Promise<JsonMetrics>;
    const threads = this.threads
      .filter((t) => !t.exited)
      .map((t) => {
        const corr = ++this.metricsCorr;
        return new Promise<JsonMetrics | null>((resolve) => {
          // A router that cannot answer in time leaves its part out rather than failing the scrape.
          const timer = setTimeout(() => {
            this.metricsWaiters.delete(corr);
            resolve(null);
          }, limits.controlRequestTimeoutMs / 2);
          this.metricsWaiters.set(corr, (m) => {
            clearTimeout(timer);
            resolve(m);
          });
          this.post(t, { type: 'metrics', corr });
        });
      });
    const parts = await Promise.all([own, ...threads]);
    return parts.filter((p): p is JsonMetrics => p !== null);
  }

  shardExited(shard: number): void {
    for (const t of this.threads) this.post(t, { type: 'shardExited', shard });
  }

  get pending(): number {
    return 0;
  }

  async drain(deadlineMs: number): Promise<number> {
    for (const t of this.threads) this.post(t, { type: 'stop', deadlineMs });
    // A few milliseconds past the routers' own deadline for their answers to arrive.
    await waitUntil(() => this.threads.every((t) => t.exited || t.drained !== null), deadlineMs + 100);
    // A router that did not report in time is counted as one unanswered operation at least.
    let unanswered = 0;
    for (const t of this.threads) unanswered += t.drained ?? (t.exited ? 0 : 1);
    return unanswered;
  }

  stopped(deadlineMs: number): Promise<boolean> {
    return waitUntil(() => this.threads.every((t) => t.exited), deadlineMs);
  }
}

async function waitUntil(cond: () => boolean, deadlineMs: number): Promise<boolean> {
  while (!cond()) {
    if (Date.now() >= deadlineMs) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

/** A port free on host now (PACER_PORT=0 with several routers), or null when none can be had. */
function freePort(host: string): Promise<number | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(null));
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : null;
      server.close(() => resolve(port));
    });
  });
}
