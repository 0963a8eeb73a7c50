import fc from 'fast-check';
import { Unpackr } from 'msgpackr';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { adminToken, auth, createCampaign, get, type Pacer, startPacer } from '../helpers/server.js';
import { type AdminCase, type BodyCase, type FrameCase, fuzzCampaigns, type RawCase } from './generators.js';

/**
 * Runs fuzz cases against one real pacer and checks, after each, what the issue asks of any input:
 * the answer is coded (a 4xx with `{"error":{"code","message"}}`, or a documented 503), a refused
 * request changed nothing (the campaign's status and configuration are the same as before), the
 * process is alive and `/healthz` answers, and its resident memory stays within a bound. A case
 * that stops the process is recorded and the pacer restarted, so one finding does not hide the rest.
 */

/** How far the pacer's resident memory may grow over a run of cases before it counts as unbounded. */
export const rssGrowthMaxMb = 300;
/** How long a case waits for its answer; well-formed cases are answered in milliseconds. */
const answerTimeoutMs = 1_500;
const documented503 = new Set(['OVERLOADED', 'STORE_UNAVAILABLE', 'SHUTTING_DOWN', 'NOT_READY']);

export interface Failure {
  family: string;
  seed: number;
  /** The case's index in fc.sample(arbitrary, { seed, numRuns }): the same seed and index replay it. */
  index: number;
  description: string;
  input: string;
  problem: string;
}

type Snapshot = string;

export class Target {
  pacer!: Pacer;
  restarts = 0;
  private rssBaselineMb = 0;
  private readonly env: Record<string, string>;

  constructor(env: Record<string, string> = {}) {
    // Reservations must not expire during a run, or the status would change between two cases by itself.
    this.env = { PACER_RESERVATION_TTL_MS: '86400000', ...env };
  }

  async start(): Promise<void> {
    this.pacer = await startPacer({ env: this.env });
    const base = { dailyBudgetMicros: 1_000_000_000_000, strategy: 'ASAP', breaker: { enabled: false } };
    for (const id of Object.values(fuzzCampaigns)) await createCampaign(this.pacer, { id, ...base });
    this.rssBaselineMb = this.rssMb();
  }

  async stop(): Promise<void> {
    await this.pacer.stop();
  }

  rssMb(): number {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${this.pacer.child.pid}/status`, 'utf8'));
    return Number(m?.[1] ?? 0) / 1024;
  }

  rssGrowthMb(): number {
    return this.rssMb() - this.rssBaselineMb;
  }

  /** The campaign's money, counters and configuration version: what a refused request must not move. */
  async snapshot(id: string): Promise<Snapshot> {
    const s = await get(this.pacer.adminUrl, `/v1/campaigns/${id}/status`, auth);
    const c = await get(this.pacer.adminUrl, `/v1/campaigns/${id}`, auth);
    const { settledMicros, reservedMicros, reservations, budgetMicros, counters, version } = s.body ?? {};
    return JSON.stringify({ status: s.status, settledMicros, reservedMicros, reservations, budgetMicros, counters, version, campaign: c.body });
  }

  /** null when the process runs and /healthz answers 200 {"status":"ok"}, else what is wrong. */
  async liveness(): Promise<string | null> {
    if (this.pacer.child.exitCode !== null || this.pacer.child.signalCode !== null) {
      return `process exited (${this.pacer.child.exitCode ?? this.pacer.child.signalCode}): ${this.pacer.stderr().split('\n').slice(-6).join('\n')}`;
    }
    try {
      const h = await withTimeout(get(this.pacer.url, '/healthz'), answerTimeoutMs, '/healthz');
      if (h.status !== 200 || h.body?.status !== 'ok') return `/healthz answered ${h.status} ${JSON.stringify(h.body)}`;
    } catch (err) {
      return `/healthz failed: ${String(err)}`;
    }
    return null;
  }

  /** After a case stopped the process (or made it deaf): a new one, so the run goes on. */
  async restart(): Promise<void> {
    this.restarts++;
    await this.pacer.kill();
    await this.start();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms))),
  ]);
}

// ---- checking one answer ------------------------------------------------------------------------

/** null when an HTTP answer is coded as docs/api.md says, else why not. */
export function uncoded(status: number, headers: (name: string) => string | null, text: string, okStatuses: number[]): string | null {
  let body: any;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    return `status ${status} with a body that is not JSON: ${JSON.stringify(text.slice(0, 200))}`;
  }
  if (okStatuses.includes(status)) return typeof body === 'object' && body !== null ? null : `status ${status} without a JSON object`;
  const code = body?.error?.code;
  const message = body?.error?.message;
  if (typeof code !== 'string' || !/^[A-Z][A-Z_]*$/.test(code) || typeof message !== 'string' || message === '') {
    return `status ${status} without {"error":{"code","message"}}: ${JSON.stringify(text.slice(0, 200))}`;
  }
  // Any client error that is coded is an answer; which 4xx fits is each route's own test's business.
  if (status >= 400 && status < 500) return null;
  if (status === 503 && documented503.has(code)) return headers('retry-after') !== null ? null : `503 ${code} without Retry-After`;
  return `status ${status} ${code} is not a documented answer: ${message.slice(0, 200)}`;
}

// ---- the four kinds of case ---------------------------------------------------------------------

/** The outcome of sending one case: a problem with the answer, and whether it may have changed state. */
interface Sent {
  problem: string | null;
  accepted: boolean;
}

export async function sendBody(target: Target, c: BodyCase): Promise<Sent> {
  const res = await fetch(target.pacer.url + c.path, { method: 'POST', body: c.body, signal: AbortSignal.timeout(answerTimeoutMs) });
  const text = await res.text();
  return { problem: uncoded(res.status, (n) => res.headers.get(n), text, [200]), accepted: res.status === 200 };
}

export async function sendAdmin(target: Target, c: AdminCase): Promise<Sent> {
  const headers: Record<string, string> = c.token === 'right' ? { ...auth } : c.token === 'wrong' ? { authorization: `Bearer ${adminToken}x` } : {};
  // A merge patch says so (RFC 7396), or the admin rightly refuses it before reading it.
  if (c.method === 'PATCH') headers['content-type'] = 'application/merge-patch+json';
  const init: RequestInit = { method: c.method, headers, signal: AbortSignal.timeout(answerTimeoutMs) };
  if (c.method !== 'GET' && c.body !== undefined) init.body = c.body;
  const res = await fetch(target.pacer.adminUrl + c.path, init);
  const text = await res.text();
  const ok = c.path === '/metrics' ? [] : [200, 201];
  if (c.path === '/metrics' && res.status === 200) return { problem: null, accepted: false };
  return { problem: uncoded(res.status, (n) => res.headers.get(n), text, ok), accepted: res.status === 200 || res.status === 201 };
}

interface RawAnswer {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** Reads HTTP/1.1 answers off a byte stream; null while the next one is incomplete. */
function parseAnswers(buf: Buffer, methods: string[]): { answers: RawAnswer[]; malformed: string | null } {
  const answers: RawAnswer[] = [];
  let at = 0;
  while (at < buf.length) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const head = buf.subarray(at, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '');
    if (m === null) {
      const afterHead = methods[answers.length - 1]?.toUpperCase() === 'HEAD';
      return { answers, malformed: `${afterHead ? 'the answer to HEAD carried a body; ' : ''}not a status line: ${JSON.stringify(head[0]?.slice(0, 120))}` };
    }
    const headers = new Map<string, string>();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const isHead = methods[answers.length]?.toUpperCase() === 'HEAD';
    const length = isHead ? 0 : Number(headers.get('content-length') ?? 0);
    if (end + 4 + length > buf.length) break;
    answers.push({ status: Number(m[1]), headers, body: buf.subarray(end + 4, end + 4 + length).toString('utf8') });
    at = end + 4 + length;
  }
  return { answers, malformed: null };
}

export function sendRaw(target: Target, c: RawCase): Promise<Sent> {
  return new Promise((resolve) => {
    const socket = connect(target.pacer.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let closed = false;
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      const { answers, malformed } = parseAnswers(buf, c.methods);
      if (malformed !== null) return resolve({ problem: malformed, accepted: true });
      // Only a POST that was answered 2xx may have changed the campaign.
      const accepted = answers.some((a, k) => a.status < 300 && c.methods[k]?.toUpperCase() === 'POST');
      if (accepted && c.malformed === true) return resolve({ problem: `a malformed request ran: answered ${answers[0]?.status} ${answers[0]?.body.slice(0, 200)}`, accepted });
      if (answers.length < c.answers && !c.silentCloseDocumented) {
        return resolve({ problem: `${answers.length} of ${c.answers} requests answered (${closed ? 'connection closed' : 'timed out'})`, accepted: true });
      }
      for (const [k, a] of answers.entries()) {
        // HEAD answers have no body to be coded (RFC 9110 9.3.2); every other answer must be.
        if (c.methods[k]?.toUpperCase() === 'HEAD') {
          if (a.status >= 300 && (a.status < 400 || a.status >= 500) && a.status !== 503) return resolve({ problem: `HEAD answered ${a.status}`, accepted });
          continue;
        }
        const p = uncoded(a.status, (n) => a.headers.get(n) ?? null, a.body, [200, 101]);
        if (p !== null) return resolve({ problem: p, accepted });
      }
      resolve({ problem: null, accepted });
    };
    // A documented silent close may instead be uWS's 10-second idle close: waiting that long proves nothing more.
    const timer = setTimeout(finish, c.answers === 0 ? 100 : c.malformed === true ? 500 : answerTimeoutMs);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (c.answers > 0 && parseAnswers(buf, c.methods).answers.length >= c.answers) finish();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.write(c.bytes);
  });
}

const unpackr = new Unpackr({ useRecords: false });

/** The item count an array header at the start of a frame claims, or -1 when it is not an array. */
function claimedOps(b: Buffer): number {
  const first = b[0];
  if (first === undefined) return -1;
  if (first >= 0x90 && first <= 0x9f) return first & 0x0f;
  if (first === 0xdc && b.length >= 3) return b.readUInt16BE(1);
  if (first === 0xdd && b.length >= 5) return b.readUInt32BE(1);
  return -1;
}

function isU32(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** null when an answer frame follows docs/stream-protocol.md for this request frame. */
export function badAnswerFrame(request: FrameCase, answer: unknown): string | null {
  if (!Array.isArray(answer) || answer.length === 0) return `answer is not a non-empty array: ${show(answer)}`;
  for (const r of answer) {
    if (!Array.isArray(r) || ![0, 1, 2, 3].includes(r[0])) return `result is not [kind, id, …]: ${show(r)}`;
    if (!(isU32(r[1]) || (r[0] === 0 && r[1] === null))) return `correlation ID is not a uint32 (or null on an error): ${show(r)}`;
    if (r[0] === 0 && (typeof r[2] !== 'string' || !/^[A-Z][A-Z_]*$/.test(r[2]) || typeof r[3] !== 'string')) return `error result is not [0, id, code, message]: ${show(r)}`;
  }
  const n = request.text ? -1 : claimedOps(request.bytes);
  const frameError = answer.length === 1 && answer[0][0] === 0 && answer[0][1] === null;
  if (n >= 1 && n <= 1000 && answer.length !== n && !frameError) return `${answer.length} results for ${n} operations`;
  if ((n < 1 || n > 1000) && !frameError) return `a frame that is not an array of 1-1000 operations was not refused as a frame: ${show(answer)}`;
  return null;
}

function show(v: unknown): string {
  try {
    return (JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x)) ?? String(v)).slice(0, 200);
  } catch {
    return String(v).slice(0, 200);
  }
}

/** One WebSocket the stream cases share; reopened when a case closed it. */
export class StreamClient {
  private ws: WebSocket | null = null;
  private waiting: ((r: { data?: Buffer; closed?: boolean }) => void) | null = null;

  constructor(private readonly target: Target) {}

  private async open(): Promise<WebSocket> {
    if (this.ws !== null && this.ws.readyState === WebSocket.OPEN) return this.ws;
    const ws = new WebSocket(`ws://127.0.0.1:${this.target.pacer.port}/v1/stream`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.on('message', (data: Buffer) => this.waiting?.({ data }));
    ws.on('close', () => this.waiting?.({ closed: true }));
    ws.on('error', () => undefined);
    this.ws = ws;
    return ws;
  }

  async send(c: FrameCase): Promise<Sent> {
    const ws = await this.open();
    const reply = new Promise<{ data?: Buffer; closed?: boolean }>((resolve) => (this.waiting = resolve));
    ws.send(c.text ? c.bytes.toString('utf8') : c.bytes, { binary: !c.text });
    let r: { data?: Buffer; closed?: boolean };
    try {
      r = await withTimeout(reply, answerTimeoutMs, 'stream frame');
    } catch (err) {
      this.close();
      return { problem: String(err), accepted: true };
    } finally {
      this.waiting = null;
    }
    if (r.closed === true) {
      this.ws = null;
      return { problem: 'the connection was closed', accepted: true };
    }
    let answer: unknown;
    try {
      answer = unpackr.unpack(r.data!);
    } catch (err) {
      return { problem: `answer is not MessagePack: ${String(err)}`, accepted: true };
    }
    const accepted = !Array.isArray(answer) || answer.some((x) => !Array.isArray(x) || x[0] !== 0);
    return { problem: badAnswerFrame(c, answer), accepted };
  }

  close(): void {
    this.ws?.terminate();
    this.ws = null;
  }
}

// ---- running a family of cases ------------------------------------------------------------------

export interface Family<C> {
  name: string;
  arbitrary: fc.Arbitrary<C>;
  /** The campaign whose status a refused case must leave alone. */
  campaign: string;
  send(target: Target, c: C): Promise<Sent>;
  describe(c: C): string;
}

export function showInput(v: unknown): string {
  if (v instanceof Uint8Array) return `hex ${Buffer.from(v.subarray(0, 120)).toString('hex')}${v.length > 120 ? `… (${v.length} bytes)` : ''}`;
  if (typeof v === 'string') return JSON.stringify(v.length > 300 ? `${v.slice(0, 300)}… (${v.length} chars)` : v);
  if (typeof v === 'object' && v !== null) {
    return `{${Object.entries(v).map(([k, x]) => `${k}: ${showInput(x)}`).join(', ')}}`;
  }
  return String(v);
}

/** Runs one case and its checks; returns what went wrong, or null. */
export async function runCase<C>(target: Target, family: Family<C>, c: C, before: { snap: Snapshot }): Promise<string | null> {
  let sent: Sent;
  try {
    sent = await family.send(target, c);
  } catch (err) {
    sent = { problem: `request failed: ${String(err)}`, accepted: true };
  }
  const dead = await target.liveness();
  if (dead !== null) {
    await target.restart();
    before.snap = await target.snapshot(family.campaign);
    return `${sent.problem ?? 'answered'}; then ${dead}`;
  }
  const after = await target.snapshot(family.campaign);
  const changed = after !== before.snap;
  const snapBefore = before.snap;
  before.snap = after;
  if (sent.problem !== null) return sent.problem;
  if (!sent.accepted && changed) return `refused, yet the campaign changed: before ${snapBefore.slice(0, 400)} after ${after.slice(0, 400)}`;
  return null;
}

/**
 * Runs cases [from, from + count) of a family from a seed, calls onFailure for each that fails,
 * and finally checks that memory stayed bounded. Returns the number of cases run.
 */
export async function runFamily<C>(target: Target, family: Family<C>, seed: number, count: number, onFailure: (f: Failure) => void,
  keepGoing: () => boolean = () => true): Promise<number> {
  const cases = fc.sample(family.arbitrary, { seed, numRuns: count });
  const before = { snap: await target.snapshot(family.campaign) };
  let ran = 0;
  for (const [index, c] of cases.entries()) {
    if (!keepGoing()) break;
    const problem = await runCase(target, family, c, before);
    ran++;
    if (problem !== null) onFailure({ family: family.name, seed, index, description: family.describe(c), input: showInput(c), problem });
  }
  const grown = target.rssGrowthMb();
  if (grown > rssGrowthMaxMb) {
    onFailure({ family: family.name, seed, index: -1, description: 'memory', input: `${ran} cases`, problem: `resident memory grew ${grown.toFixed(0)} MiB (bound ${rssGrowthMaxMb})` });
  }
  return ran;
}
