/**
 * A MessagePack writer for the fuzz suite that can write what a conforming library would not:
 * every encoding of every type chosen explicitly (an integer as uint64 or int8, a string as str32),
 * extension values of any type with any payload, and nesting deeper than a library allows. The
 * generators build trees of `MsgNode` and encode them to bytes; truncating the bytes is the
 * generators' job.
 */
export type MsgNode =
  | { t: 'nil' }
  | { t: 'bool'; v: boolean }
  | { t: 'int'; v: bigint; enc: IntEncoding }
  | { t: 'f32' | 'f64'; v: number }
  | { t: 'str'; v: string; enc: LenEncoding }
  | { t: 'bin'; v: Uint8Array; enc: 8 | 16 | 32 }
  | { t: 'array'; v: MsgNode[]; enc: LenEncoding }
  | { t: 'map'; v: [MsgNode, MsgNode][]; enc: LenEncoding }
  | { t: 'ext'; type: number; data: Uint8Array; enc: ExtEncoding };

/** 'auto' is the shortest encoding that holds the value (what msgpackr writes). */
export type IntEncoding = 'auto' | 'u8' | 'u16' | 'u32' | 'u64' | 'i8' | 'i16' | 'i32' | 'i64';
export type LenEncoding = 'fix' | 8 | 16 | 32;
/** 'fixext' needs a payload of 1, 2, 4, 8 or 16 bytes; the others take any length. */
export type ExtEncoding = 'fixext' | 8 | 16 | 32;

class Writer {
  private readonly parts: Buffer[] = [];
  byte(...b: number[]): void {
    this.parts.push(Buffer.from(b.map((x) => x & 0xff)));
  }
  raw(b: Uint8Array): void {
    this.parts.push(Buffer.from(b));
  }
  uint(n: number, bytes: 1 | 2 | 4): void {
    const b = Buffer.alloc(bytes);
    if (bytes === 1) b.writeUInt8(n & 0xff);
    else if (bytes === 2) b.writeUInt16BE(n & 0xffff);
    else b.writeUInt32BE(n >>> 0);
    this.parts.push(b);
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function writeInt(w: Writer, v: bigint, enc: IntEncoding): void {
  const e = enc === 'auto' ? autoInt(v) : enc;
  const b = Buffer.alloc(8);
  // Values that do not fit the chosen encoding are written modulo its width, as a buggy client would.
  switch (e) {
    case 'fix': w.byte(Number(BigInt.asIntN(8, v))); return;
    case 'u8': w.byte(0xcc, Number(BigInt.asUintN(8, v))); return;
    case 'u16': w.byte(0xcd); w.uint(Number(BigInt.asUintN(16, v)), 2); return;
    case 'u32': w.byte(0xce); w.uint(Number(BigInt.asUintN(32, v)), 4); return;
    case 'u64': w.byte(0xcf); b.writeBigUInt64BE(BigInt.asUintN(64, v)); w.raw(b); return;
    case 'i8': w.byte(0xd0, Number(BigInt.asIntN(8, v))); return;
    case 'i16': w.byte(0xd1); w.uint(Number(BigInt.asUintN(16, v)), 2); return;
    case 'i32': w.byte(0xd2); w.uint(Number(BigInt.asUintN(32, v)), 4); return;
    case 'i64': w.byte(0xd3); b.writeBigInt64BE(BigInt.asIntN(64, v)); w.raw(b); return;
  }
}

function autoInt(v: bigint): Exclude<IntEncoding, 'auto'> | 'fix' {
  if (v >= -32n && v <= 127n) return 'fix';
  if (v >= 0n) return v <= 0xffn ? 'u8' : v <= 0xffffn ? 'u16' : v <= 0xffffffffn ? 'u32' : 'u64';
  return v >= -128n ? 'i8' : v >= -32768n ? 'i16' : v >= -2147483648n ? 'i32' : 'i64';
}

/** Writes a length header: fix (when it fits, else the smallest sized one), 8, 16 or 32 bits. */
function writeLen(w: Writer, n: number, enc: LenEncoding, fix: number | null, fixMax: number, codes: [number | null, number, number]): void {
  if (enc === 'fix' && fix !== null && n <= fixMax) return w.byte(fix | n);
  if ((enc === 8 || enc === 'fix') && codes[0] !== null && n <= 0xff) return (w.byte(codes[0]), w.uint(n, 1));
  if ((enc === 16 || enc === 8 || enc === 'fix') && n <= 0xffff) return (w.byte(codes[1]), w.uint(n, 2));
  w.byte(codes[2]);
  w.uint(n, 4);
}

function writeExt(w: Writer, type: number, data: Uint8Array, enc: ExtEncoding): void {
  const fixCode = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 }[data.length];
  if (enc === 'fixext' && fixCode !== undefined) w.byte(fixCode, type);
  else if ((enc === 8 || enc === 'fixext') && data.length <= 0xff) w.byte(0xc7, data.length, type);
  else if ((enc === 16 || enc === 8 || enc === 'fixext') && data.length <= 0xffff) (w.byte(0xc8), w.uint(data.length, 2), w.byte(type));
  else (w.byte(0xc9), w.uint(data.length, 4), w.byte(type));
  w.raw(data);
}

function write(w: Writer, n: MsgNode): void {
  switch (n.t) {
    case 'nil': return w.byte(0xc0);
    case 'bool': return w.byte(n.v ? 0xc3 : 0xc2);
    case 'int': return writeInt(w, n.v, n.enc);
    case 'f32': { const b = Buffer.alloc(4); b.writeFloatBE(n.v); w.byte(0xca); return w.raw(b); }
    case 'f64': { const b = Buffer.alloc(8); b.writeDoubleBE(n.v); w.byte(0xcb); return w.raw(b); }
    case 'str': {
      const bytes = Buffer.from(n.v, 'utf8');
      writeLen(w, bytes.length, n.enc, 0xa0, 31, [0xd9, 0xda, 0xdb]);
      return w.raw(bytes);
    }
    case 'bin': writeLen(w, n.v.length, n.enc, null, 0, [0xc4, 0xc5, 0xc6]); return w.raw(n.v);
    case 'array': writeLen(w, n.v.length, n.enc, 0x90, 15, [null, 0xdc, 0xdd]); return n.v.forEach((x) => write(w, x));
    case 'map':
      writeLen(w, n.v.length, n.enc, 0x80, 15, [null, 0xde, 0xdf]);
      return n.v.forEach(([k, v]) => (write(w, k), write(w, v)));
    case 'ext': return writeExt(w, n.type, n.data, n.enc);
  }
}

export function encode(n: MsgNode): Buffer {
  const w = new Writer();
  write(w, n);
  return w.done();
}

/** `depth` one-element arrays around a 1 (`91 91 … 01`), written without recursion. */
export function deepArrayBytes(depth: number): Buffer {
  return Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0x01])]);
}

// Shorthands for building trees in generators and regression cases.
export const nil: MsgNode = { t: 'nil' };
export const int = (v: number | bigint, enc: IntEncoding = 'auto'): MsgNode => ({ t: 'int', v: BigInt(v), enc });
export const str = (v: string, enc: LenEncoding = 'fix'): MsgNode => ({ t: 'str', v, enc });
export const arr = (...v: MsgNode[]): MsgNode => ({ t: 'array', v, enc: 'fix' });
