import type { MessagePort } from 'node:worker_threads';
import { OpWriter, ResultReader } from '../../shards/wire.js';
import { shardOf } from '../hash.js';

/** This router thread's channel to one shard (a MessagePort of its own: PACER_ROUTERS). */
export type ShardLink = Pick<MessagePort, 'postMessage'>;

/** Receives the result of each operation it dispatched, by the index it gave. */
export interface ResultSink {
  result(index: number, r: ResultReader): void;
  /** The shard could not answer (it stopped): the operation's outcome is unknown. */
  fail(index: number): void;
}

/**
 * The router's side of the router-to-shard messaging. Operations for a shard accumulate in its
 * OpWriter and leave as one transferred ArrayBuffer: at setImmediate (the end of the event-loop
 * turn that brought them), or, while the shard still works on the previous batch, as soon as its
 * reply arrives. One batch per shard in flight makes batches grow with load (group commit) at the
 * cost of at most one shard round trip of waiting, so a thread hop costs one postMessage per shard
 * per batch however many requests the batch holds.
 *
 * Every operation holds a slot until its result returns; a shard has at most inFlightMax slots, so
 * memory stays bounded and a saturated shard is answered 503 at once instead of queueing.
 *
 * Each router thread has its own Dispatcher with its own channel to every shard: slots are this
 * router's numbers, and the shard answers every batch on the channel it came from.
 */
export class Dispatcher {
  private readonly writers: OpWriter[];
  private readonly inFlight: Int32Array;
  /** The shard has an op batch it has not replied to yet. */
  private readonly awaitingReply: Uint8Array;
  private readonly reader = new ResultReader();
  private sinks: (ResultSink | undefined)[] = [];
  private indices: number[] = [];
  private shardOfSlot: number[] = [];
  private readonly free: number[] = [];
  private scheduled = false;
  private immediate: NodeJS.Immediate | null = null;
  private readonly flushAll = (): void => this.flush();

  /** Told about an exception a sink let escape (main.ts counts and logs it). */
  onSinkError: (err: unknown) => void = () => {};

  constructor(
    private readonly workers: readonly ShardLink[],
    private readonly inFlightMax: number,
  ) {
    this.writers = workers.map(() => new OpWriter());
    this.inFlight = new Int32Array(workers.length);
    this.awaitingReply = new Uint8Array(workers.length);
  }

  get shards(): number {
    return this.workers.length;
  }

  /**
   * Requests the router has accepted and will dispatch at the end of this turn (see http.ts): they
   * count as pending so that a shutdown starting in the same turn waits for them too.
   */
  held = 0;

  /** Operations sent and not yet answered, over all shards, and those about to be sent. */
  get pending(): number {
    let n = this.held;
    for (const x of this.inFlight) n += x;
    return n;
  }

  shardOf(campaignId: string): number {
    return shardOf(campaignId, this.workers.length);
  }

  hasRoom(shard: number, ops: number): boolean {
    return this.inFlight[shard]! + ops <= this.inFlightMax;
  }

  private slot(shard: number, sink: ResultSink, index: number): number {
    let s = this.free.pop();
    if (s === undefined) {
      s = this.sinks.length;
      this.sinks.push(sink);
      this.indices.push(index);
      this.shardOfSlot.push(shard);
    } else {
      this.sinks[s] = sink;
      this.indices[s] = index;
      this.shardOfSlot[s] = shard;
    }
    this.inFlight[shard]!++;
    if (!this.scheduled) {
      this.scheduled = true;
      this.immediate = setImmediate(this.flushAll);
    }
    return s;
  }

  decide(shard: number, sink: ResultSink, index: number, campaignId: string, bidMicros: number, requestId: string): void {
    this.writers[shard]!.decide(this.slot(shard, sink, index), campaignId, bidMicros, requestId);
  }

  spend(
    shard: number,
    sink: ResultSink,
    index: number,
    campaignId: string,
    amountMicros: number,
    eventId: string,
    requestId: string,
  ): void {
    this.writers[shard]!.spend(this.slot(shard, sink, index), campaignId, amountMicros, eventId, requestId);
  }

  release(shard: number, sink: ResultSink, index: number, campaignId: string, requestId: string): void {
    this.writers[shard]!.release(this.slot(shard, sink, index), campaignId, requestId);
  }

  /** Sends what waits now instead of at the end of the turn (the router's deferred HTTP batch). */
  flushNow(): void {
    if (!this.scheduled) return;
    // The turn's setImmediate would find nothing to send; a pending immediate also makes the
    // event loop poll without blocking once more before it sleeps.
    clearImmediate(this.immediate!);
    this.flush();
  }

  private flush(): void {
    this.scheduled = false;
    this.immediate = null;
    for (let i = 0; i < this.writers.length; i++) if (this.awaitingReply[i] === 0) this.post(i);
  }

  private post(shard: number): void {
    const w = this.writers[shard]!;
    if (w.count === 0) return;
    const buf = w.take();
    this.awaitingReply[shard] = 1;
    this.workers[shard]!.postMessage(buf, [buf]);
  }

  /** Delivers a batch of results from a shard to the sinks that wait for them. */
  onResults(shard: number, data: ArrayBuffer): void {
    const r = this.reader.reset(data);
    if (!r.late) {
      this.awaitingReply[shard] = 0;
      this.post(shard);
    }
    while (r.next()) {
      const s = r.slot;
      const sink = this.sinks[s];
      if (sink === undefined) continue;
      const index = this.indices[s]!;
      this.release_(s, shard);
      this.deliver(sink, index, r);
    }
  }

  /**
   * A sink that throws must not keep the results after it in the batch from their sinks (their
   * clients would wait forever and their slots would leak): the sinks answer their own errors, and
   * anything still escaping is reported here.
   */
  private deliver(sink: ResultSink, index: number, r: ResultReader): void {
    try {
      sink.result(index, r);
    } catch (err) {
      this.onSinkError(err);
    }
  }

  /** A shard stopped: every operation waiting on it fails. */
  failShard(shard: number): void {
    this.awaitingReply[shard] = 0;
    for (let s = 0; s < this.sinks.length; s++) {
      const sink = this.sinks[s];
      if (sink === undefined || this.shardOfSlot[s] !== shard) continue;
      const index = this.indices[s]!;
      this.release_(s, shard);
      try {
        sink.fail(index);
      } catch (err) {
        this.onSinkError(err);
      }
    }
  }

  private release_(s: number, shard: number): void {
    this.sinks[s] = undefined;
    this.free.push(s);
    this.inFlight[shard]!--;
  }
}
