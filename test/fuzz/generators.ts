import fc from 'fast-check';
import { type MsgNode, deepArrayBytes, encode } from './msgpack.js';

/**
 * The fuzz suite's inputs, shared by the tests in `npm test` (a fixed number of cases from fixed
 * seeds) and by `npm run fuzz` (as many as fit in its duration). Each generator starts from what
 * docs/api.md and docs/stream-protocol.md call valid and mutates it the way a hostile or broken
 * client would: wrong types, huge and negative numbers, deep nesting, long and non-ASCII strings,
 * duplicate and prototype keys, truncation. Campaign IDs come from `campaigns` so that most cases
 * reach a real campaign whose status the harness compares before and after.
 */

/** The campaigns the harness creates before it runs cases; budgets large enough never to run out. */
export const fuzzCampaigns = { hot: 'fz-hot', stream: 'fz-stream', admin: 'fz-admin' } as const;

// ---- hostile values -----------------------------------------------------------------------------

/** Text of `depth` nested arrays (or objects), built without recursion. */
export function deepJson(depth: number, kind: 'array' | 'object' = 'array'): string {
  return kind === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

const hugeNumbers = fc.constantFrom(
  '9007199254740991', '9007199254740992', '9007199254740993', '18014398509481984', '1e308', '1e309',
  '-1e309', '-1', '-0', '0.5', '1.0', '1e3', '-9007199254740991', '4503599627370496', '1e-400',
  '123456789012345678901234567890', '0x10', 'NaN', 'Infinity', '-Infinity', '01', '+1',
);

const protoKeys = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf');

/** A JSON text for one value, valid or nearly so. */
export const hostileJsonValue: fc.Arbitrary<string> = fc.oneof(
  hugeNumbers,
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
  fc.string({ maxLength: 40 }).map((s) => JSON.stringify(s)),
  fc.string({ unit: 'binary', maxLength: 40 }).map((s) => JSON.stringify(s)),
  fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => JSON.stringify(s)),
  fc.integer({ min: 65, max: 200_000 }).map((n) => JSON.stringify('x'.repeat(n))),
  fc.constantFrom('null', 'true', 'false', '[]', '{}', '""', '"\\u0000"', '"\\ud800"', '"c\\u0000x"', '{"__proto__":{"x":1}}'),
  fc.integer({ min: 2, max: 20_000 }).map((d) => deepJson(d)),
  fc.integer({ min: 2, max: 20_000 }).map((d) => deepJson(d, 'object')),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
);

// ---- hot-path bodies ----------------------------------------------------------------------------

const idChars = fc.constantFrom(...'abcXYZ019._:-'.split(''));
const eventChars = fc.constantFrom(...'abcXYZ019._:~+/=@|-'.split(''));
export const requestIdArb = fc.string({ unit: eventChars, minLength: 1, maxLength: 12 });
const campaignIdArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant(fuzzCampaigns.hot) },
  { weight: 1, arbitrary: fc.string({ unit: idChars, minLength: 1, maxLength: 64 }) },
);
const money = fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.constantFrom(0, 1, 2 ** 53 - 1, 2 ** 40));

export const validDecide = fc.record(
  { campaignId: campaignIdArb, bidMicros: money, requestId: requestIdArb },
  { requiredKeys: ['campaignId'] },
);
export const validSpend = fc.record(
  { campaignId: campaignIdArb, eventId: requestIdArb, amountMicros: money, requestId: requestIdArb },
  { requiredKeys: ['campaignId', 'eventId', 'amountMicros'] },
);
export const validRelease = fc.record({ campaignId: campaignIdArb, requestId: requestIdArb });

export interface BodyCase {
  path: string;
  /** The body as sent: text, or bytes that need not be UTF-8. */
  body: string | Uint8Array;
  mutation: string;
}

type Route = { path: string; body: fc.Arbitrary<Record<string, unknown>> };
const hotRoutes: Route[] = [
  { path: '/v1/decide', body: validDecide },
  { path: '/v1/spend', body: validSpend },
  { path: '/v1/release', body: validRelease },
  { path: '/v1/decide/batch', body: fc.array(validDecide, { minLength: 1, maxLength: 5 }).map((requests) => ({ requests })) },
  { path: '/v1/spend/batch', body: fc.array(validSpend, { minLength: 1, maxLength: 5 }).map((events) => ({ events })) },
];

/** Replaces the text of `key`'s value with `value` (top level only; `key` appears once). */
function withField(obj: Record<string, unknown>, key: string, value: string): string {
  const entries = Object.entries(obj).filter(([k]) => k !== key).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
  entries.push(`${JSON.stringify(key)}:${value}`);
  return `{${entries.join(',')}}`;
}

/** One mutation of a valid body, named so a failure says what was done. */
function mutate(obj: Record<string, unknown>, keys: string[]): fc.Arbitrary<{ body: string | Uint8Array; mutation: string }> {
  const anyKey = fc.constantFrom(...keys);
  const text = JSON.stringify(obj);
  return fc.oneof(
    fc.constant({ body: text, mutation: 'none' }),
    fc.tuple(anyKey, hostileJsonValue).map(([k, v]) => ({ body: withField(obj, k, v), mutation: `field ${k} replaced` })),
    fc.tuple(protoKeys, hostileJsonValue).map(([k, v]) => ({ body: withField(obj, k, v), mutation: `prototype key ${k}` })),
    fc.tuple(anyKey, hostileJsonValue).map(([k, v]) => ({
      body: `${text.slice(0, -1)},${JSON.stringify(k)}:${v}}`, mutation: `duplicate key ${k}`,
    })),
    anyKey.map((k) => {
      const { [k]: _, ...rest } = obj;
      return { body: JSON.stringify(rest), mutation: `field ${k} removed` };
    }),
    fc.nat({ max: text.length }).map((n) => ({ body: text.slice(0, n), mutation: `truncated at ${n}` })),
    fc.constantFrom('[BODY]', '[BODY,BODY]', '"BODY"', '{"requests":BODY}', '{"events":BODY}', 'BODY BODY', '\uFEFFBODY')
      .map((w) => ({ body: w.replace(/BODY/g, text), mutation: `wrapped ${w}` })),
    hostileJsonValue.map((v) => ({ body: v, mutation: 'whole body replaced' })),
    fc.uint8Array({ maxLength: 200 }).map((b) => ({ body: b, mutation: 'random bytes' })),
  );
}

export const hotBodyCase: fc.Arbitrary<BodyCase> = fc.constantFrom(...hotRoutes).chain((r) =>
  r.body.chain((obj) => mutate(obj, [...Object.keys(obj), 'bidMicro', 'requests', 'events']).map((m) => ({ path: r.path, ...m }))),
);

// ---- raw HTTP requests --------------------------------------------------------------------------

export interface RawCase {
  bytes: Buffer;
  /** Requests a server that follows RFC 9112 answers on this connection (0: may close silently). */
  answers: number;
  /**
   * docs/api.md ("HTTP framing") documents that uWS answers none, or only a first part, of these and
   * closes the connection: then nothing may have run.
   */
  silentCloseDocumented: boolean;
  /** Framing RFC 9112 refuses: the request must not run, whatever is answered. */
  malformed?: boolean;
  /** HEAD answers carry no body; the reader needs to know. */
  methods: string[];
  description: string;
}

/** Registered methods; unknown and lower-case ones are in `badFraming`, apart, so they do not hide other findings. */
const methods = fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE');
const pathArb = fc.oneof(
  fc.constantFrom('/v1/decide', '/v1/spend', '/v1/release', '/v1/decide/batch', '/v1/spend/batch', '/healthz', '/readyz',
    '/v1/stream', '/', '/v1/decide?x=1', '/v1/decide/', '//v1/decide', '/v1/%64ecide', '/v1/../v1/decide',
    '/metrics', '/v1/decide#f', '/%00', '/%zz'),
  fc.webPath().map((p) => p || '/'),
  fc.integer({ min: 100, max: 20_000 }).map((n) => '/' + 'a'.repeat(n)),
);
const headerName = fc.oneof(
  fc.constantFrom('Host', 'Content-Length', 'Transfer-Encoding', 'Content-Type', 'Connection', 'Expect', 'Upgrade', 'X-A'),
  fc.string({ unit: fc.constantFrom(...'abcXYZ-'.split('')), minLength: 1, maxLength: 30 }),
);
const headerValue = fc.oneof(
  fc.constantFrom('0', '5', '-1', '99999999999999999999', 'chunked', 'close', 'keep-alive', '100-continue', 'websocket', ''),
  fc.string({ unit: fc.constantFrom(...'abc019 ;=,'.split('')), maxLength: 40 }),
  fc.integer({ min: 100, max: 10_000 }).map((n) => 'v'.repeat(n)),
);

function request(method: string, path: string, headers: [string, string][], body: string, version = 'HTTP/1.1'): string {
  return `${method} ${path} ${version}\r\nHost: x\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`;
}

const smallBody = fc.oneof(fc.constant(''), fc.constant('{"campaignId":"fz-hot"}'), hostileJsonValue.filter((s) => s.length < 2000));

/** A well-framed request (Content-Length matches the body) with random method, path and headers. */
const framedRequest = fc.record({ method: methods, path: pathArb, headers: fc.array(fc.tuple(headerName, headerValue).filter(([k]) =>
  !/^(content-length|transfer-encoding|expect|upgrade|connection)$/i.test(k)), { maxLength: 6 }), body: smallBody })
  .map(({ method, path, headers, body }): RawCase => ({
    bytes: Buffer.from(request(method, path, [...headers, ['Content-Length', String(Buffer.byteLength(body))]], body)),
    answers: 1,
    silentCloseDocumented: false,
    methods: [method],
    description: `framed ${method} ${path.slice(0, 60)}`,
  }));

/** A decide that reserves when it runs: a refused request carrying it must leave the status alone. */
const reserving = `{"campaignId":"${fuzzCampaigns.hot}","bidMicros":7,"requestId":"smuggled"}`;

/** Requests that RFC 9112 says to refuse with 400: smuggling shapes and malformed request lines. */
const badFraming = fc.oneof(
  fc.constantFrom(
    request('POST', '/v1/decide', [['Content-Length', String(reserving.length)], ['Content-Length', '3']], reserving),
    request('POST', '/v1/decide', [['Content-Length', String(reserving.length)], ['Transfer-Encoding', 'chunked']], reserving),
    request('POST', '/v1/decide', [['Transfer-Encoding', 'chunked'], ['Content-Length', String(reserving.length)]], reserving),
    request('POST', '/v1/decide', [['Content-Length', '-1']], ''),
    request('POST', '/v1/decide', [['Content-Length', 'abc']], ''),
    request('POST', '/v1/decide', [['Content-Length', '1 1']], '1'),
    'GET /healthz\r\n\r\n',
    'GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nHost: x\r\nNo-Colon\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nHost: x\r\n Folded: y\r\n\r\n',
    '\x00\x01\x02 / HTTP/1.1\r\n\r\n',
    request('GET', '/healthz', [['X-A', 'v'.repeat(20_000)], ['Content-Length', '0']], ''),
    'GET /heal\x00thz HTTP/1.1\r\nHost: x\r\n\r\n',
  ),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }).map((s) => s + '\r\n\r\n'),
).map((text): RawCase => ({
  bytes: Buffer.from(text, 'latin1'), answers: 1, silentCloseDocumented: true, malformed: true, methods: [/^[A-Z]+/.exec(text)?.[0] ?? '?'], description: `bad framing ${JSON.stringify(text.slice(0, 80))}`,
}));

/** Several well-framed requests in one write: each must be answered, in order. */
export const pipelined = fc.array(fc.record({ method: fc.constantFrom('GET', 'POST', 'HEAD'), path: fc.constantFrom('/healthz', '/v1/decide', '/nope'), body: smallBody }),
  { minLength: 2, maxLength: 4 })
  .map((reqs): RawCase => ({
    bytes: Buffer.from(reqs.map((r) => request(r.method, r.path, [['Content-Length', String(Buffer.byteLength(r.body))]], r.body)).join('')),
    answers: reqs.length,
    silentCloseDocumented: true,
    methods: reqs.map((r) => r.method),
    description: `pipelined ${reqs.map((r) => `${r.method} ${r.path}`).join(', ')}`,
  }));

/**
 * Valid but rare requests: asterisk-form and absolute-form targets (RFC 9112 3.2.3, 3.2.4), an
 * underscore in a header name (a tchar, RFC 9110 5.6.2), unknown and lower-case methods. uWS
 * 20.30 closes the connection on each of these without calling a handler; docs/api.md says so,
 * and the harness then checks that nothing ran and the server kept serving.
 */
export const rawUncommonTargetCase = fc.tuple(
  fc.constantFrom('OPTIONS', 'GET', 'POST', 'HEAD', 'ZZ', 'post'),
  fc.constantFrom('*', 'http://h/v1/decide', 'http://h/healthz', 'http://127.0.0.1/v1/spend', '/healthz', '/v1/decide'),
  fc.boolean(),
).map(([method, target, underscore]): RawCase => {
  const body = method.toUpperCase() === 'POST' ? reserving : '';
  const headers: [string, string][] = [...(underscore ? [['X_Under', 'score'] as [string, string]] : []), ['Content-Length', String(body.length)]];
  return {
    // docs/api.md, HTTP framing: uWS closes without an answer on these forms, and nothing runs.
    bytes: Buffer.from(request(method, target, headers, body)), answers: 1,
    silentCloseDocumented: target === '*' || target.startsWith('http') || underscore || method === 'ZZ' || method === 'post',
    methods: [method], description: `${method} ${target}${underscore ? ' with header X_Under' : ''}`,
  };
});

/** Bytes that stop anywhere: the server may wait or close, but must stay up. */
const truncated = fc.tuple(framedRequest, fc.nat()).map(([r, n]): RawCase => ({
  bytes: r.bytes.subarray(0, n % r.bytes.length), answers: 0, silentCloseDocumented: true, methods: r.methods, description: `truncated ${r.description}`,
}));

export const rawFramedCase = framedRequest;
export const rawBadFramingCase = badFraming;
export const rawTruncatedCase = truncated;

// ---- MessagePack stream frames ------------------------------------------------------------------

/** Extension types msgpackr decodes by default (BigInt, Error, structured-clone refs, Set, typed arrays, RegExp, timestamp). */
const knownExtTypes = [0, 0x42, 0x65, 0x69, 0x70, 0x73, 0x74, 0x78, 0x62, -1, 0x72, 0x52];
const extType = fc.oneof(fc.constantFrom(...knownExtTypes), fc.integer({ min: -128, max: 127 }));
const extNode: fc.Arbitrary<MsgNode> = fc.record({
  t: fc.constant('ext' as const),
  type: extType,
  data: fc.oneof(fc.constantFrom(1, 2, 4, 8, 16).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })), fc.uint8Array({ maxLength: 40 })),
  enc: fc.constantFrom('fixext' as const, 8 as const, 16 as const, 32 as const),
});
const intNode: fc.Arbitrary<MsgNode> = fc.record({
  t: fc.constant('int' as const),
  v: fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), fc.constantFrom(0n, 1n, -1n, 2n ** 32n, 2n ** 32n - 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n, -(2n ** 63n))),
  enc: fc.constantFrom('auto' as const, 'u8' as const, 'u16' as const, 'u32' as const, 'u64' as const, 'i8' as const, 'i16' as const, 'i32' as const, 'i64' as const),
});
const lenEnc = fc.constantFrom('fix' as const, 8 as const, 16 as const, 32 as const);
const scalarNode: fc.Arbitrary<MsgNode> = fc.oneof(
  fc.constant<MsgNode>({ t: 'nil' }),
  fc.boolean().map((v): MsgNode => ({ t: 'bool', v })),
  intNode,
  fc.double().map((v): MsgNode => ({ t: 'f64', v })),
  fc.float().map((v): MsgNode => ({ t: 'f32', v })),
  fc.record({ t: fc.constant('str' as const), v: fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 20 }), requestIdArb, fc.constant(fuzzCampaigns.stream)), enc: lenEnc }),
  fc.record({ t: fc.constant('bin' as const), v: fc.uint8Array({ maxLength: 20 }), enc: fc.constantFrom(8 as const, 16 as const, 32 as const) }),
  extNode,
);
const { node: anyNode } = fc.letrec<{ node: MsgNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalarNode,
    fc.record({ t: fc.constant('array' as const), v: fc.array(tie('node'), { maxLength: 4 }), enc: lenEnc }),
    fc.record({ t: fc.constant('map' as const), v: fc.array(fc.tuple(tie('node'), tie('node')), { maxLength: 3 }), enc: lenEnc }),
  ),
}));

const s = (v: string): MsgNode => ({ t: 'str', v, enc: 'fix' });
const i = (v: number): MsgNode => ({ t: 'int', v: BigInt(v), enc: 'auto' });
const a = (v: MsgNode[]): MsgNode => ({ t: 'array', v, enc: 'fix' });

/** A valid operation of the stream protocol, as a tree so its fields can be swapped for hostile ones. */
const validOp: fc.Arbitrary<MsgNode[]> = fc.tuple(fc.constantFrom(1, 2, 3), fc.nat({ max: 0xffffffff }), requestIdArb, fc.nat({ max: 5_000 }), requestIdArb)
  .map(([kind, id, rid, amount, eid]) => kind === 1
    ? [i(1), i(id), s(fuzzCampaigns.stream), i(amount), s(rid)]
    : kind === 2 ? [i(2), i(id), s(fuzzCampaigns.stream), s(eid), i(amount), s(rid)] : [i(3), i(id), s(fuzzCampaigns.stream), s(rid)]);

/** An operation with some of its fields replaced by arbitrary values (extensions included). */
const mutatedOp: fc.Arbitrary<MsgNode> = fc.tuple(validOp, fc.array(fc.tuple(fc.nat({ max: 6 }), anyNode), { maxLength: 3 }))
  .map(([op, swaps]) => {
    const out = [...op];
    for (const [at, n] of swaps) out[Math.min(at, out.length)] = n;
    return a(out.map((x) => x ?? { t: 'nil' }));
  });

export interface FrameCase {
  bytes: Buffer;
  /** Text frames are refused by the protocol; the harness sends them as text. */
  text: boolean;
  description: string;
}

const frameOf = (ops: MsgNode[], enc: 'fix' | 16 | 32 = 'fix'): MsgNode => ({ t: 'array', v: ops, enc });

export const streamFrameCase: fc.Arbitrary<FrameCase> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.oneof(validOp.map(a), mutatedOp), { minLength: 1, maxLength: 6 }).map((ops) => ({ bytes: encode(frameOf(ops)), text: false, description: 'mutated operations' })) },
  { weight: 2, arbitrary: fc.tuple(validOp, extNode).map(([op, ext]) => ({
    bytes: encode(frameOf([a([...op.slice(0, 2), ext])])), text: false, description: `extension type ${(ext as { type: number }).type} in an operation`,
  })) },
  { weight: 1, arbitrary: extNode.map((ext) => ({ bytes: encode(ext), text: false, description: `a frame that is one extension value of type ${(ext as { type: number }).type}` })) },
  { weight: 1, arbitrary: anyNode.map((n) => ({ bytes: encode(n), text: false, description: 'an arbitrary value' })) },
  { weight: 1, arbitrary: fc.integer({ min: 2, max: 100_000 }).map((d) => ({ bytes: deepArrayBytes(d), text: false, description: `arrays nested ${d} deep` })) },
  { weight: 1, arbitrary: fc.integer({ min: 2, max: 50_000 }).map((d) => ({
    bytes: Buffer.concat([Buffer.from([0x91, 0x93, 0x01, 0x01]), deepArrayBytes(d)]), text: false, description: `campaign ID nested ${d} deep`,
  })) },
  { weight: 1, arbitrary: fc.tuple(fc.array(validOp.map(a), { minLength: 1, maxLength: 4 }), fc.nat()).map(([ops, n]) => {
    const b = encode(frameOf(ops));
    return { bytes: b.subarray(0, n % b.length), text: false, description: `truncated at ${n % b.length} of ${b.length}` };
  }) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 1200 }).map((n) => ({ bytes: encode(frameOf(Array.from({ length: n }, () => a([i(3), i(1), s(fuzzCampaigns.stream), s('r')])), 16)), text: false, description: `${n} operations` })) },
  { weight: 1, arbitrary: fc.constantFrom(0x7fffffff, 0xffffffff, 65_536).map((n) => ({
    bytes: Buffer.from([0xdd, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff, 0xc0]), text: false, description: `an array header claiming ${n} items`,
  })) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 100 }).map((b) => ({ bytes: Buffer.from(b), text: false, description: 'random bytes' })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 50 }).map((t) => ({ bytes: Buffer.from(t), text: true, description: 'a text frame' })) },
);

// ---- admin bodies -------------------------------------------------------------------------------

export const validCampaign = fc.record({
  id: fc.constant(fuzzCampaigns.admin),
  name: fc.string({ maxLength: 30 }),
  status: fc.constantFrom('ACTIVE', 'PAUSED'),
  dailyBudgetMicros: fc.integer({ min: 1, max: 10 ** 12 }),
  timezone: fc.constantFrom('UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata'),
  strategy: fc.constantFrom('EVEN', 'ASAP', 'FRONT_LOADED', 'ADAPTIVE', 'AHEAD'),
  catchUpMaxRatio: fc.double({ min: 1, max: 10, noNaN: true }),
  velocityCapMultiple: fc.integer({ min: 1, max: 1000 }),
  breaker: fc.record({ enabled: fc.boolean(), tripAtFraction: fc.double({ min: 0.5, max: 1, noNaN: true }) }, { requiredKeys: [] }),
  schedule: fc.constant([{ days: ['MON', 'TUE'], start: '08:00', end: '20:00' }]),
  hourlyWeights: fc.array(fc.nat({ max: 10 }), { minLength: 24, maxLength: 24 }),
  startAt: fc.constantFrom('2026-01-01T00:00:00Z', '2026-02-30T00:00:00Z', '2020-01-01T00:00:00+02:00'),
  lifetimeBudgetMicros: fc.integer({ min: 1, max: 10 ** 13 }),
  mode: fc.constantFrom('ENFORCE', 'SHADOW'),
  shadow: fc.record({ strategy: fc.constantFrom('EVEN', 'ASAP', 'ADAPTIVE', 'CUSTOM'), aheadPercent: fc.integer({ min: 0, max: 100 }) }, { requiredKeys: [] }),
}, { requiredKeys: ['id', 'dailyBudgetMicros'] });

/** A backtest request body (POST /v1/campaigns/:id/backtest) to mutate. */
const validBacktest = fc.record({
  from: fc.constantFrom('2026-11-01', '2026-02-30', '1969-12-31', '2026-11-30'),
  to: fc.constantFrom('2026-11-07', '2026-11-01', '9999-12-31'),
  strategies: fc.array(fc.constantFrom('EVEN', 'ASAP', 'ADAPTIVE', 'BOGUS'), { maxLength: 4 }),
  thinning: fc.integer({ min: -1, max: 2_000 }),
}, { requiredKeys: [] });

export interface AdminCase {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH';
  path: string;
  body?: string | Uint8Array;
  /** Which token the request carries. */
  token: 'right' | 'wrong' | 'none';
  description: string;
}

const adminIdPath = fc.oneof(fc.constant(fuzzCampaigns.admin), fc.string({ maxLength: 70 }).map(encodeURIComponent),
  fc.constantFrom('%00', '..', '%2F', 'a%20b', '__proto__', 'constructor', 'x'.repeat(300)));

export const adminCase: fc.Arbitrary<AdminCase> = fc.oneof(
  { weight: 6, arbitrary: validCampaign.chain((c) => mutate(c, [...Object.keys(c), 'hourlyWeights', 'schedule', 'breaker', 'bogus']))
    .map((m): AdminCase => ({ method: 'POST', path: '/v1/campaigns', body: m.body, token: 'right', description: `campaign body, ${m.mutation}` })) },
  { weight: 1, arbitrary: fc.constantFrom('name', 'timezone', 'strategy', 'status').chain((k) =>
    fc.string({ unit: 'binary', maxLength: 30 }).map((v): AdminCase => ({
      method: 'POST', path: '/v1/campaigns', token: 'right', description: `${k} with arbitrary characters`,
      body: JSON.stringify({ id: fuzzCampaigns.admin, dailyBudgetMicros: 1000, [k]: v }),
    }))) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 24, max: 24 }), fc.constantFrom('1e308', '1.7976931348623157e308', '-1', '1e-320')).map(([n, w]): AdminCase => ({
    method: 'POST', path: '/v1/campaigns', token: 'right', description: `hourlyWeights of ${w}`,
    body: `{"id":"${fuzzCampaigns.admin}","dailyBudgetMicros":1000,"strategy":"CUSTOM","hourlyWeights":[${Array(n).fill(w).join(',')}]}`,
  })) },
  { weight: 2, arbitrary: fc.tuple(adminIdPath, fc.constantFrom('', '/status', '/breaker/reset', '/budget-changes', '/history', '/history?from=x&to=y', '/history?from=2026-02-30T00:00:00Z',
    '/forecast', '/profile', '/profile/fit', '/backtest', '/report?day=2026-02-30', '/report?day=x'), fc.constantFrom('GET' as const, 'POST' as const))
    .map(([id, tail, method]): AdminCase => ({ method, path: `/v1/campaigns/${id}${tail}`, token: 'right', description: `${method} a campaign route` })) },
  { weight: 2, arbitrary: validBacktest.chain((b) => mutate(b, [...Object.keys(b), 'from', 'to', 'strategies', 'bogus']))
    .map((m): AdminCase => ({ method: 'POST', path: `/v1/campaigns/${fuzzCampaigns.admin}/backtest`, body: m.body, token: 'right', description: `backtest body, ${m.mutation}` })) },
  // Methods the admin may add for partial and whole updates: whatever answers must be coded.
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('PUT' as const, 'PATCH' as const), validCampaign.chain((c) => mutate(c, [...Object.keys(c), 'bogus'])))
    .map(([method, m]): AdminCase => ({ method, path: `/v1/campaigns/${fuzzCampaigns.admin}`, body: m.body, token: 'right', description: `${method} a campaign, ${m.mutation}` })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('wrong' as const, 'none' as const), fc.constantFrom('/v1/campaigns', `/v1/campaigns/${fuzzCampaigns.admin}/status`, '/metrics'))
    .map(([token, path]): AdminCase => ({ method: path === '/v1/campaigns' ? 'POST' : 'GET', path, token, body: '{}', description: `${token} token` })) },
);
