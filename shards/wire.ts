/**
 * The binary layout of hot-path messages between the router (main thread) and a shard worker.
 *
 * The router collects every operation for a shard during one event-loop turn and posts them as one
 * ArrayBuffer (transferred, not cloned); the shard answers with one ArrayBuffer of results per
 * batch, and later ones for spend acknowledgements that wait for their flush. bench/messaging.ts
 * compares this layout with msgpackr and structured clone; ARCHITECTURE.md gives the figures.
 *
 * All integers are little-endian. IDs are ASCII (the router validates them), written as latin1.
 *
 *   batch   := u32 count, op*
 *   op      := u8 kind, u32 slot, str campaignId, body
 *   DECIDE  body := f64 bidMicros (-1 when absent), str requestId ('' when absent)
 *   SPEND   body := f64 amountMicros, str eventId, str requestId
 *   RELEASE body := str requestId
 *   str     := u8 length, bytes
 *
 *   results := u32 header (bit 31: late, bits 0-30: count), result*
 *              late = spend acknowledgements sent after their flush, not the reply to a batch
 *   DECIDE  result := u8 kind, u32 slot, u8 reason, u8 flags, f32 throttle, f32 pacingIndex,
 *                     u8 wouldReason (the reason a SHADOW-mode campaign would have answered; 0 otherwise)
 *   SPEND   result := u8 kind, u32 slot, u8 status, u8 flags
 *   RELEASE result := u8 kind, u32 slot, u8 status
 */
export const OpKind = { DECIDE: 1, SPEND: 2, RELEASE: 3 } as const;
export type OpKindCode = (typeof OpKind)[keyof typeof OpKind];

/** Decide result flags. */
export const DecideFlag = {
  ALLOW: 1,
  RESERVED: 2,
  /** The campaign is in SHADOW mode: the answer allows, wouldReason is what it would have answered. */
  SHADOW: 4,
} as const;
/** Spend result flags: whether a reservation was settled, whether the price exceeded the bid, and whether a requestId found no live reservation (expired, or never made). */
export const SpendFlag = { MATCHED_RESERVATION: 1, OVER_BID: 2, UNMATCHED: 4 } as const;

const initialBytes = 16 * 1024;

class GrowableBuffer {
  protected buf: Buffer = Buffer.allocUnsafe(initialBytes);
  protected off = 4;
  protected n = 0;

  get count(): number {
    return this.n;
  }

  protected ensure(bytes: number): void {
    if (this.off + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off + bytes) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  protected str(value: string): void {
    const len = value.length;
    const b = this.buf;
    let o = this.off;
    b[o++] = len;
    // IDs are short ASCII: a plain loop is cheaper than crossing into Buffer.write's C++.
    for (let i = 0; i < len; i++) b[o++] = value.charCodeAt(i);
    this.off = o;
  }

  /** Bit 31 of the header: set on result batches that are not the reply to an op batch. */
  protected headerFlags = 0;

  /** Copies the batch into an exactly sized ArrayBuffer (safe to transfer) and resets. */
  take(): ArrayBuffer {
    this.buf.writeUInt32LE((this.n | this.headerFlags) >>> 0, 0);
    const out = new ArrayBuffer(this.off);
    new Uint8Array(out).set(this.buf.subarray(0, this.off));
    this.off = 4;
    this.n = 0;
    return out;
  }
}

export class OpWriter extends GrowableBuffer {
  decide(slot: number, campaignId: string, bidMicros: number, requestId: string): void {
    this.ensure(1 + 4 + 1 + campaignId.length + 8 + 1 + requestId.length);
    const b = this.buf;
    b[this.off] = OpKind.DECIDE;
    b.writeUInt32LE(slot, this.off + 1);
    this.off += 5;
    this.str(campaignId);
    b.writeDoubleLE(bidMicros, this.off);
    this.off += 8;
    this.str(requestId);
    this.n++;
  }

  spend(slot: number, campaignId: string, amountMicros: number, eventId: string, requestId: string): void {
    this.ensure(1 + 4 + 1 + campaignId.length + 8 + 2 + eventId.length + requestId.length);
    const b = this.buf;
    b[this.off] = OpKind.SPEND;
    b.writeUInt32LE(slot, this.off + 1);
    this.off += 5;
    this.str(campaignId);
    b.writeDoubleLE(amountMicros, this.off);
    this.off += 8;
    this.str(eventId);
    this.str(requestId);
    this.n++;
  }

  release(slot: number, campaignId: string, requestId: string): void {
    this.ensure(1 + 4 + 2 + campaignId.length + requestId.length);
    const b = this.buf;
    b[this.off] = OpKind.RELEASE;
    b.writeUInt32LE(slot, this.off + 1);
    this.off += 5;
    this.str(campaignId);
    this.str(requestId);
    this.n++;
  }
}

/**
 * A cursor over a batch of operations: next() decodes one op into the reader's own fields, so a
 * batch of thousands of ops allocates only the strings it must.
 */
export class OpReader {
  kind: OpKindCode = OpKind.DECIDE;
  slot = 0;
  campaignId = '';
  /** Bid for DECIDE (-1 when absent), amount for SPEND. */
  micros = 0;
  eventId = '';
  requestId = '';
  remaining = 0;
  private buf: Buffer = Buffer.alloc(0);
  private off = 0;

  reset(data: ArrayBuffer): this {
    this.buf = Buffer.from(data);
    this.remaining = this.buf.readUInt32LE(0);
    this.off = 4;
    return this;
  }

  private str(): string {
    const len = this.buf[this.off]!;
    const start = this.off + 1;
    this.off = start + len;
    return len === 0 ? '' : this.buf.toString('latin1', start, start + len);
  }

  next(): boolean {
    if (this.remaining === 0) return false;
    this.remaining--;
    const b = this.buf;
    this.kind = b[this.off] as OpKindCode;
    this.slot = b.readUInt32LE(this.off + 1);
    this.off += 5;
    this.campaignId = this.str();
    switch (this.kind) {
      case OpKind.DECIDE:
        this.micros = b.readDoubleLE(this.off);
        this.off += 8;
        this.eventId = '';
        this.requestId = this.str();
        break;
      case OpKind.SPEND:
        this.micros = b.readDoubleLE(this.off);
        this.off += 8;
        this.eventId = this.str();
        this.requestId = this.str();
        break;
      case OpKind.RELEASE:
        this.micros = 0;
        this.eventId = '';
        this.requestId = this.str();
        break;
      default: {
        const bad: never = this.kind;
        throw new RangeError(`corrupt op batch: kind ${String(bad)}`);
      }
    }
    return true;
  }
}

export class ResultWriter extends GrowableBuffer {
  /** `late`: this writer's batches carry results that complete after their op batch was answered. */
  constructor(late = false) {
    super();
    this.headerFlags = late ? 0x8000_0000 : 0;
  }

  decide(slot: number, reason: number, flags: number, throttle: number, pacingIndex: number, wouldReason = 0): void {
    this.ensure(16);
    const b = this.buf;
    b[this.off] = OpKind.DECIDE;
    b.writeUInt32LE(slot, this.off + 1);
    b[this.off + 5] = reason;
    b[this.off + 6] = flags;
    b.writeFloatLE(throttle, this.off + 7);
    b.writeFloatLE(pacingIndex, this.off + 11);
    b[this.off + 15] = wouldReason;
    this.off += 16;
    this.n++;
  }

  spend(slot: number, status: number, flags: number): void {
    this.ensure(7);
    const b = this.buf;
    b[this.off] = OpKind.SPEND;
    b.writeUInt32LE(slot, this.off + 1);
    b[this.off + 5] = status;
    b[this.off + 6] = flags;
    this.off += 7;
    this.n++;
  }

  release(slot: number, status: number): void {
    this.ensure(6);
    const b = this.buf;
    b[this.off] = OpKind.RELEASE;
    b.writeUInt32LE(slot, this.off + 1);
    b[this.off + 5] = status;
    this.off += 6;
    this.n++;
  }
}

export class ResultReader {
  kind: OpKindCode = OpKind.DECIDE;
  slot = 0;
  /** Reason code for DECIDE, OpStatus for SPEND and RELEASE. */
  code = 0;
  flags = 0;
  throttle = 0;
  pacingIndex = 0;
  /** DECIDE with DecideFlag.SHADOW: the reason the campaign would have answered. */
  wouldReason = 0;
  remaining = 0;
  /** The batch holds late results (spend acknowledgements), not the reply to an op batch. */
  late = false;
  private buf: Buffer = Buffer.alloc(0);
  private off = 0;

  reset(data: ArrayBuffer): this {
    this.buf = Buffer.from(data);
    const header = this.buf.readUInt32LE(0);
    this.late = (header & 0x8000_0000) !== 0;
    this.remaining = header & 0x7fff_ffff;
    this.off = 4;
    return this;
  }

  next(): boolean {
    if (this.remaining === 0) return false;
    this.remaining--;
    const b = this.buf;
    this.kind = b[this.off] as OpKindCode;
    this.slot = b.readUInt32LE(this.off + 1);
    this.code = b[this.off + 5]!;
    switch (this.kind) {
      case OpKind.DECIDE:
        this.flags = b[this.off + 6]!;
        this.throttle = b.readFloatLE(this.off + 7);
        this.pacingIndex = b.readFloatLE(this.off + 11);
        this.wouldReason = b[this.off + 15]!;
        this.off += 16;
        break;
      case OpKind.SPEND:
        this.flags = b[this.off + 6]!;
        this.off += 7;
        break;
      case OpKind.RELEASE:
        this.flags = 0;
        this.off += 6;
        break;
      default: {
        const bad: never = this.kind;
        throw new RangeError(`corrupt result batch: kind ${String(bad)}`);
      }
    }
    return true;
  }
}
