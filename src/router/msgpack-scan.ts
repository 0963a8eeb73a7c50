import { ApiError } from '../http/errors.js';

/**
 * A linear, non-recursive check of a stream frame before msgpackr decodes it: the frame must hold
 * exactly one well-formed value of the plain MessagePack types (nil, booleans, integers, floats,
 * strings, binary, arrays, maps), nested at most `depthMax` containers deep. Extension types are
 * refused whatever their number: msgpackr decodes several by default into values that the rest of
 * the router never expects (0x42 BigInt, 0x69/0x70 structured-clone references that can build
 * cycles, 0x72 records, 0x73 Set, 0x74 typed arrays, 0xff timestamps, …), and extensions are
 * registered process-wide in msgpackr, so no decoder option can be relied on to turn them all off.
 *
 * It also checks every declared length against the bytes left, so a header that announces 2^32
 * items cannot make the decoder allocate for them. Returns null when the frame is acceptable.
 */
export function scanFrame(b: Uint8Array, depthMax: number): ApiError | null {
  const n = b.length;
  if (n === 0) return new ApiError('INVALID_JSON', 'frame is empty; send a MessagePack array of operations');
  const parents: number[] = [];
  let pending = 1; // values still to read in the innermost open container (the top level holds one)
  let pos = 0;
  for (;;) {
    while (pending === 0) {
      const up = parents.pop();
      if (up === undefined) {
        return pos === n ? null : new ApiError('INVALID_JSON', `frame has ${n - pos} bytes after its value`);
      }
      pending = up;
    }
    if (pos >= n) return truncated();
    const t = b[pos++]!;
    pending--;
    let skip = 0;
    let items = 0;
    if (t <= 0x7f || t >= 0xe0) continue;
    if (t <= 0x8f) items = (t & 0x0f) * 2;
    else if (t <= 0x9f) items = t & 0x0f;
    else if (t <= 0xbf) skip = t & 0x1f;
    else {
      switch (t) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          continue;
        case 0xc4: // bin 8
        case 0xd9: // str 8
          if (pos + 1 > n) return truncated();
          skip = 1 + b[pos]!;
          break;
        case 0xc5: // bin 16
        case 0xda: // str 16
          if (pos + 2 > n) return truncated();
          skip = 2 + u16(b, pos);
          break;
        case 0xc6: // bin 32
        case 0xdb: // str 32
          if (pos + 4 > n) return truncated();
          skip = 4 + u32(b, pos);
          break;
        case 0xcc: case 0xd0: skip = 1; break; // (u)int 8
        case 0xcd: case 0xd1: skip = 2; break; // (u)int 16
        case 0xca: case 0xce: case 0xd2: skip = 4; break; // float 32, (u)int 32
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break; // float 64, (u)int 64
        case 0xdc: // array 16
        case 0xde: // map 16
          if (pos + 2 > n) return truncated();
          items = u16(b, pos) * (t === 0xde ? 2 : 1);
          pos += 2;
          break;
        case 0xdd: // array 32
        case 0xdf: // map 32
          if (pos + 4 > n) return truncated();
          items = u32(b, pos) * (t === 0xdf ? 2 : 1);
          pos += 4;
          break;
        case 0xc7: case 0xc8: case 0xc9: // ext 8/16/32
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: // fixext 1/2/4/8/16
          return unsupported(b, pos, t);
        default: // 0xc1 is never used
          return new ApiError('INVALID_JSON', `frame is not valid MessagePack (byte 0x${t.toString(16)} at offset ${pos - 1})`);
      }
    }
    if (skip > 0) {
      if (pos + skip > n) return truncated();
      pos += skip;
      continue;
    }
    if (items === 0) continue;
    // Every item takes at least one byte: a header announcing more than the bytes left lies.
    if (items > n - pos) return truncated();
    if (parents.length + 1 > depthMax) {
      return new ApiError('TOO_DEEP', `frame nests arrays or maps more than ${depthMax} deep; a frame is an array of operation arrays`);
    }
    parents.push(pending);
    pending = items;
  }
}

function u16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

function u32(b: Uint8Array, at: number): number {
  return b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}

function truncated(): ApiError {
  return new ApiError('INVALID_JSON', 'frame is not valid MessagePack (it ends inside a value)');
}

/** The extension's type byte follows its length (ext 8/16/32) or comes first (fixext). */
function unsupported(b: Uint8Array, pos: number, t: number): ApiError {
  const typeAt = t === 0xc7 ? pos + 1 : t === 0xc8 ? pos + 2 : t === 0xc9 ? pos + 4 : pos;
  const type = typeAt < b.length ? b[typeAt]! : undefined;
  const which = type === undefined ? '' : ` (type 0x${type.toString(16).padStart(2, '0')})`;
  return new ApiError(
    'UNSUPPORTED_TYPE',
    `frame uses a MessagePack extension${which}; only nil, booleans, integers, floats, strings, binary, arrays and maps are accepted`,
  );
}
