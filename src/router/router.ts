import type { MessagePort } from 'node:worker_threads';
import uWS from 'uWebSockets.js';
import type { PacerConfig } from '../config.js';
import type { RouterMetrics } from '../metrics.js';
import { Dispatcher } from './dispatcher.js';
import { createRouterApp, type RouterState } from './http.js';
import { reportInternal } from './internal.js';

/**
 * One router: a uWS app on PACER_PORT (http.ts, stream.ts) and a Dispatcher over its own
 * MessagePort to every shard. With PACER_ROUTERS=1 it runs on the main thread (src/main.ts); with
 * more, each router thread runs one (src/router/worker.ts), all listening on the same port.
 */
export class Router {
  readonly dispatcher: Dispatcher;
  private readonly app: uWS.TemplatedApp;
  private listenSocket: uWS.us_listen_socket | null = null;

  constructor(
    config: PacerConfig,
    private readonly shardPorts: readonly MessagePort[],
    private readonly state: RouterState,
    metrics: RouterMetrics,
  ) {
    this.dispatcher = new Dispatcher(shardPorts, config.shardInFlightMax);
    this.dispatcher.onSinkError = (err) => reportInternal(metrics, 'dispatcher', err);
    shardPorts.forEach((port, shard) => port.on('message', (batch: ArrayBuffer) => this.dispatcher.onResults(shard, batch)));
    this.app = createRouterApp(this.dispatcher, state, metrics, config.streamConnectionsMax);
  }

  /** Listens on host:port (0 picks a free port); resolves with the port, or null when it cannot. */
  listen(host: string, port: number): Promise<number | null> {
    return new Promise((resolve) => {
      this.app.listen(host, port, (sock) => {
        if (sock === false) {
          resolve(null);
          return;
        }
        this.listenSocket = sock;
        resolve(uWS.us_socket_local_port(sock as unknown as uWS.us_socket));
      });
    });
  }

  /**
   * The first half of a graceful stop: stop accepting connections (the other routers' sockets, if
   * any, stop at the same time), answer new requests on open connections with 503 SHUTTING_DOWN,
   * and wait until every dispatched operation is answered or the deadline (wall clock) passes.
   * Resolves with the operations still unanswered (0 when drained).
   */
  async drain(deadlineMs: number): Promise<number> {
    this.state.shuttingDown = true;
    if (this.listenSocket !== null) uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
    while (this.dispatcher.pending > 0 && Date.now() < deadlineMs) await new Promise((r) => setTimeout(r, 5));
    return this.dispatcher.pending;
  }

  /**
   * Closes every connection (keep-alive HTTP and WebSocket alike) and the shard channels, so that the
   * thread's event loop empties: a worker thread that still holds uWS sockets when the process exits
   * aborts Node (exit 134). `app.close()` exists at run time in uWS 20.30 though its type
   * declarations leave it out.
   */
  close(): void {
    (this.app as uWS.TemplatedApp & { close(): void }).close();
    for (const port of this.shardPorts) port.close();
  }
}
