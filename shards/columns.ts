import { assert } from './money.js';
import { reasonNames } from './reasons.js';

/**
 * Shard-wide numeric state (bench/README.md, "Numbers in columns"): the numbers of a campaign, its
 * controller and breaker, of its counters and of today's traffic counts live in typed arrays of
 * the shard, one row per campaign (or per counters, per profile), instead of in fields of objects
 * where V8 keeps a double that is not a small integer as a 16-byte heap number behind an 8-byte
 * pointer. The objects stay (their public API is unchanged); they hold the row's chunk and the
 * row's offset in it, and their numeric properties are accessors over it.
 *
 * Rows are kept in chunks of 1,024 rows that never move: a pool grows by one chunk, never by
 * copying (no second copy during growth, a stale reference is impossible, and at most one chunk is
 * allocated and not yet used). A row is given back by the one object that owns it, and only when
 * that object stops using it: it then points at the pool's dead row, which no one else is ever
 * given (writes to it are harmless, reads are not another campaign's numbers). So a row is never
 * reused while an object still points at it.
 */
/**
 * Rows per chunk by default (a power of two: a row's chunk and offset are a shift and a mask): 1,024
 * campaign rows are 272 KB, large enough that a million campaigns hold about a thousand chunks,
 * small enough that a shard with a few campaigns allocates little. Wide rows take smaller chunks.
 */
const defaultChunkShift = 10;

export class RowPool<A extends Float64Array | Uint32Array> {
  /** The chunks, in row order: row r is in chunks[r / chunkRows] at ((r % chunkRows) × width). */
  readonly chunks: A[] = [];
  /** Where an object whose row was given back points: never handed out. */
  readonly dead: A;
  private readonly free: number[] = [];
  /** Rows ever handed out (the next new row). */
  private high = 0;
  /** Rows in use. */
  used = 0;

  private readonly chunkShift: number;
  private readonly chunkRows: number;

  constructor(
    readonly width: number,
    private readonly make: (length: number) => A,
    /** Rows per chunk, as a power of two. */
    chunkShift = defaultChunkShift,
  ) {
    assert(Number.isSafeInteger(width) && width > 0, 'a row pool needs a positive width');
    assert(Number.isSafeInteger(chunkShift) && chunkShift >= 0 && chunkShift <= 16, 'a chunk holds 1 to 65,536 rows');
    this.chunkShift = chunkShift;
    this.chunkRows = 1 << chunkShift;
    this.dead = make(width);
  }

  /** Takes a row; its numbers are whatever the last owner left (the new owner sets them). */
  take(): number {
    this.used++;
    const r = this.free.pop();
    if (r !== undefined) return r;
    const row = this.high++;
    if (row >= this.chunks.length * this.chunkRows) this.chunks.push(this.make(this.chunkRows * this.width));
    return row;
  }

  /** Gives a row back: the caller must hold no reference to it any more. */
  give(row: number): void {
    assert(Number.isSafeInteger(row) && row >= 0 && row < this.high, `row ${row} was never taken`);
    this.used--;
    this.free.push(row);
  }

  chunkOf(row: number): A {
    return this.chunks[row >> this.chunkShift]!;
  }

  offsetOf(row: number): number {
    return (row & (this.chunkRows - 1)) * this.width;
  }

  /** The row at `offset` of `chunk` (for an owner that kept the chunk and offset, not the row). */
  rowAt(chunk: A, offset: number): number {
    const k = this.chunks.indexOf(chunk);
    assert(k >= 0 && offset % this.width === 0, 'not a row of this pool');
    return k * this.chunkRows + offset / this.width;
  }

  /** Bytes of the typed arrays allocated (rows in use, free rows and the last chunk's unused rows). */
  get bytes(): number {
    return this.chunks.length * this.chunkRows * this.width * this.dead.BYTES_PER_ELEMENT;
  }
}

/** Null as a number in a Float64 column (no timestamp or count the code keeps is ever NaN). */
export const NONE = NaN;

/** A Float64 column value that encodes null as NaN, back as number | null. */
export function orNull(v: number): number | null {
  return v !== v ? null : v;
}

export function orNone(v: number | null): number {
  return v === null ? NONE : v;
}

/**
 * Layout of a campaign's row: the campaign's own numbers, then its controller's, then its
 * breaker's, so that a decision touches one row (a few cache lines) and not five objects.
 */
export const controllerWidth = 6;
/** The breaker's doubles (its times); its state, trips and whether it is armed are integers (breakerIntsWidth). */
export const breakerWidth = 3;
export const campaignOwnWidth = 23;
export const controllerAt = campaignOwnWidth;
export const breakerAt = controllerAt + controllerWidth;
/**
 * The row's last doubles hold 32-bit integers, read through an Int32Array over the same chunk
 * (ShardColumns.intsOf): flags, codes, small counts and row numbers, two to a double, so that they
 * do not take 8 bytes each. The campaign's come first (campaignIntsWidth), then the breaker's.
 */
export const intsAt = breakerAt + breakerWidth;
export const campaignIntsWidth = 10;
export const breakerIntsAt = campaignIntsWidth;
export const breakerIntsWidth = 3;
export const campaignWidth = intsAt + Math.ceil((campaignIntsWidth + breakerIntsWidth) / 2);

/** Counters of one campaign since a point in time: 8 counts and the row of its denials (-1: none). */
export const countersWidth = 9;
export const deniedWidth = reasonNames.length;
/** Today's traffic counts of a campaign (or its profile): one per local hour. */
export const hourCountsWidth = 24;
/** Where an hour's count saturates (a Uint32Array's largest value: 1.19 million opportunities a second for an hour). */
export const hourCountMax = 0xffffffff;
/**
 * A learned traffic profile: opportunities per ms for each local weekday × 24 + hour, NaN where
 * nothing was learned (shards/pacing/profile.ts). 168 doubles a row; 128 rows a chunk (172 KB), so
 * a shard with a few learned profiles does not hold a 1.4 MB chunk.
 */
export const densityWidth = 168;
const densityChunkShift = 7;


/** The pools of one shard (every campaign, shadow and profile of it takes its rows here). */
export class ShardColumns {
  readonly campaigns = new RowPool<Float64Array>(campaignWidth, (n) => new Float64Array(n));
  readonly counters = new RowPool<Float64Array>(countersWidth, (n) => new Float64Array(n));
  readonly denied = new RowPool<Float64Array>(deniedWidth, (n) => new Float64Array(n));
  readonly hourCounts = new RowPool<Uint32Array>(hourCountsWidth, (n) => new Uint32Array(n));
  readonly densities = new RowPool<Float64Array>(densityWidth, (n) => new Float64Array(n), densityChunkShift);

  private readonly ints = new WeakMap<Float64Array, Int32Array>();

  /**
   * The Int32Array over the same memory as a chunk of the campaigns pool (or its dead row): the
   * integers of a row at `o` start at index (o + intsAt) × 2. One view per chunk, made on first use.
   */
  intsOf(chunk: Float64Array): Int32Array {
    let v = this.ints.get(chunk);
    if (v === undefined) this.ints.set(chunk, (v = new Int32Array(chunk.buffer, chunk.byteOffset, chunk.length * 2)));
    return v;
  }

  /** Bytes of typed arrays held by the pools. */
  get bytes(): number {
    return this.campaigns.bytes + this.counters.bytes + this.denied.bytes + this.hourCounts.bytes + this.densities.bytes;
  }
}

let fallback: ShardColumns | null = null;

/**
 * The pools of objects made without a shard's (tests, a TrafficProfile on its own): one per
 * thread, made on first use.
 */
export function defaultColumns(): ShardColumns {
  return (fallback ??= new ShardColumns());
}
