import { mkdirSync } from 'node:fs';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import uWS from 'uWebSockets.js';
import { limits } from '../shards/limits.js';
import { ensureAdminToken } from './admin/token.js';
import { missingAllocatorEnv } from './allocator.js';
import { ConfigError, loadConfig, type PacerConfig } from './config.js';
import { exitCodes } from './exit-codes.js';
import { log } from './log.js';
import type { AdminToMain, MainToAdmin, ShardToMain } from './messages.js';
import { RouterMetrics } from './metrics.js';
import { startRouters } from './router/group.js';
import type { RouterState } from './router/http.js';
import { reportInternal } from './router/internal.js';

/**
 * The process: reads the configuration, starts PACER_SHARDS shard workers and the admin thread,
 * wires a MessagePort from the admin to each shard and one from every router to each shard, and
 * runs the uWS router: on the main thread with PACER_ROUTERS=1, else in PACER_ROUTERS router
 * threads sharing the port (src/router/group.ts).
 * SIGTERM/SIGINT stop it gracefully: stop accepting, answer what is in flight, flush, exit 0.
 */
export const uwsNative = typeof (uWS as { getParts?: unknown }).getParts === 'function';

async function start(config: PacerConfig): Promise<void> {
  mkdirSync(config.dataDir, { recursive: true });
  const { token, generated, path } = ensureAdminToken(config.dataDir, config.adminToken);
  if (generated) {
    process.stdout.write(`Admin token (generated on first start, kept in ${path}):\n  ${token}\n`);
  }
  if (!uwsNative) log('warn', 'uWebSockets.js runs its JavaScript fallback: expect a fraction of the native speed');
  const allocator = missingAllocatorEnv(process.env);
  if (process.platform === 'linux' && allocator.length > 0) {
    log('info', 'started without the allocator setting npm start and the image use: set it in the environment to keep memory from fragmenting at scale (ARCHITECTURE.md)', { missing: allocator });
  }

  const adminPorts: MessagePort[] = [];
  const shards: Worker[] = [];
  // channels[router][shard]: each router has its own channel to every shard, so a shard answers
  // each router's batches (and their late results) on that router's port.
  const channels = Array.from({ length: config.routers }, () => Array.from({ length: config.shards }, () => new MessageChannel()));
  for (let i = 0; i < config.shards; i++) {
    const channel = new MessageChannel();
    const routerPorts = channels.map((row) => row[i]!.port1);
    shards.push(
      new Worker(new URL('./shard/host.js', import.meta.url), {
        workerData: { index: i, config, adminPort: channel.port1, routerPorts },
        transferList: [channel.port1, ...routerPorts],
        name: `shard-${i}`,
        resourceLimits: { maxYoungGenerationSizeMb: limits.workerYoungGenerationMb },
      }),
    );
    adminPorts.push(channel.port2);
  }
  // With a Redis store the admin thread first waits until the instance registry allows this
  // instance to serve (src/store/instances.ts): until then the shards have no campaign and answer
  // NOT_READY, and /readyz names the conflict.
  let admin: Worker | null = null;
  /** PACER_ERR_INSTANCE_CONFLICT while this instance must not serve (src/store/instances.ts). */
  let conflict: string | null = null;

  // With one router this registry is the router's; beside router threads it is main's own.
  const mainThread = config.routers === 1 ? 'router' : 'main';
  const metrics = new RouterMetrics(() => routers.pending, config.dataDir, { thread: mainThread, withProcess: true });
  let shardsReady = 0;
  let adminReady = false;
  const degraded = new Map<string, string>();
  const state: RouterState = {
    shuttingDown: false,
    notReadyReason: () =>
      conflict !== null
        ? conflict
        : shardsReady < shards.length
        ? `${shards.length - shardsReady} of ${shards.length} shards starting`
        : adminReady
          ? null
          : 'loading campaign configuration',
    degradedReason: () => (degraded.size === 0 ? null : [...degraded.values()].join('; ')),
  };
  // The admin's live feed pushes store health changes (docs/live-protocol.md).
  const healthChanged = (): void => {
    const reason = state.degradedReason();
    admin?.postMessage({ type: 'health', degraded: reason !== null, reason } satisfies MainToAdmin);
    routers.stateChanged();
  };
  metrics.ready = () => !state.shuttingDown && state.notReadyReason() === null;

  let exitCode = 0;
  let port = -1;
  let adminPort = -1;
  /** Shards that drained or are gone (a shard that died cannot drain, and shutdown must not wait for it). */
  const stoppedShards = new Set<number>();
  const stopped = { get shards(): number { return stoppedShards.size; }, admin: false };

  let announced = false;
  const maybeAnnounce = (): void => {
    if (announced || port < 0 || adminPort < 0 || shardsReady < shards.length || !adminReady || !routers.stateApplied) return;
    if (state.shuttingDown) return;
    announced = true;
    log('info', 'ready', { port, adminPort, shards: shards.length, routers: routers.count, store: config.store, uwsNative, instanceId: config.instanceId, leases: config.leases });
    process.stdout.write(
      `pacer ready: http://${config.host}:${port} (admin :${adminPort}), ${shards.length} shards, ${routers.count} routers, store ${config.store}\n`,
    );
  };
  const routers = startRouters({
    config,
    shardPorts: channels.map((row) => row.map((c) => c.port2)),
    state,
    metrics,
    onUncaught: (thread, err) => onThreadUncaught(thread, err),
    onExit: (thread, code) => {
      if (state.shuttingDown) return;
      // A router thread that ends on its own (its listen socket closed) is a bug: stop for a restart.
      log('error', 'router thread exited unexpectedly; stopping', { thread, code });
      metrics.assertionExit('router');
      if (exitCode === exitCodes.ok) exitCode = exitCodes.threadStopped;
      void shutdown('router exit');
    },
    onStateApplied: () => maybeAnnounce(),
  });

  shards.forEach((w, i) => {
    w.on('message', (msg: ShardToMain) => {
      switch (msg.type) {
        case 'ready':
          shardsReady++;
          routers.stateChanged();
          maybeAnnounce();
          break;
        case 'degraded':
          if (msg.degraded) degraded.set(`shard-${i}`, `shard ${i}: ${msg.reason}`);
          else degraded.delete(`shard-${i}`);
          healthChanged();
          break;
        case 'drained':
          stoppedShards.add(i);
          break;
        case 'fatal':
          log('error', 'shard failed', { shard: i, message: msg.message });
          break;
        default: {
          const bad: never = msg;
          log('warn', 'unknown shard message', { msg: bad });
        }
      }
    });
    // A worker's 'error' event is an exception that escaped every handler in that thread (Node then
    // stops the thread): the process follows the uncaught-exception policy.
    w.on('error', (err) => onThreadUncaught(`shard-${i}`, err));
    w.on('exit', (code) => {
      stoppedShards.add(i);
      routers.shardExited(i);
      if (!state.shuttingDown) {
        // A shard that stops on its own broke an invariant: stop loudly and let the supervisor
        // restart the process, which reloads every counter from the store.
        log('error', 'shard exited unexpectedly; stopping', { shard: i, code });
        metrics.assertionExit('shard');
        if (exitCode === exitCodes.ok) exitCode = exitCodes.threadStopped;
        void shutdown('shard exit');
      }
    });
  });

  function startAdmin(): void {
    if (state.shuttingDown) return;
    // Through admin-entry.js, which installs the uncaught-exception policy for a thread that holds
    // a listen socket before it loads admin/worker.js.
    admin = new Worker(new URL('./admin-entry.js', import.meta.url), {
      workerData: { config, token, shardPorts: adminPorts },
      transferList: adminPorts,
      name: 'admin',
      resourceLimits: { maxYoungGenerationSizeMb: limits.workerYoungGenerationMb },
    });
    // A store that went degraded before the admin thread started is news it has not heard.
    const reason = state.degradedReason();
    if (reason !== null) admin.postMessage({ type: 'health', degraded: true, reason } satisfies MainToAdmin);
    admin.on('message', (msg: AdminToMain) => {
      switch (msg.type) {
        case 'listening':
          adminPort = msg.port;
          maybeAnnounce();
          break;
        case 'ready':
          adminReady = true;
          log('info', 'campaign configuration loaded', { campaigns: msg.campaigns, startupMs: msg.startupMs });
          routers.stateChanged();
          maybeAnnounce();
          break;
        case 'instance':
          if (msg.giveWay && state.shuttingDown) break; // stopping anyway, with its own exit code
          conflict = msg.conflict;
          routers.stateChanged();
          if (msg.giveWay) {
            exitCode = exitCodes.config;
            void shutdown('instance conflict');
          }
          break;
        case 'degraded':
          if (msg.degraded) degraded.set('admin', msg.reason);
          else degraded.delete('admin');
          healthChanged();
          break;
        case 'stopped':
          stopped.admin = true;
          break;
        case 'metricsRequest':
          void routers.metrics().then((m) => admin!.postMessage({ type: 'metrics', corr: msg.corr, metrics: m } satisfies MainToAdmin));
          break;
        case 'fatal':
          if (msg.uncaught === true) {
            onThreadUncaught('admin', null);
            break;
          }
          log('error', 'admin thread failed', { message: msg.message });
          metrics.assertionExit('admin');
          if (exitCode === exitCodes.ok) exitCode = exitCodes.threadStopped;
          void shutdown('admin failure');
          break;
        default: {
          const bad: never = msg;
          log('warn', 'unknown admin message', { msg: bad });
        }
      }
    });
    admin.on('error', (err) => onThreadUncaught('admin', err));
    admin.on('exit', () => {
      stopped.admin = true;
      if (!state.shuttingDown) {
        metrics.assertionExit('admin');
        if (exitCode === exitCodes.ok) exitCode = exitCodes.threadStopped;
        void shutdown('admin exit');
      }
    });
  }

  /**
   * The uncaught-exception policy (ARCHITECTURE.md): log it once, count it, and stop through the
   * graceful path with exit code 71 so the supervisor restarts the process. The graceful path stops
   * accepting, lets the shards write what they hold and closes the admin socket (exiting with it
   * open aborts Node); a thread that is gone simply does not take part, and the grace deadline
   * bounds the whole stop.
   */
  function onThreadUncaught(thread: string, err: unknown): void {
    // reportInternal logs the error's class and stack frames; the message is left out like
    // everywhere else, since it may quote a client's input. (err is null when the thread logged
    // the error itself: src/thread-guard.ts.)
    if (err === null) metrics.internal(`uncaught_${thread}`);
    else reportInternal(metrics, `uncaught_${thread}`, err);
    log('error', 'uncaught exception; stopping for a restart', { failedThread: thread, exitCode: exitCodes.uncaught });
    metrics.assertionExit(thread.startsWith('router') ? 'router' : thread === 'admin' || thread === 'main' ? thread : 'shard');
    exitCode = exitCodes.uncaught;
    void shutdown(`uncaught exception in ${thread}`);
  }
  process.on('uncaughtException', (err) => onThreadUncaught(mainThread, err));
  process.on('unhandledRejection', (reason) => onThreadUncaught(mainThread, reason));

  void routers.listen().then((p) => {
    if (p === null) {
      log('error', `cannot listen on ${config.host}:${config.port}: port in use?`, { routers: routers.count });
      exitCode = exitCodes.failed;
      void shutdown('listen failed');
      return;
    }
    port = p;
    maybeAnnounce();
  });

  const waitFor = async (cond: () => boolean, deadline: number): Promise<boolean> => {
    while (!cond()) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
    return true;
  };

  let shuttingDown: Promise<void> | null = null;
  function shutdown(why: string): Promise<void> {
    shuttingDown ??= (async () => {
      state.shuttingDown = true;
      log('info', 'shutting down', { why });
      const deadline = Date.now() + limits.shutdownGraceMs;
      // Every router stops accepting and answers what is in flight (spend acknowledgements wait
      // for their flush); router threads then close their connections and end.
      const unanswered = await routers.drain(deadline);
      if (unanswered > 0) log('warn', 'in-flight requests unanswered at the deadline', { pending: unanswered });
      for (const w of shards) w.postMessage({ type: 'shutdown' });
      // The shards flush their last batch first: in embedded mode it goes through the admin thread,
      // and with Redis the admin leaves the instance registry last (until then this instance could
      // still write spend).
      await waitFor(() => stopped.shards === shards.length, deadline);
      if (admin === null) stopped.admin = true;
      else admin.postMessage({ type: 'shutdown' });
      const threadsDone = await waitFor(() => stopped.shards === shards.length && stopped.admin, deadline);
      // A router thread that still holds uWS sockets when the process exits aborts Node.
      const done = (await routers.stopped(deadline)) && threadsDone;
      if (!done) {
        log('warn', 'threads did not stop in time; exiting anyway');
        if (exitCode === exitCodes.ok) exitCode = exitCodes.failed;
      }
      log('info', 'stopped', { exitCode });
      process.exit(exitCode);
    })();
    return shuttingDown;
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  startAdmin();
}

try {
  await start(loadConfig());
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.code}: ${err.message}\n`);
    process.exit(exitCodes.config);
  }
  throw err;
}
