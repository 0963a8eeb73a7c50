import { performance } from 'node:perf_hooks';
import uWS, { type HttpRequest, type TemplatedApp } from 'uWebSockets.js';
import { limits } from '../../shards/limits.js';
import { OpKind, type ResultReader } from '../../shards/wire.js';
import { ApiError } from '../http/errors.js';
import { readJson, type Res, sendError, sendJson } from '../http/respond.js';
import type { Dispatcher, ResultSink } from './dispatcher.js';
import { decideJson, releaseJson, resultError, resultJson, shardFailedError, spendJson } from './render.js';
import type { Route, RouterMetrics } from '../metrics.js';
import { attachStream } from './stream.js';
import { batchOf, decideOf, releaseOf, spendOf } from './validate.js';

/** What the router needs to know about the rest of the process. */
export interface RouterState {
  shuttingDown: boolean;
  /** null when ready, else why not. */
  notReadyReason(): string | null;
  /** Non-null when a dependency is degraded (the pacer still answers). */
  degradedReason(): string | null;
}

/** One HTTP request with one operation. */
class SingleSink implements ResultSink {
  constructor(
    private readonly res: Res,
    private readonly render: (r: ResultReader) => string,
    private readonly route: Route,
    private readonly metrics: RouterMetrics,
    /** When the request was read, or -1 when it is not sampled for the latency histogram. */
    private readonly startedMs: number,
  ) {}

  result(_index: number, r: ResultReader): void {
    const err = resultError(r);
    if (err !== null && r.kind !== OpKind.DECIDE) {
      this.metrics.error(this.route, err.code);
      sendError(this.res, err);
      return;
    }
    sendJson(this.res, 200, this.render(r));
    if (this.startedMs >= 0) this.metrics.decisionSeconds.observe((performance.now() - this.startedMs) / 1000);
  }

  fail(): void {
    this.metrics.error(this.route, shardFailedError.code);
    sendError(this.res, shardFailedError);
  }
}

/** One HTTP request with many operations, answered in order once all are back. */
class BatchSink implements ResultSink {
  private readonly parts: string[];
  private left: number;

  constructor(
    private readonly res: Res,
    n: number,
    private readonly key: string,
    private readonly metrics: RouterMetrics,
    private readonly startedMs: number,
  ) {
    this.parts = new Array<string>(n);
    this.left = n;
  }

  result(index: number, r: ResultReader): void {
    this.parts[index] = resultJson(r);
    if (--this.left === 0) this.done();
  }

  fail(index: number): void {
    this.parts[index] = JSON.stringify(shardFailedError);
    if (--this.left === 0) this.done();
  }

  private done(): void {
    sendJson(this.res, 200, `{"${this.key}":[${this.parts.join(',')}]}`);
    if (this.startedMs >= 0) this.metrics.decisionSeconds.observe((performance.now() - this.startedMs) / 1000);
  }
}

const overloaded = new ApiError('OVERLOADED', 'the shard owning this campaign is saturated; retry after the Retry-After delay');
const shuttingDown = new ApiError('SHUTTING_DOWN', 'the pacer is shutting down; send to another instance or retry');

/**
 * The hot-path HTTP API on PACER_PORT. Handlers copy what they need out of `req` before anything
 * asynchronous (uWS reuses it), validate, hash the campaign to its shard and hand the operation to
 * the dispatcher; the answer goes out when the shard's result batch comes back.
 */
export function createRouterApp(dispatcher: Dispatcher, state: RouterState, metrics: RouterMetrics): TemplatedApp {
  const app = uWS.App();

  const post = (path: string, route: Route, handle: (res: Res, body: unknown, startedMs: number) => void): void => {
    const timed = route === 'decide' || route === 'decide_batch';
    app.post(path, (res: Res, req: HttpRequest) => {
      const startedMs = timed && metrics.sampleDecision() ? performance.now() : -1;
      const contentLength = req.getHeader('content-length');
      metrics.request(route);
      const fail = (err: ApiError, closeConnection = false): void => {
        metrics.error(route, err.code);
        sendError(res, err, closeConnection);
      };
      if (state.shuttingDown) {
        fail(shuttingDown, true);
        return;
      }
      readJson(
        res,
        contentLength,
        limits.bodyBytesMax,
        (body) => {
          try {
            handle(res, body, startedMs);
          } catch (err) {
            if (err instanceof ApiError) fail(err);
            else throw err;
          }
        },
        fail,
      );
    });
    app.any(path, (res: Res) => methodNotAllowed(res, 'POST'));
  };

  post('/v1/decide', 'decide', (res, body, startedMs) => {
    const input = decideOf(body);
    const shard = dispatcher.shardOf(input.campaignId);
    if (!dispatcher.hasRoom(shard, 1)) throw overloaded;
    const sink = new SingleSink(res, decideJson, 'decide', metrics, startedMs);
    dispatcher.decide(shard, sink, 0, input.campaignId, input.bidMicros, input.requestId);
  });

  post('/v1/spend', 'spend', (res, body, startedMs) => {
    const input = spendOf(body);
    const shard = dispatcher.shardOf(input.campaignId);
    if (!dispatcher.hasRoom(shard, 1)) throw overloaded;
    const sink = new SingleSink(res, spendJson, 'spend', metrics, startedMs);
    dispatcher.spend(shard, sink, 0, input.campaignId, input.amountMicros, input.eventId, input.requestId);
  });

  post('/v1/release', 'release', (res, body, startedMs) => {
    const input = releaseOf(body);
    const shard = dispatcher.shardOf(input.campaignId);
    if (!dispatcher.hasRoom(shard, 1)) throw overloaded;
    dispatcher.release(shard, new SingleSink(res, releaseJson, 'release', metrics, startedMs), 0, input.campaignId, input.requestId);
  });

  post('/v1/decide/batch', 'decide_batch', (res, body, startedMs) => {
    const items = batchOf(body, 'requests').map((item, i) => decideOf(item, i));
    const shards = items.map((x) => dispatcher.shardOf(x.campaignId));
    ensureRoom(dispatcher, shards);
    const sink = new BatchSink(res, items.length, 'decisions', metrics, startedMs);
    items.forEach((x, i) => dispatcher.decide(shards[i]!, sink, i, x.campaignId, x.bidMicros, x.requestId));
  });

  post('/v1/spend/batch', 'spend_batch', (res, body, startedMs) => {
    const items = batchOf(body, 'events').map((item, i) => spendOf(item, i));
    const shards = items.map((x) => dispatcher.shardOf(x.campaignId));
    ensureRoom(dispatcher, shards);
    const sink = new BatchSink(res, items.length, 'results', metrics, startedMs);
    items.forEach((x, i) =>
      dispatcher.spend(shards[i]!, sink, i, x.campaignId, x.amountMicros, x.eventId, x.requestId),
    );
  });

  app.get('/healthz', (res: Res) => {
    res.writeHeader('content-type', 'application/json').end('{"status":"ok"}');
  });
  app.any('/healthz', (res: Res) => methodNotAllowed(res, 'GET'));

  app.get('/readyz', (res: Res) => {
    const reason = state.shuttingDown ? 'shutting down' : state.notReadyReason();
    if (reason !== null) {
      res.writeStatus('503 Service Unavailable').writeHeader('content-type', 'application/json');
      res.end(JSON.stringify({ status: 'not_ready', reason }));
      return;
    }
    const degraded = state.degradedReason();
    res.writeHeader('content-type', 'application/json');
    res.end(JSON.stringify(degraded === null ? { status: 'ready' } : { status: 'degraded', reason: degraded }));
  });
  app.any('/readyz', (res: Res) => methodNotAllowed(res, 'GET'));

  attachStream(app, dispatcher, state, metrics);

  app.any('/*', (res: Res, req: HttpRequest) => {
    const url = req.getUrl();
    sendError(res, new ApiError('NOT_FOUND', `no route ${req.getMethod().toUpperCase()} ${url.slice(0, 100)}`));
  });
  return app;
}

function methodNotAllowed(res: Res, allow: string): void {
  res.cork(() => {
    res.writeStatus('405 Method Not Allowed').writeHeader('allow', allow).writeHeader('content-type', 'application/json');
    res.end(JSON.stringify(new ApiError('METHOD_NOT_ALLOWED', `use ${allow}`)));
  });
}

/** Refuses the whole batch (nothing dispatched) when any shard it touches is saturated. */
function ensureRoom(dispatcher: Dispatcher, shards: number[]): void {
  const need = new Map<number, number>();
  for (const s of shards) need.set(s, (need.get(s) ?? 0) + 1);
  for (const [s, n] of need) if (!dispatcher.hasRoom(s, n)) throw overloaded;
}
