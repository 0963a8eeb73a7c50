/**
 * A scanner for the bodies of the hot single-operation routes (/v1/decide, /v1/spend,
 * /v1/release): a flat JSON object whose keys are among a route's few fields and whose values are
 * ASCII strings without escapes or non-negative integers. It reads the bytes uWS handed over in
 * place, without decoding them into a string first and without JSON.parse (which internalises
 * every key and builds a generic object: about a tenth of the router thread's time under load,
 * profile in bench/README.md).
 *
 * It accepts only what it can read exactly as JSON.parse would, and returns the same values
 * JSON.parse would. Everything else (a key it does not know, a key twice, escapes, non-ASCII
 * bytes, a fraction, an exponent, a minus sign, literals, nesting, invalid JSON) returns
 * undefined: the caller then takes the general path, JSON.parse and the same validation, so every
 * error answer stays the one the general path gives.
 */

const enum Ch {
  Tab = 0x09,
  Lf = 0x0a,
  Cr = 0x0d,
  Space = 0x20,
  Quote = 0x22,
  Comma = 0x2c,
  Zero = 0x30,
  Nine = 0x39,
  Colon = 0x3a,
  Backslash = 0x5c,
  OpenBrace = 0x7b,
  CloseBrace = 0x7d,
}

/** More digits than this may not be a safe integer: the general path decides. */
const digitsMax = 15;

/**
 * The fields of one route. `scan` fills `values` by field index (undefined when absent) and
 * returns true, or returns false for anything it does not read exactly.
 */
export class FlatScanner {
  private readonly keys: Uint8Array[];
  readonly values: (string | number | undefined)[];

  constructor(readonly fields: readonly string[]) {
    this.keys = fields.map((f) => Uint8Array.from(f, (c) => c.charCodeAt(0)));
    this.values = fields.map(() => undefined);
  }

  scan(b: Buffer): boolean {
    const values = this.values;
    for (let k = 0; k < values.length; k++) values[k] = undefined;
    const n = b.length;
    let i = skipWs(b, 0);
    if (b[i] !== Ch.OpenBrace) return false;
    i = skipWs(b, i + 1);
    if (b[i] === Ch.CloseBrace) return skipWs(b, i + 1) === n;
    for (;;) {
      // Key.
      if (b[i] !== Ch.Quote) return false;
      const keyStart = i + 1;
      const keyEnd = stringEnd(b, keyStart);
      if (keyEnd < 0) return false;
      const k = this.field(b, keyStart, keyEnd);
      // An unknown key, or one seen before (JSON.parse keeps the last): the general path.
      if (k < 0 || values[k] !== undefined) return false;
      i = skipWs(b, keyEnd + 1);
      if (b[i] !== Ch.Colon) return false;
      i = skipWs(b, i + 1);
      // Value.
      const c = b[i];
      if (c === Ch.Quote) {
        const end = stringEnd(b, i + 1);
        if (end < 0) return false;
        values[k] = latin1(b, i + 1, end);
        i = end + 1;
      } else if (c !== undefined && c >= Ch.Zero && c <= Ch.Nine) {
        let j = i;
        let v = 0;
        while (j < n && b[j]! >= Ch.Zero && b[j]! <= Ch.Nine) v = v * 10 + (b[j++]! - Ch.Zero);
        const digits = j - i;
        // A leading zero before more digits is invalid JSON; a fraction or an exponent is not an
        // integer this scanner reads.
        if (digits > digitsMax || (c === Ch.Zero && digits > 1)) return false;
        const next = b[j];
        if (next === 0x2e || next === 0x65 || next === 0x45) return false;
        values[k] = v;
        i = j;
      } else return false;
      i = skipWs(b, i);
      if (b[i] === Ch.Comma) {
        i = skipWs(b, i + 1);
        continue;
      }
      if (b[i] !== Ch.CloseBrace) return false;
      return skipWs(b, i + 1) === n;
    }
  }

  private field(b: Uint8Array, start: number, end: number): number {
    const len = end - start;
    outer: for (let k = 0; k < this.keys.length; k++) {
      const key = this.keys[k]!;
      if (key.length !== len) continue;
      for (let j = 0; j < len; j++) if (key[j] !== b[start + j]) continue outer;
      return k;
    }
    return -1;
  }
}

function skipWs(b: Uint8Array, i: number): number {
  for (;;) {
    const c = b[i];
    if (c !== Ch.Space && c !== Ch.Tab && c !== Ch.Lf && c !== Ch.Cr) return i;
    i++;
  }
}

/**
 * The index of the closing quote of a string starting at `i`, or -1 when it has an escape, a
 * control character (invalid in JSON) or a non-ASCII byte (left to the UTF-8 decoder), or no end.
 */
function stringEnd(b: Uint8Array, i: number): number {
  const n = b.length;
  for (; i < n; i++) {
    const c = b[i]!;
    if (c === Ch.Quote) return i;
    if (c === Ch.Backslash || c < Ch.Space || c >= 0x80) return -1;
  }
  return -1;
}

/** ASCII bytes as a string (the scanner let no other byte through): a one-byte string, no decoding. */
function latin1(b: Buffer, start: number, end: number): string {
  return b.toString('latin1', start, end);
}
