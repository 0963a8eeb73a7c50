import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import uWS from 'uWebSockets.js';
import type { ShardEvent } from '../../shards/ports.js';
import type { PacerConfig } from '../config.js';
import { log } from '../log.js';
import type { AdminToMain, MainToAdmin } from '../messages.js';
import { createAdminApp } from './app.js';
import { Campaigns } from './campaigns.js';
import { openConfigStore } from './open.js';
import { ShardLinks } from './shards.js';

/**
 * The admin thread: the management API, the configuration database, and (as the product grows)
 * history and metrics. It talks to each shard over its own MessagePort, so configuration reaches a
 * shard without passing through the router, and the router never waits on anything here.
 */
interface AdminWorkerData {
  config: PacerConfig;
  token: string;
  shardPorts: MessagePort[];
}

const { config, token, shardPorts } = workerData as AdminWorkerData;
const main = parentPort!;
const toMain = (msg: AdminToMain): void => main.postMessage(msg);

function onShardEvent(shard: number, event: ShardEvent): void {
  switch (event.type) {
    case 'breaker':
      log('info', 'breaker transition', { shard, campaignId: event.campaignId, ...event.transition });
      break;
    case 'rollover':
      log('info', 'day rollover', { shard, ...event });
      break;
    case 'fault':
      break;
    default: {
      const bad: never = event;
      log('warn', 'unknown shard event', { event: bad });
    }
  }
}

const store = await openConfigStore(config);
const links = new ShardLinks(shardPorts, onShardEvent);
const campaigns = new Campaigns(store, links);
const state = { shuttingDown: false };
const app = createAdminApp(token, campaigns, state);

let listenSocket: uWS.us_listen_socket | null = null;
app.listen(config.host, config.adminPort, (sock) => {
  if (sock === false) {
    toMain({ type: 'fatal', message: `cannot listen on ${config.host}:${config.adminPort} (admin API): port in use?` });
    return;
  }
  listenSocket = sock;
  toMain({ type: 'listening', port: uWS.us_socket_local_port(sock as unknown as uWS.us_socket) });
});

try {
  await campaigns.start();
  toMain({ type: 'ready', campaigns: campaigns.size });
} catch (err) {
  toMain({ type: 'fatal', message: `loading campaigns failed: ${(err as Error).message}` });
}

main.on('message', (msg: MainToAdmin) => {
  switch (msg.type) {
    case 'shutdown':
      void shutdown();
      break;
    default: {
      const bad: never = msg.type;
      log('warn', 'unknown message from main', { type: String(bad) });
    }
  }
});

async function shutdown(): Promise<void> {
  state.shuttingDown = true;
  // uWS keeps the thread alive while a listen socket is open; close it before the thread ends.
  if (listenSocket !== null) uWS.us_listen_socket_close(listenSocket);
  listenSocket = null;
  links.close();
  try {
    await store.close();
  } catch (err) {
    log('warn', 'closing the config store failed', { error: String(err) });
  }
  toMain({ type: 'stopped' });
  main.close();
}
