import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import { FlatScanner } from '../../src/router/json-scan.js';

const fields = ['campaignId', 'bidMicros', 'requestId'];

/** What the scanner made of a body, as an object with the same keys JSON.parse would give. */
function scanned(s: FlatScanner, body: Buffer): Record<string, unknown> | undefined {
  if (!s.scan(body)) return undefined;
  const out: Record<string, unknown> = {};
  s.fields.forEach((f, i) => {
    if (s.values[i] !== undefined) out[f] = s.values[i];
  });
  return out;
}

function parsed(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return 'INVALID';
  }
}

t.test('the common decide body is read without JSON.parse, with the values JSON.parse gives', async (t) => {
  const s = new FlatScanner(fields);
  for (const text of [
    '{"campaignId":"bench-1","bidMicros":1500,"requestId":"w1-2"}',
    ' { "requestId" : "r" ,\n\t"campaignId":"c" } \r\n',
    '{}',
    '{"campaignId":"c","bidMicros":0}',
    '{"campaignId":123}',
    '{"bidMicros":999999999999999}',
  ]) {
    const b = Buffer.from(text);
    t.same(scanned(s, b), JSON.parse(text), text);
  }
});

t.test('anything unusual is left to the general path (undefined), never misread', async (t) => {
  const s = new FlatScanner(fields);
  for (const text of [
    '{"campaignId":"a","campaignId":"b"}', // duplicate: JSON.parse keeps the last
    '{"campaignId":"a\\u0041"}', // escape
    '{"campaignId":"é"}', // non-ASCII
    '{"bidMicros":1.5}',
    '{"bidMicros":1e3}',
    '{"bidMicros":-1}',
    '{"bidMicros":-0}',
    '{"bidMicros":01}',
    '{"bidMicros":1234567890123456}', // 16 digits: maybe not a safe integer
    '{"bidMicros":true}',
    '{"bidMicros":null}',
    '{"bidMicros":{}}',
    '{"other":1}',
    '{"campaignId":"a",}',
    '{"campaignId":"a"} x',
    '{"campaignId":"a"',
    '\ufeff{"campaignId":"a"}',
    '[]',
    '',
    '{"campaignId":"a\tb"}', // a raw control character: invalid JSON
  ]) {
    t.equal(s.scan(Buffer.from(text)), false, text);
  }
});

t.test('on random bodies the scanner either declines or agrees with JSON.parse exactly', async (t) => {
  const s = new FlatScanner(fields);
  const key = fc.constantFrom('campaignId', 'bidMicros', 'requestId', 'eventId', 'campaignid', '');
  const value = fc.oneof(
    fc.string({ maxLength: 12 }).map((x) => JSON.stringify(x)),
    fc.nat().map(String),
    fc.double().map(String),
    fc.constantFrom('true', 'null', '-5', '007', '1e2', '"a\\"b"', '[1]', '{}'),
  );
  const ws = fc.constantFrom('', ' ', '\n', '\t ', '\r\n');
  const body = fc
    .tuple(fc.array(fc.tuple(ws, key, ws, value, ws), { maxLength: 5 }), ws, fc.constantFrom('', ',', 'x', '}'))
    .map(([pairs, w, tail]) => `${w}{${pairs.map(([a, k, b, v, c]) => `${a}"${k}"${b}:${v}${c}`).join(',')}}${tail}`);
  let accepted = 0;
  fc.assert(
    fc.property(body, (text) => {
      const b = Buffer.from(text);
      const got = scanned(s, b);
      if (got === undefined) return true;
      accepted++;
      const want = parsed(b);
      return isDeepStrictEqual(got, want);
    }),
    { seed: 1010, numRuns: 5000 },
  );
  // The property is only meaningful if the scanner accepted a fair share of the bodies.
  t.ok(accepted > 200, `accepted ${accepted} of 5000`);
});
