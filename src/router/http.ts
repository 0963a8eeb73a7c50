import { performance } from 'node:perf_hooks';
import uWS, { type HttpRequest, type TemplatedApp } from 'uWebSockets.js';
import { limits } from '../../shards/limits.js';
import { OpKind, type ResultReader } from '../../shards/wire.js';
import { ApiError, statusLine } from '../http/errors.js';
import { type BodyScan, type Res, sendError, sendJson } from '../http/respond.js';
import type { Dispatcher, ResultSink } from './dispatcher.js';
import { decideBytes, releaseJson, resultError, resultJson, shardFailedError, spendJson } from './render.js';
import type { Route, RouterMetrics } from '../metrics.js';
import { internalError, reportInternal } from './internal.js';
import type { ConnectionCount } from './connections.js';
import { attachStream } from './stream.js';
import { FlatScanner } from './json-scan.js';
import { batchOf, decideOf, releaseOf, spendOf } from './validate.js';

// The single-operation routes' bodies, read without JSON.parse when they have the common shape
// (json-scan.ts); the object handed on is what JSON.parse would have made of the same body, so the
// validation below (decideOf, …) and every error it answers stay the same.
const decideScanner = new FlatScanner(['campaignId', 'bidMicros', 'requestId']);
const scanDecide: BodyScan = (b) => {
  if (!decideScanner.scan(b)) return undefined;
  const v = decideScanner.values;
  return { campaignId: v[0], bidMicros: v[1], requestId: v[2] };
};
const spendScanner = new FlatScanner(['campaignId', 'eventId', 'amountMicros', 'requestId']);
const scanSpend: BodyScan = (b) => {
  if (!spendScanner.scan(b)) return undefined;
  const v = spendScanner.values;
  return { campaignId: v[0], eventId: v[1], amountMicros: v[2], requestId: v[3] };
};
const releaseScanner = new FlatScanner(['campaignId', 'requestId']);
const scanRelease: BodyScan = (b) => {
  if (!releaseScanner.scan(b)) return undefined;
  const v = releaseScanner.values;
  return { campaignId: v[0], requestId: v[1] };
};

/** What the router needs to know about the rest of the process. */
export interface RouterState {
  shuttingDown: boolean;
  /** null when ready, else why not. */
  notReadyReason(): string | null;
  /** Non-null when a dependency is degraded (the pacer still answers). */
  degradedReason(): string | null;
  /** Stream connections open over all router threads (PACER_ROUTERS > 1); unset: this router's own. */
  streamConnections?: ConnectionCount;
}

/** One HTTP request with one operation. */
class SingleSink implements ResultSink {
  constructor(
    private readonly res: Res,
    private readonly render: (r: ResultReader) => string | Uint8Array,
    private readonly route: Route,
    private readonly metrics: RouterMetrics,
    /** When the request was read, or -1 when it is not sampled for the latency histogram. */
    private readonly startedMs: number,
  ) {}

  result(_index: number, r: ResultReader): void {
    try {
      // A decision is always an answer (its code is a reason, not an OpStatus).
      const err = r.kind === OpKind.DECIDE ? null : resultError(r);
      if (err !== null) {
        this.metrics.error(this.route, err.code);
        sendError(this.res, err);
        return;
      }
      sendJson(this.res, 200, this.render(r));
      if (this.startedMs < 0) return;
      if (r.kind === OpKind.SPEND) this.metrics.spendAcked(this.startedMs);
      else this.metrics.decisionSeconds.observe((performance.now() - this.startedMs) / 1000);
    } catch (err) {
      answerInternal(this.res, this.route, this.metrics, err);
    }
  }

  fail(): void {
    this.metrics.error(this.route, shardFailedError.code);
    trySendError(this.res, shardFailedError);
  }
}

/** One HTTP request with many operations, answered in order once all are back. */
class BatchSink implements ResultSink {
  private readonly parts: string[];
  private left: number;
  /** Spends acknowledged in this answer (not refused). */
  private spends = 0;

  constructor(
    private readonly res: Res,
    n: number,
    private readonly key: string,
    private readonly route: Route,
    private readonly metrics: RouterMetrics,
    private readonly startedMs: number,
  ) {
    this.parts = new Array<string>(n);
    this.left = n;
  }

  result(index: number, r: ResultReader): void {
    try {
      if (r.kind === OpKind.SPEND && resultError(r) === null) this.spends++;
      this.parts[index] = resultJson(r);
    } catch (err) {
      reportInternal(this.metrics, this.route, err);
      this.parts[index] = JSON.stringify(internalError);
    }
    if (--this.left === 0) this.done();
  }

  fail(index: number): void {
    this.parts[index] = JSON.stringify(shardFailedError);
    if (--this.left === 0) this.done();
  }

  private done(): void {
    try {
      sendJson(this.res, 200, `{"${this.key}":[${this.parts.join(',')}]}`);
      if (this.startedMs < 0) return;
      if (this.spends > 0) this.metrics.spendAcked(this.startedMs);
      else if (this.route === 'decide_batch') this.metrics.decisionSeconds.observe((performance.now() - this.startedMs) / 1000);
    } catch (err) {
      answerInternal(this.res, this.route, this.metrics, err);
    }
  }
}

const overloaded = new ApiError('OVERLOADED', 'the shard owning this campaign is saturated; retry after the Retry-After delay');
const shuttingDown = new ApiError('SHUTTING_DOWN', 'the pacer is shutting down; send to another instance or retry');

/** Validates a parsed body and returns the input to dispatch; throws an ApiError when invalid. */
type Validate<I> = (body: unknown) => I;
/** Hands a valid input to the shards: the answer goes out when the results come back. */
type Dispatch<I> = (res: Res, input: I, startedMs: number) => void;

/** One hot-path POST route, made once: what its requests share. */
interface PostRoute {
  route: Route;
  /** Decisions are timed one in 8 (metrics.sampleDecision); spends always (pacer_spend_ack_seconds). */
  timed: boolean;
  spend: boolean;
  validate: Validate<unknown>;
  dispatch: Dispatch<unknown>;
  scan: BodyScan | undefined;
}

/**
 * One hot-path POST while its body is read and until it is dispatched: one object per request
 * (instead of a closure per step), which is also its entry in the turn's deferred list.
 *
 * Bodies validated in this event-loop turn are dispatched together at its end. uWS closes a
 * connection when it parses a second (pipelined) request while the first is still unanswered, and
 * it does so inside the same read that delivered the first request's body; by dispatching at the
 * end of the turn, a request whose connection uWS closed meanwhile (res.aborted) is dropped before
 * it reaches a shard, so it changes nothing and the client may safely resend it.
 */
class PostRequest {
  /** The body's chunks when it came in more than one; size -1 once answered 413. */
  parts: Buffer[] | null = null;
  size = 0;
  input: unknown = undefined;
  constructor(
    readonly res: Res,
    readonly post: PostRoute,
    readonly startedMs: number,
  ) {}
}

/**
 * The hot-path HTTP API on PACER_PORT. Handlers copy what they need out of `req` before anything
 * asynchronous (uWS reuses it), validate, hash the campaign to its shard and hand the operation to
 * the dispatcher; the answer goes out when the shard's result batch comes back. Every handler
 * turns an exception it did not expect into 500 INTERNAL (counted and logged by reportInternal),
 * so nothing a client sends can stop the router thread.
 */
export function createRouterApp(
  dispatcher: Dispatcher,
  state: RouterState,
  metrics: RouterMetrics,
  streamConnectionsMax: number = limits.streamConnectionsMax,
): TemplatedApp {
  const app = uWS.App();
  let deferred: PostRequest[] = [];
  const runDeferred = (): void => {
    const batch = deferred;
    deferred = [];
    dispatcher.held -= batch.length;
    for (const d of batch) {
      if (d.res.aborted) continue;
      try {
        d.post.dispatch(d.res, d.input, d.startedMs);
      } catch (err) {
        if (err instanceof ApiError) {
          metrics.error(d.post.route, err.code);
          trySendError(d.res, err);
        } else answerInternal(d.res, d.post.route, metrics, err);
      }
    }
    dispatcher.flushNow();
  };

  const post = <I>(path: string, route: Route, validate: Validate<I>, dispatch: Dispatch<I>, scan?: BodyScan): void => {
    const p: PostRoute = {
      route,
      timed: route === 'decide' || route === 'decide_batch',
      spend: route === 'spend' || route === 'spend_batch',
      validate,
      dispatch: dispatch as Dispatch<unknown>,
      scan,
    };
    app.post(path, (res: Res, req: HttpRequest) => {
      try {
        handlePost(res, req, p);
      } catch (err) {
        answerInternal(res, route, metrics, err);
      }
    });
    app.any(path, (res: Res, req: HttpRequest) => methodNotAllowed(res, req, 'POST'));
  };

  const fail = (res: Res, route: Route, err: ApiError, closeConnection = false): void => {
    metrics.error(route, err.code);
    trySendError(res, err, closeConnection);
  };

  const handlePost = (res: Res, req: HttpRequest, p: PostRoute): void => {
    const startedMs = p.spend || (p.timed && metrics.sampleDecision()) ? performance.now() : -1;
    metrics.request(p.route);
    // The header walk also gives the (first) Content-Length: no getHeader call of its own.
    const framing = framingError(req);
    const contentLength = headerContentLength;
    headerContentLength = '';
    if (framing !== null) {
      // The body's end is ambiguous, so the connection cannot carry another request.
      fail(res, p.route, framing, true);
      return;
    }
    if (state.shuttingDown) {
      fail(res, p.route, shuttingDown, true);
      return;
    }
    // After this the response may be answered later (readJson in src/http/respond.ts does the same).
    res.onAborted(() => {
      res.aborted = true;
    });
    const maxBytes = limits.bodyBytesMax;
    if (contentLength !== '' && Number(contentLength) > maxBytes) {
      fail(res, p.route, new ApiError('BODY_TOO_LARGE', `body is ${contentLength} bytes; the limit is ${maxBytes}`));
      return;
    }
    const r = new PostRequest(res, p, startedMs);
    res.onData((chunk, isLast) => onChunk(r, chunk, isLast));
  };

  /** readJsonBody's onData (src/http/respond.ts), for one PostRequest. */
  const onChunk = (r: PostRequest, chunk: ArrayBuffer, isLast: boolean): void => {
    const { res, post: p } = r;
    if (res.aborted || r.size < 0) return;
    const maxBytes = limits.bodyBytesMax;
    r.size += chunk.byteLength;
    if (r.size > maxBytes) {
      r.size = -1;
      fail(res, p.route, new ApiError('BODY_TOO_LARGE', `body exceeds the limit of ${maxBytes} bytes`));
      return;
    }
    let bytes: Buffer;
    if (isLast && r.parts === null) {
      // The common case, a body in one chunk: read straight from uWS's buffer, no copy (it is
      // valid only during this callback, and nothing below keeps it).
      bytes = Buffer.from(chunk);
    } else {
      (r.parts ??= []).push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      bytes = Buffer.concat(r.parts);
      r.parts = null;
    }
    let value = p.scan === undefined ? undefined : p.scan(bytes);
    if (value === undefined) {
      try {
        value = JSON.parse(bytes.toString('utf8'));
      } catch {
        fail(res, p.route, new ApiError('INVALID_JSON', 'body is not valid JSON'));
        return;
      }
    }
    try {
      r.input = p.validate(value);
      if (deferred.length === 0) setImmediate(runDeferred);
      deferred.push(r);
      dispatcher.held++;
    } catch (err) {
      if (err instanceof ApiError) fail(res, p.route, err);
      else answerInternal(res, p.route, metrics, err);
    }
  };

  post('/v1/decide', 'decide', (body) => decideOf(body), (res, input, startedMs) => {
    const shard = dispatcher.shardOf(input.campaignId);
    if (!dispatcher.hasRoom(shard, 1)) throw overloaded;
    const sink = new SingleSink(res, decideBytes, 'decide', metrics, startedMs);
    dispatcher.decide(shard, sink, 0, input.campaignId, input.bidMicros, input.requestId);
  }, scanDecide);

  post('/v1/spend', 'spend', (body) => spendOf(body), (res, input, startedMs) => {
    const shard = dispatcher.shardOf(input.campaignId);
    if (!dispatcher.hasRoom(shard, 1)) throw overloaded;
    const sink = new SingleSink(res, spendJson, 'spend', metrics, startedMs);
    dispatcher.spend(shard, sink, 0, input.campaignId, input.amountMicros, input.eventId, input.requestId);
  }, scanSpend);

  post('/v1/release', 'release', (body) => releaseOf(body), (res, input, startedMs) => {
    const shard = dispatcher.shardOf(input.campaignId);
    if (!dispatcher.hasRoom(shard, 1)) throw overloaded;
    dispatcher.release(shard, new SingleSink(res, releaseJson, 'release', metrics, startedMs), 0, input.campaignId, input.requestId);
  }, scanRelease);

  post('/v1/decide/batch', 'decide_batch', (body) => batchOf(body, 'requests').map((item, i) => decideOf(item, i)), (res, items, startedMs) => {
    const shards = items.map((x) => dispatcher.shardOf(x.campaignId));
    ensureRoom(dispatcher, shards);
    const sink = new BatchSink(res, items.length, 'decisions', 'decide_batch', metrics, startedMs);
    items.forEach((x, i) => dispatcher.decide(shards[i]!, sink, i, x.campaignId, x.bidMicros, x.requestId));
  });

  post('/v1/spend/batch', 'spend_batch', (body) => batchOf(body, 'events').map((item, i) => spendOf(item, i)), (res, items, startedMs) => {
    const shards = items.map((x) => dispatcher.shardOf(x.campaignId));
    ensureRoom(dispatcher, shards);
    const sink = new BatchSink(res, items.length, 'results', 'spend_batch', metrics, startedMs);
    items.forEach((x, i) =>
      dispatcher.spend(shards[i]!, sink, i, x.campaignId, x.amountMicros, x.eventId, x.requestId),
    );
  });

  const healthz = (res: Res, head: boolean): void => {
    res.writeHeader('content-type', 'application/json');
    if (head) res.endWithoutBody();
    else res.end('{"status":"ok"}');
  };
  app.get('/healthz', (res: Res) => guarded(res, 'healthz', metrics, () => healthz(res, false)));
  app.head('/healthz', (res: Res) => guarded(res, 'healthz', metrics, () => healthz(res, true)));
  app.any('/healthz', (res: Res, req: HttpRequest) => methodNotAllowed(res, req, 'GET, HEAD'));

  const readyz = (res: Res, head: boolean): void => {
    const reason = state.shuttingDown ? 'shutting down' : state.notReadyReason();
    const degraded = state.degradedReason();
    const body =
      reason !== null
        ? JSON.stringify({ status: 'not_ready', reason })
        : JSON.stringify(degraded === null ? { status: 'ready' } : { status: 'degraded', reason: degraded });
    if (reason !== null) res.writeStatus('503 Service Unavailable');
    res.writeHeader('content-type', 'application/json');
    if (head) res.endWithoutBody();
    else res.end(body);
  };
  app.get('/readyz', (res: Res) => guarded(res, 'readyz', metrics, () => readyz(res, false)));
  app.head('/readyz', (res: Res) => guarded(res, 'readyz', metrics, () => readyz(res, true)));
  app.any('/readyz', (res: Res, req: HttpRequest) => methodNotAllowed(res, req, 'GET, HEAD'));

  attachStream(app, dispatcher, state, metrics, streamConnectionsMax);

  app.any('/*', (res: Res, req: HttpRequest) =>
    guarded(res, 'not_found', metrics, () => {
      const method = req.getMethod();
      const err = new ApiError('NOT_FOUND', `no route ${method.toUpperCase()} ${req.getUrl().slice(0, 100)}`);
      if (method === 'head') endHead(res, err);
      else sendError(res, err);
    }),
  );
  return app;
}

/**
 * Request smuggling guard (RFC 9112 §6.3): a request with two different Content-Length values, or
 * with both Content-Length and Transfer-Encoding, has no single end, and a proxy in front may
 * disagree with us about where the next request starts. uWS 20.30 accepts duplicate
 * Content-Length headers, so every header is looked at here.
 */
function framingError(req: HttpRequest): ApiError | null {
  seenContentLength = null;
  headerContentLength = '';
  conflict = false;
  transferEncoding = false;
  req.forEach(eachHeader);
  const sawContentLength = seenContentLength !== null;
  seenContentLength = null;
  if (conflict) return new ApiError('INVALID_FRAMING', 'conflicting Content-Length headers; send one');
  if (transferEncoding && sawContentLength) {
    return new ApiError('INVALID_FRAMING', 'both Content-Length and Transfer-Encoding; send one of them');
  }
  return null;
}

// framingError's state: one callback made once instead of a closure per request (the router runs
// on one thread, and forEach calls back synchronously).
let seenContentLength: string | null = null;
let conflict = false;
let transferEncoding = false;
/** The first Content-Length value the last framingError saw ('' when none), what getHeader would give. */
let headerContentLength = '';
function eachHeader(key: string, value: string): void {
  if (key === 'content-length') {
    if (seenContentLength !== null && seenContentLength !== value) conflict = true;
    else if (seenContentLength === null) headerContentLength = value;
    seenContentLength = value;
  } else if (key === 'transfer-encoding') transferEncoding = true;
}

/** Runs a synchronous handler, answering 500 INTERNAL if it throws. */
function guarded(res: Res, route: string, metrics: RouterMetrics, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    answerInternal(res, route, metrics, err);
  }
}

/** Counts and logs an unexpected exception, and answers 500 INTERNAL if the response is still open. */
function answerInternal(res: Res, route: string, metrics: RouterMetrics, err: unknown): void {
  reportInternal(metrics, route, err);
  trySendError(res, internalError, true);
  // Answered: a shard result that still arrives for this request must not write to it again.
  res.aborted = true;
}

/**
 * sendError for paths that may run after the response was already answered or the connection
 * closed (uWS throws on a finished response): the attempt is dropped then, never rethrown.
 */
function trySendError(res: Res, err: ApiError, closeConnection = false): void {
  try {
    sendError(res, err, closeConnection);
  } catch {
    res.aborted = true;
  }
}

/** A HEAD answer: the status and headers an error would have, and no body (RFC 9110 §9.3.2). */
function endHead(res: Res, err: ApiError, allow?: string): void {
  res.cork(() => {
    res.writeStatus(statusLine(err.status));
    if (allow !== undefined) res.writeHeader('allow', allow);
    res.writeHeader('content-type', 'application/json').endWithoutBody();
  });
}

function methodNotAllowed(res: Res, req: HttpRequest, allow: string): void {
  const err = new ApiError('METHOD_NOT_ALLOWED', `use ${allow}`);
  try {
    if (req.getMethod() === 'head') {
      endHead(res, err, allow);
      return;
    }
    res.cork(() => {
      res.writeStatus('405 Method Not Allowed').writeHeader('allow', allow).writeHeader('content-type', 'application/json');
      res.end(JSON.stringify(err));
    });
  } catch {
    res.aborted = true;
  }
}

/** Refuses the whole batch (nothing dispatched) when any shard it touches is saturated. */
function ensureRoom(dispatcher: Dispatcher, shards: number[]): void {
  const need = new Map<number, number>();
  for (const s of shards) need.set(s, (need.get(s) ?? 0) + 1);
  for (const [s, n] of need) if (!dispatcher.hasRoom(s, n)) throw overloaded;
}
