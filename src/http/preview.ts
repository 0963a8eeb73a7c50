/**
 * A short, printable preview of a client's value for an error message. It never throws and never
 * recurses: objects and arrays are described by their shape, not serialised, so a value nested
 * thousands of levels deep, a cycle or a BigInt costs the same as a number. (JSON.stringify on a
 * hostile value is how one request used to stop the whole process.)
 */
const previewCharsMax = 40;

export function preview(v: unknown): string {
  try {
    switch (typeof v) {
      case 'string':
        return clip(JSON.stringify(v.length > previewCharsMax ? v.slice(0, previewCharsMax) : v));
      case 'number':
      case 'boolean':
        return String(v);
      case 'bigint':
        return clip(`${v.toString()}n`);
      case 'undefined':
        return 'nothing';
      case 'object':
        if (v === null) return 'null';
        if (Array.isArray(v)) return `an array of ${v.length} items`;
        if (ArrayBuffer.isView(v)) return `${v.byteLength} bytes of binary`;
        return 'an object';
      default:
        return `a ${typeof v}`;
    }
  } catch {
    return 'an unprintable value';
  }
}

function clip(s: string): string {
  return s.length > previewCharsMax ? `${s.slice(0, previewCharsMax)}…` : s;
}
