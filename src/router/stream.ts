import { Packr, Unpackr } from 'msgpackr';
import uWS, { type TemplatedApp, type WebSocket } from 'uWebSockets.js';
import { limits } from '../../shards/limits.js';
import { OpStatus, reasonNames } from '../../shards/reasons.js';
import { DecideFlag, OpKind, type ResultReader, SpendFlag } from '../../shards/wire.js';
import { ApiError, statusLine } from '../http/errors.js';
import type { RouterMetrics } from '../metrics.js';
import type { Dispatcher, ResultSink } from './dispatcher.js';
import type { RouterState } from './http.js';
import { reportInternal } from './internal.js';
import { scanFrame } from './msgpack-scan.js';
import { resultError } from './render.js';
import { decideOf, releaseOf, spendOf } from './validate.js';

/**
 * WebSocket /v1/stream: binary msgpack frames, each a batch of operations with correlation IDs,
 * answered by one frame per request frame (docs/stream-protocol.md is the client author's guide).
 *
 * Backpressure: a connection may have wsInFlightOpsMax operations outstanding, and while its send
 * buffer holds more than half of wsBackpressureBytesMax new frames are refused with OVERLOADED
 * results instead of being processed; past the full limit uWS closes the connection. So a client
 * that does not read can never make the server buffer without bound.
 *
 * Hostile frames: scanFrame admits only plain MessagePack (no extension types, bounded nesting,
 * honest lengths) before msgpackr decodes anything, correlation IDs that are not uint32 are
 * answered as null (never echoed), and every handler turns an unexpected exception into an INTERNAL
 * error result, so no frame can stop the router thread.
 */
interface Conn {
  inFlight: number;
  closed: boolean;
}

const packr = new Packr({ useRecords: false });
/*
 * Plain MessagePack only: no records, no structured clone, maps as plain objects, 64-bit integers
 * as numbers (a value past 2^53 is then not a safe integer and is refused like any bad amount).
 * scanFrame has already refused every extension type before this decoder runs.
 */
const unpackr = new Unpackr({ useRecords: false, structuredClone: false, mapsAsObjects: true, int64AsType: 'number' });

type Result = unknown[];
/** A correlation ID as the client sent it when valid (a uint32), else null. */
type Id = number | null;

function errorResult(id: Id, err: ApiError): Result {
  return [0, id, err.code, err.message];
}

const internalResult = new ApiError('INTERNAL', 'the pacer failed to handle this operation; it changed nothing');

function toResult(id: Id, r: ResultReader): Result {
  switch (r.kind) {
    case OpKind.DECIDE: {
      const out: Result = [
        1,
        id,
        (r.flags & DecideFlag.ALLOW) !== 0,
        reasonNames[r.code],
        (r.flags & DecideFlag.RESERVED) !== 0,
        Math.round(r.throttle * 10_000) / 10_000,
        Math.round(r.pacingIndex * 10_000) / 10_000,
      ];
      // SHADOW mode, appended (older clients read the first seven): what it would have answered.
      if ((r.flags & DecideFlag.SHADOW) !== 0) out.push(r.wouldReason === 0, reasonNames[r.wouldReason]);
      return out;
    }
    case OpKind.SPEND: {
      const err = resultError(r);
      if (err !== null) return errorResult(id, err);
      return [
        2,
        id,
        r.code === OpStatus.APPLIED ? 'applied' : 'duplicate',
        (r.flags & SpendFlag.MATCHED_RESERVATION) !== 0,
        (r.flags & SpendFlag.OVER_BID) !== 0,
        (r.flags & SpendFlag.UNMATCHED) !== 0,
      ];
    }
    case OpKind.RELEASE: {
      const err = resultError(r);
      if (err !== null) return errorResult(id, err);
      return [3, id, r.code === OpStatus.RELEASED];
    }
    default: {
      const bad: never = r.kind;
      throw new RangeError(`unknown result kind ${String(bad)}`);
    }
  }
}

/** One request frame: collects its results and sends them as one frame when all are back. */
class FrameSink implements ResultSink {
  private left: number;
  /** Spends acknowledged in this answer frame (pacer_spend_ack_seconds). */
  private spends = 0;
  constructor(
    private readonly ws: WebSocket<Conn>,
    private readonly conn: Conn,
    private readonly ids: Id[],
    private readonly results: Result[],
    dispatched: number,
    private readonly metrics: RouterMetrics,
    /** When the frame was received (performance.now()), or -1 when it carries no spend. */
    private readonly startedMs: number,
  ) {
    this.left = dispatched;
  }

  result(index: number, r: ResultReader): void {
    try {
      if (r.kind === OpKind.SPEND && this.startedMs >= 0 && resultError(r) === null) this.spends++;
      this.results[index] = toResult(this.ids[index] ?? null, r);
    } catch (err) {
      reportInternal(this.metrics, 'stream', err);
      this.results[index] = errorResult(this.ids[index] ?? null, internalResult);
    }
    this.done();
  }

  fail(index: number): void {
    this.results[index] = errorResult(this.ids[index] ?? null, new ApiError('INTERNAL', 'the shard stopped; outcome unknown'));
    this.done();
  }

  private done(): void {
    this.conn.inFlight--;
    if (--this.left !== 0) return;
    sendSoon(this.ws, this.conn, this.results, this.metrics);
    if (this.spends > 0) this.metrics.spendAcked(this.startedMs);
  }
}

/**
 * Answer frames completed while the router reads a batch of results from a shard, by connection:
 * written at the end of that callback, one corked write per connection instead of one per frame
 * (a flush's acknowledgements for a connection leave in one syscall). msgpackr's returned buffers
 * stay valid until then: each pack writes after the previous one in its buffer.
 */
const outbox = new Map<WebSocket<Conn>, { conn: Conn; frames: Buffer[]; metrics: RouterMetrics }>();
let outboxScheduled = false;

function sendSoon(ws: WebSocket<Conn>, conn: Conn, results: Result[], metrics: RouterMetrics): void {
  if (conn.closed) return;
  let frame: Buffer;
  try {
    frame = packr.pack(results);
  } catch (err) {
    reportInternal(metrics, 'stream', err);
    return;
  }
  let q = outbox.get(ws);
  if (q === undefined) outbox.set(ws, (q = { conn, frames: [], metrics }));
  q.frames.push(frame);
  if (!outboxScheduled) {
    outboxScheduled = true;
    queueMicrotask(flushOutbox);
  }
}

function flushOutbox(): void {
  outboxScheduled = false;
  for (const [ws, q] of outbox) {
    // A connection closed meanwhile has no socket to write to (uWS throws on a closed one).
    if (q.conn.closed) continue;
    try {
      ws.cork(() => {
        for (const f of q.frames) ws.send(f, true);
      });
    } catch (err) {
      reportInternal(q.metrics, 'stream', err);
    }
  }
  outbox.clear();
}

function send(ws: WebSocket<Conn>, conn: Conn, results: Result[], metrics: RouterMetrics): void {
  if (conn.closed) return;
  try {
    const frame = packr.pack(results);
    ws.cork(() => ws.send(frame, true));
  } catch (err) {
    reportInternal(metrics, 'stream', err);
  }
}

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

const frameError = (err: ApiError): Result[] => [errorResult(null, err)];

/** Decodes a binary frame, or answers why not. */
function decodeFrame(message: ArrayBuffer): { ops: unknown } | { error: ApiError } {
  const bytes = new Uint8Array(message);
  const refused = scanFrame(bytes, limits.wsFrameDepthMax);
  if (refused !== null) return { error: refused };
  try {
    return { ops: unpackr.unpack(Buffer.from(message)) };
  } catch {
    return { error: new ApiError('INVALID_JSON', 'frame is not valid MessagePack') };
  }
}

/** An upgrade refused with a coded JSON answer (the client sees an HTTP status, not a WebSocket). */
function refuseUpgrade(res: uWS.HttpResponse, err: ApiError): void {
  res.cork(() => {
    res.writeStatus(statusLine(err.status)).writeHeader('content-type', 'application/json');
    if (err.status === 503) res.writeHeader('retry-after', String(limits.retryAfterSeconds));
    res.end(JSON.stringify(err), true);
  });
}

export function attachStream(
  app: TemplatedApp,
  dispatcher: Dispatcher,
  state: RouterState,
  metrics: RouterMetrics,
  connectionsMax: number,
): void {
  app.ws<Conn>('/v1/stream', {
    compression: uWS.DISABLED,
    maxPayloadLength: limits.wsFrameBytesMax,
    maxBackpressure: limits.wsBackpressureBytesMax,
    closeOnBackpressureLimit: 1,
    idleTimeout: limits.wsIdleTimeoutSeconds,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      try {
        if (state.shuttingDown) {
          refuseUpgrade(res, new ApiError('SHUTTING_DOWN', 'the pacer is shutting down; connect to another instance'));
          return;
        }
        if ((state.streamConnections?.open ?? metrics.wsConnections) >= connectionsMax) {
          metrics.error('stream', 'TOO_MANY_CONNECTIONS');
          refuseUpgrade(
            res,
            new ApiError('TOO_MANY_CONNECTIONS', `${connectionsMax} stream connections are open (PACER_STREAM_CONNECTIONS_MAX); retry later or use fewer`),
          );
          return;
        }
        res.upgrade<Conn>(
          { inFlight: 0, closed: false },
          req.getHeader('sec-websocket-key'),
          req.getHeader('sec-websocket-protocol'),
          req.getHeader('sec-websocket-extensions'),
          context,
        );
      } catch (err) {
        reportInternal(metrics, 'stream_upgrade', err);
        try {
          refuseUpgrade(res, new ApiError('INTERNAL', 'the pacer failed to open this connection'));
        } catch {
          // The response was already answered or upgraded.
        }
      }
    },
    open: () => {
      metrics.wsConnections++;
      state.streamConnections?.add(1);
    },
    message: (ws, message, isBinary) => {
      const conn = ws.getUserData();
      try {
        metrics.request('stream');
        if (!isBinary) {
          metrics.error('stream', 'INVALID_BODY');
          send(ws, conn, frameError(new ApiError('INVALID_BODY', 'frames must be binary MessagePack')), metrics);
          return;
        }
        const decoded = decodeFrame(message);
        if ('error' in decoded) {
          metrics.error('stream', decoded.error.code);
          send(ws, conn, frameError(decoded.error), metrics);
          return;
        }
        handleFrame(ws, conn, decoded.ops, dispatcher, state, metrics);
      } catch (err) {
        reportInternal(metrics, 'stream', err);
        send(ws, conn, frameError(internalResult), metrics);
      }
    },
    close: (ws) => {
      metrics.wsConnections--;
      state.streamConnections?.add(-1);
      ws.getUserData().closed = true;
    },
  });
}

function handleFrame(
  ws: WebSocket<Conn>,
  conn: Conn,
  ops: unknown,
  dispatcher: Dispatcher,
  state: RouterState,
  metrics: RouterMetrics,
): void {
  // The start of a spend's acknowledgement time (the frame was decoded just before).
  const receivedMs = performance.now();
  if (!Array.isArray(ops) || ops.length === 0 || ops.length > limits.batchOpsMax) {
    const msg = `a frame is an array of 1-${limits.batchOpsMax} operations`;
    send(ws, conn, frameError(new ApiError('INVALID_BODY', msg)), metrics);
    return;
  }
  const n = ops.length;
  const ids: Id[] = new Array(n);
  const results: Result[] = new Array(n);
  const refuse =
    state.shuttingDown
      ? new ApiError('SHUTTING_DOWN', 'the pacer is shutting down')
      : conn.inFlight + n > limits.wsInFlightOpsMax || ws.getBufferedAmount() > limits.wsBackpressureBytesMax / 2
        ? new ApiError('OVERLOADED', 'too many operations in flight on this connection; read your answers')
        : null;
  // Validate everything first: a frame is dispatched whole or its bad items answered with errors.
  type Op =
    | { kind: 1; shard: number; input: ReturnType<typeof decideOf> }
    | { kind: 2; shard: number; input: ReturnType<typeof spendOf> }
    | { kind: 3; shard: number; input: ReturnType<typeof releaseOf> };
  const valid: (Op | null)[] = new Array(n);
  const need = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const op = ops[i];
    valid[i] = null;
    if (!Array.isArray(op) || !isId(op[1])) {
      // The ID is not echoed: it is not a uint32, so it could be anything the client sent.
      ids[i] = null;
      results[i] = errorResult(null, new ApiError('INVALID_BODY', `operation ${i} must be [kind, id (uint32 0-4294967295), …]`));
      continue;
    }
    ids[i] = op[1];
    if (refuse !== null) {
      results[i] = errorResult(op[1], refuse);
      continue;
    }
    try {
      let v: Op;
      switch (op[0]) {
        case OpKind.DECIDE: {
          const input = decideOf({ campaignId: op[2], bidMicros: op[3] ?? undefined, requestId: op[4] ?? undefined }, i);
          v = { kind: 1, shard: dispatcher.shardOf(input.campaignId), input };
          break;
        }
        case OpKind.SPEND: {
          const input = spendOf({ campaignId: op[2], eventId: op[3], amountMicros: op[4], requestId: op[5] ?? undefined }, i);
          v = { kind: 2, shard: dispatcher.shardOf(input.campaignId), input };
          break;
        }
        case OpKind.RELEASE: {
          const input = releaseOf({ campaignId: op[2], requestId: op[3] }, i);
          v = { kind: 3, shard: dispatcher.shardOf(input.campaignId), input };
          break;
        }
        default:
          throw new ApiError('INVALID_BODY', `operation ${i}: kind must be 1 (decide), 2 (spend) or 3 (release)`);
      }
      valid[i] = v;
      need.set(v.shard, (need.get(v.shard) ?? 0) + 1);
    } catch (err) {
      if (err instanceof ApiError) results[i] = errorResult(op[1], err);
      else {
        reportInternal(metrics, 'stream', err);
        results[i] = errorResult(op[1], internalResult);
      }
    }
  }
  for (const [s, k] of need) {
    if (dispatcher.hasRoom(s, k)) continue;
    for (let i = 0; i < n; i++) {
      if (valid[i]?.shard === s) {
        results[i] = errorResult(ids[i] ?? null, new ApiError('OVERLOADED', 'the shard owning this campaign is saturated'));
        valid[i] = null;
      }
    }
  }
  let dispatched = 0;
  let spends = false;
  for (const v of valid) {
    if (v === null) continue;
    dispatched++;
    if (v.kind === 2) spends = true;
  }
  if (dispatched === 0) {
    send(ws, conn, results, metrics);
    return;
  }
  const sink = new FrameSink(ws, conn, ids, results, dispatched, metrics, spends ? receivedMs : -1);
  conn.inFlight += dispatched;
  for (let i = 0; i < n; i++) {
    const v = valid[i];
    if (v === null || v === undefined) continue;
    switch (v.kind) {
      case 1:
        dispatcher.decide(v.shard, sink, i, v.input.campaignId, v.input.bidMicros, v.input.requestId);
        break;
      case 2:
        dispatcher.spend(v.shard, sink, i, v.input.campaignId, v.input.amountMicros, v.input.eventId, v.input.requestId);
        break;
      case 3:
        dispatcher.release(v.shard, sink, i, v.input.campaignId, v.input.requestId);
        break;
    }
  }
}
