import { Packr, Unpackr } from 'msgpackr';
import uWS, { type TemplatedApp, type WebSocket } from 'uWebSockets.js';
import { limits } from '../../shards/limits.js';
import { OpStatus, reasonNames } from '../../shards/reasons.js';
import { DecideFlag, OpKind, type ResultReader, SpendFlag } from '../../shards/wire.js';
import { ApiError } from '../http/errors.js';
import type { RouterMetrics } from '../metrics.js';
import type { Dispatcher, ResultSink } from './dispatcher.js';
import type { RouterState } from './http.js';
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
 */
interface Conn {
  inFlight: number;
  closed: boolean;
}

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

type Result = unknown[];

function errorResult(id: unknown, err: ApiError): Result {
  return [0, id ?? null, err.code, err.message];
}

function toResult(id: unknown, r: ResultReader): Result {
  switch (r.kind) {
    case OpKind.DECIDE:
      return [
        1,
        id,
        (r.flags & DecideFlag.ALLOW) !== 0,
        reasonNames[r.code],
        (r.flags & DecideFlag.RESERVED) !== 0,
        Math.round(r.throttle * 10_000) / 10_000,
        Math.round(r.pacingIndex * 10_000) / 10_000,
      ];
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
  constructor(
    private readonly ws: WebSocket<Conn>,
    private readonly conn: Conn,
    private readonly ids: unknown[],
    private readonly results: Result[],
    dispatched: number,
  ) {
    this.left = dispatched;
  }

  result(index: number, r: ResultReader): void {
    this.results[index] = toResult(this.ids[index], r);
    this.conn.inFlight--;
    if (--this.left === 0) send(this.ws, this.conn, this.results);
  }

  fail(index: number): void {
    this.results[index] = errorResult(this.ids[index], new ApiError('INTERNAL', 'the shard stopped; outcome unknown'));
    this.conn.inFlight--;
    if (--this.left === 0) send(this.ws, this.conn, this.results);
  }
}

function send(ws: WebSocket<Conn>, conn: Conn, results: Result[]): void {
  if (conn.closed) return;
  const frame = packr.pack(results);
  ws.cork(() => ws.send(frame, true));
}

function isId(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

export function attachStream(app: TemplatedApp, dispatcher: Dispatcher, state: RouterState, metrics: RouterMetrics): void {
  app.ws<Conn>('/v1/stream', {
    compression: uWS.DISABLED,
    maxPayloadLength: limits.wsFrameBytesMax,
    maxBackpressure: limits.wsBackpressureBytesMax,
    closeOnBackpressureLimit: 1,
    idleTimeout: limits.wsIdleTimeoutSeconds,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      if (state.shuttingDown) {
        res.writeStatus('503 Service Unavailable').end();
        return;
      }
      res.upgrade<Conn>(
        { inFlight: 0, closed: false },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: () => {
      metrics.wsConnections++;
    },
    message: (ws, message, isBinary) => {
      const conn = ws.getUserData();
      metrics.request('stream');
      if (!isBinary) {
        send(ws, conn, [errorResult(null, new ApiError('INVALID_BODY', 'frames must be binary msgpack'))]);
        return;
      }
      let ops: unknown;
      try {
        ops = unpackr.unpack(Buffer.from(message));
      } catch {
        send(ws, conn, [errorResult(null, new ApiError('INVALID_JSON', 'frame is not valid msgpack'))]);
        return;
      }
      handleFrame(ws, conn, ops, dispatcher, state);
    },
    close: (ws) => {
      metrics.wsConnections--;
      ws.getUserData().closed = true;
    },
  });
}

function handleFrame(ws: WebSocket<Conn>, conn: Conn, ops: unknown, dispatcher: Dispatcher, state: RouterState): void {
  if (!Array.isArray(ops) || ops.length === 0 || ops.length > limits.batchOpsMax) {
    const msg = `a frame is an array of 1-${limits.batchOpsMax} operations`;
    send(ws, conn, [errorResult(null, new ApiError('INVALID_BODY', msg))]);
    return;
  }
  const n = ops.length;
  const ids: unknown[] = new Array(n);
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
      ids[i] = Array.isArray(op) ? (op[1] ?? null) : null;
      results[i] = errorResult(ids[i], new ApiError('INVALID_BODY', `operation ${i} must be [kind, id (uint32), …]`));
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
      if (!(err instanceof ApiError)) throw err;
      results[i] = errorResult(op[1], err);
    }
  }
  for (const [s, k] of need) {
    if (dispatcher.hasRoom(s, k)) continue;
    for (let i = 0; i < n; i++) {
      if (valid[i]?.shard === s) {
        results[i] = errorResult(ids[i], new ApiError('OVERLOADED', 'the shard owning this campaign is saturated'));
        valid[i] = null;
      }
    }
  }
  let dispatched = 0;
  for (const v of valid) if (v !== null) dispatched++;
  if (dispatched === 0) {
    send(ws, conn, results);
    return;
  }
  const sink = new FrameSink(ws, conn, ids, results, dispatched);
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
