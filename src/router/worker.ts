import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import type { PacerConfig } from '../config.js';
import { log } from '../log.js';
import type { MainToRouter, RouterToMain } from '../messages.js';
import { RouterMetrics } from '../metrics.js';
import { ConnectionCount } from './connections.js';
import type { RouterState } from './http.js';
import { Router } from './router.js';

/**
 * A router thread (PACER_ROUTERS > 1; started by src/main.ts through src/router-entry.ts). It runs
 * its own Router, listening on the port main names, with its own MessagePort to every shard. Main
 * owns the process state: it pushes what /readyz answers and asks for metrics; the router holds no
 * money (an operation it dispatched belongs to a shard), so a stop is: drain, close, exit.
 */
interface RouterWorkerData {
  index: number;
  config: PacerConfig;
  /** One per shard, by shard index. */
  shardPorts: MessagePort[];
  /** The process's count of open stream connections, shared by every router thread. */
  streamConnections: SharedArrayBuffer;
}

const { index, config, shardPorts, streamConnections } = workerData as RouterWorkerData;
const main = parentPort!;
const toMain = (msg: RouterToMain): void => main.postMessage(msg);

let notReady: string | null = 'starting';
let degraded: string | null = null;
const state: RouterState = {
  shuttingDown: false,
  notReadyReason: () => notReady,
  degradedReason: () => degraded,
  streamConnections: new ConnectionCount(streamConnections),
};
const metrics: RouterMetrics = new RouterMetrics(() => router.dispatcher.pending, null, { thread: `router-${index}`, withProcess: false });
const router: Router = new Router(config, shardPorts, state, metrics);

main.on('message', (msg: MainToRouter) => {
  switch (msg.type) {
    case 'listen':
      void router.listen(config.host, msg.port).then((port) => toMain(port === null ? { type: 'listenFailed' } : { type: 'listening', port }));
      break;
    case 'state':
      notReady = msg.notReady;
      degraded = msg.degraded;
      toMain({ type: 'stateApplied', seq: msg.seq });
      break;
    case 'metrics':
      void metrics.registry.getMetricsAsJSON().then((m) => toMain({ type: 'metrics', corr: msg.corr, metrics: m }));
      break;
    case 'shardExited':
      router.dispatcher.failShard(msg.shard);
      break;
    case 'stop':
      void stop(msg.deadlineMs);
      break;
    default: {
      const bad: never = msg;
      log('warn', 'unknown message from main', { msg: bad });
    }
  }
});

async function stop(deadlineMs: number): Promise<void> {
  const pending = await router.drain(deadlineMs);
  router.close();
  toMain({ type: 'drained', pending });
  // Nothing is left to keep the thread's event loop alive: the thread ends and main sees its exit.
  main.close();
}
