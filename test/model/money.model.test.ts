import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';
import { auth, createCampaign, type Pacer, post, startPacer, status } from '../helpers/server.js';

/**
 * Model-based test of the money: fast-check commands drive the real pacer over HTTP (decide with
 * bids and request IDs, spend with and without a request ID, resent and concurrent, release,
 * reservation expiry, budget change, pause and resume, kill -9 and graceful restarts) while a small
 * reference model keeps what the client knows: the distinct events acknowledged (their sum is the
 * settled spend), the reservations it holds and when each was made. After every command the
 * pacer's status must agree with the model:
 * - settled equals the sum of the distinct acknowledged events (none lost, none counted twice);
 * - reserved lies between the reservations certainly alive and those possibly alive (expiry is
 *   only known to within its sweep);
 * - while every spend settled its own reservation, settled + reserved never exceeds the budget.
 * Counters live in Redis and configuration in PostgreSQL (a key prefix and a database of this
 * file's own), so restarts keep them. Budget changes only raise the budget: lowering it below
 * what is already reserved would break the cap check by construction, not by a bug.
 */
const ttlMs = 2_000;
/** The shard sweeps expired reservations this often (shards/limits.ts reservationSweepMs) plus scheduling slack. */
const expiryLateMs = 250 + 500;
const db = await createDatabase('model');
const prefix = uniqueName('pacer-model');
const dataDir = mkdtempSync(join(tmpdir(), 'pacer-model-'));
const env = {
  PACER_STORE: 'redis', PACER_REDIS_URL: redisUrl, PACER_REDIS_KEY_PREFIX: prefix, PACER_DATABASE_URL: db.url,
  PACER_RESERVATION_TTL_MS: String(ttlMs),
};
const real: { pacer: Pacer } = { pacer: await startPacer({ env, dataDir }) };
t.teardown(async () => {
  await real.pacer.stop();
  await dropRedisPrefix(redisUrl, prefix);
  await db.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Reservation {
  requestId: string;
  bid: number;
  /** Client clock before the decide was sent and after it was answered. */
  sentMs: number;
  answeredMs: number;
  /** A restart happened since: the pacer may have kept it or not. */
  uncertain: boolean;
}

interface Model {
  campaignId: string;
  budget: number;
  paused: boolean;
  /** Acknowledged (applied) events: eventId → amount and the request ID it settled. */
  events: Map<string, { amount: number; requestId?: string }>;
  reservations: Map<string, Reservation>;
  /** False once a spend was not matched to a live reservation: the cap no longer binds settled + reserved. */
  honest: boolean;
  nextId: number;
  log: string[];
}

const settledOf = (m: Model): number => [...m.events.values()].reduce((n, e) => n + e.amount, 0);
const certainlyAlive = (r: Reservation, readEndMs: number): boolean => !r.uncertain && readEndMs < r.sentMs + ttlMs;
const certainlyGone = (r: Reservation, readStartMs: number): boolean => readStartMs > r.answeredMs + ttlMs + expiryLateMs;

function campaignBody(m: Model): Record<string, unknown> {
  return { id: m.campaignId, dailyBudgetMicros: m.budget, strategy: 'ASAP', breaker: { enabled: false }, status: m.paused ? 'PAUSED' : 'ACTIVE' };
}

function fail(m: Model, what: string): never {
  throw new Error(`${what}\ncommands so far:\n  ${m.log.join('\n  ')}`);
}

/** The invariants, read from the admin status after every command. */
async function checkInvariants(m: Model): Promise<void> {
  let s: any;
  let low = 0;
  let high = 0;
  // A sweep timer that a loaded machine delays holds an expired reservation a little longer: read
  // again for a few seconds before calling it a leak (a real leak stays).
  for (let attempt = 0; attempt < 8; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 500));
    const startMs = Date.now();
    s = await status(real.pacer, m.campaignId);
    const endMs = Date.now();
    for (const [id, r] of m.reservations) if (certainlyGone(r, startMs)) m.reservations.delete(id);
    const alive = [...m.reservations.values()];
    low = alive.filter((r) => certainlyAlive(r, endMs)).reduce((n, r) => n + r.bid, 0);
    high = alive.reduce((n, r) => n + r.bid, 0);
    if (s.reservedMicros <= high) break;
  }
  if (s.settledMicros !== settledOf(m)) fail(m, `settled ${s.settledMicros}, but the acknowledged distinct events sum to ${settledOf(m)}`);
  if (s.reservedMicros < low || s.reservedMicros > high) fail(m, `reserved ${s.reservedMicros}, expected between ${low} and ${high}`);
  if (s.budgetMicros !== m.budget) fail(m, `budget ${s.budgetMicros}, expected ${m.budget}`);
  if (m.honest && s.settledMicros + s.reservedMicros > m.budget) {
    fail(m, `settled ${s.settledMicros} + reserved ${s.reservedMicros} exceeds the budget ${m.budget} though every spend settled its own reservation`);
  }
}

type Cmd = fc.AsyncCommand<Model, { pacer: Pacer }, false>;
const pickFrom = <V>(map: Map<string, V>, pick: number): [string, V] | undefined => [...map.entries()][pick % Math.max(1, map.size)];

class Decide implements Cmd {
  constructor(readonly bid: number) {}
  check = (): boolean => true;
  async run(m: Model): Promise<void> {
    const requestId = `r${m.nextId++}`;
    const sentMs = Date.now();
    const d = await post(real.pacer.url, '/v1/decide', { campaignId: m.campaignId, bidMicros: this.bid, requestId });
    const answeredMs = Date.now();
    m.log.push(`${this} as ${requestId} → ${d.status} ${JSON.stringify(d.body)}`);
    if (d.status !== 200) fail(m, `decide answered ${d.status}`);
    if (m.paused && (d.body.allow || d.body.reason !== 'CAMPAIGN_PAUSED')) fail(m, 'a paused campaign allowed a decision');
    const certain = [...m.reservations.values()].filter((r) => certainlyAlive(r, sentMs)).reduce((n, r) => n + r.bid, 0);
    if (d.body.allow && settledOf(m) + certain + this.bid > m.budget) {
      fail(m, `allowed a bid of ${this.bid} with settled ${settledOf(m)} and at least ${certain} reserved of ${m.budget}`);
    }
    if (d.body.reserved) m.reservations.set(requestId, { requestId, bid: this.bid, sentMs, answeredMs, uncertain: false });
    await checkInvariants(m);
  }
  toString = (): string => `decide(bid ${this.bid})`;
}

/** A win for one of the model's reservations, at a price up to its bid; `bare` sends no requestId. */
class Spend implements Cmd {
  constructor(readonly pick: number, readonly share: number, readonly bare: boolean) {}
  check = (m: Readonly<Model>): boolean => m.reservations.size > 0;
  async run(m: Model): Promise<void> {
    const picked = pickFrom(m.reservations, this.pick);
    if (picked === undefined) return;
    const [requestId, r] = picked;
    const amount = Math.max(1, Math.floor(r.bid * this.share));
    const eventId = `e${m.nextId++}`;
    const sentMs = Date.now();
    const body = { campaignId: m.campaignId, eventId, amountMicros: amount, ...(this.bare ? {} : { requestId }) };
    const s = await post(real.pacer.url, '/v1/spend', body);
    m.log.push(`${this} → ${eventId} ${amount} for ${requestId}: ${s.status} ${JSON.stringify(s.body)}`);
    if (s.status !== 200 || s.body.status !== 'applied') fail(m, `a new event was answered ${s.status} ${JSON.stringify(s.body)}`);
    m.events.set(eventId, { amount, requestId });
    if (!this.bare) {
      if (certainlyAlive(r, sentMs) && !s.body.matchedReservation) fail(m, `the spend did not settle ${requestId}, a live reservation`);
      m.reservations.delete(requestId);
    }
    if (this.bare || !s.body.matchedReservation) m.honest = false;
    await checkInvariants(m);
  }
  toString = (): string => `spend(pick ${this.pick}, share ${this.share.toFixed(2)}${this.bare ? ', no requestId' : ''})`;
}

/** The same new event sent three times at once, settling one reservation: applied once. */
class ConcurrentSpend implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>): boolean => m.reservations.size > 0;
  async run(m: Model): Promise<void> {
    const picked = pickFrom(m.reservations, this.pick);
    if (picked === undefined) return;
    const [requestId, r] = picked;
    const eventId = `e${m.nextId++}`;
    const body = { campaignId: m.campaignId, eventId, amountMicros: r.bid, requestId };
    const answers = await Promise.all([1, 2, 3].map(() => post(real.pacer.url, '/v1/spend', body)));
    const kinds = answers.map((a) => a.body?.status).sort();
    m.log.push(`${this} → ${eventId} ${r.bid} for ${requestId}: ${kinds.join(',')}`);
    if (kinds.join(',') !== 'applied,duplicate,duplicate') fail(m, `three concurrent copies of one event were answered ${kinds.join(',')}`);
    m.events.set(eventId, { amount: r.bid, requestId });
    m.reservations.delete(requestId);
    if (!answers.some((a) => a.body.matchedReservation)) m.honest = false;
    await checkInvariants(m);
  }
  toString = (): string => `concurrentSpend(pick ${this.pick})`;
}

/** An acknowledged event resent, as is or naming another live reservation: a duplicate changes nothing. */
class Resend implements Cmd {
  constructor(readonly pick: number, readonly otherPick: number | null) {}
  check = (m: Readonly<Model>): boolean => m.events.size > 0;
  async run(m: Model): Promise<void> {
    const picked = pickFrom(m.events, this.pick);
    if (picked === undefined) return;
    const [eventId, e] = picked;
    const other = this.otherPick === null ? undefined : pickFrom(m.reservations, this.otherPick)?.[0];
    const requestId = other ?? e.requestId;
    const body = { campaignId: m.campaignId, eventId, amountMicros: e.amount, ...(requestId === undefined ? {} : { requestId }) };
    const s = await post(real.pacer.url, '/v1/spend', body);
    m.log.push(`${this} → ${eventId} naming ${requestId}: ${s.status} ${JSON.stringify(s.body)}`);
    if (s.status !== 200 || s.body.status !== 'duplicate') fail(m, `a resent event was answered ${s.status} ${JSON.stringify(s.body)}`);
    await checkInvariants(m);
  }
  toString = (): string => `resend(pick ${this.pick}${this.otherPick === null ? '' : `, naming reservation ${this.otherPick}`})`;
}

class Release implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>): boolean => m.reservations.size > 0;
  async run(m: Model): Promise<void> {
    const picked = pickFrom(m.reservations, this.pick);
    if (picked === undefined) return;
    const [requestId, r] = picked;
    const sentMs = Date.now();
    const a = await post(real.pacer.url, '/v1/release', { campaignId: m.campaignId, requestId });
    m.log.push(`${this} → ${requestId}: ${a.status} ${JSON.stringify(a.body)}`);
    if (a.status !== 200) fail(m, `release answered ${a.status}`);
    if (certainlyAlive(r, sentMs) && a.body.released !== true) fail(m, `release of ${requestId}, a live reservation, freed nothing`);
    m.reservations.delete(requestId);
    await checkInvariants(m);
  }
  toString = (): string => `release(pick ${this.pick})`;
}

/** Waits past the reservation TTL and its sweep: every reservation held so far is gone. */
class Expire implements Cmd {
  check = (m: Readonly<Model>): boolean => m.reservations.size > 0;
  async run(m: Model): Promise<void> {
    await new Promise((r) => setTimeout(r, ttlMs + expiryLateMs + 50));
    m.log.push(`${this}`);
    await checkInvariants(m);
  }
  toString = (): string => 'expire()';
}

class RaiseBudget implements Cmd {
  constructor(readonly by: number) {}
  check = (): boolean => true;
  async run(m: Model): Promise<void> {
    m.budget += this.by;
    const r = await post(real.pacer.adminUrl, '/v1/campaigns', campaignBody(m), auth);
    m.log.push(`${this} → ${r.status}, budget ${m.budget}`);
    if (r.status !== 200) fail(m, `replacing the campaign answered ${r.status} ${JSON.stringify(r.body)}`);
    await checkInvariants(m);
  }
  toString = (): string => `raiseBudget(${this.by})`;
}

class TogglePause implements Cmd {
  check = (): boolean => true;
  async run(m: Model): Promise<void> {
    m.paused = !m.paused;
    const r = await post(real.pacer.adminUrl, '/v1/campaigns', campaignBody(m), auth);
    m.log.push(`${this} → ${r.status}, paused ${m.paused}`);
    if (r.status !== 200) fail(m, `replacing the campaign answered ${r.status} ${JSON.stringify(r.body)}`);
    await checkInvariants(m);
  }
  toString = (): string => 'togglePause()';
}

/** kill -9 or SIGTERM, then a new process on the same stores: no acknowledged event may be lost. */
class Restart implements Cmd {
  constructor(readonly hard: boolean) {}
  check = (): boolean => true;
  async run(m: Model): Promise<void> {
    if (this.hard) await real.pacer.kill();
    else {
      const code = await real.pacer.stop();
      if (code !== 0) fail(m, `a graceful stop exited ${code}`);
    }
    real.pacer = await startPacer({ env, dataDir });
    for (const r of m.reservations.values()) r.uncertain = true;
    m.log.push(`${this}`);
    await checkInvariants(m);
    for (const [eventId, e] of m.events) {
      const s = await post(real.pacer.url, '/v1/spend', { campaignId: m.campaignId, eventId, amountMicros: e.amount });
      if (s.body?.status !== 'duplicate') fail(m, `after the restart, acknowledged event ${eventId} was answered ${s.status} ${JSON.stringify(s.body)}`);
    }
    await checkInvariants(m);
  }
  toString = (): string => `restart(${this.hard ? 'kill -9' : 'SIGTERM'})`;
}

/** Every command: the full model. */
const allCommands: fc.Arbitrary<Cmd>[] = [
  fc.integer({ min: 50, max: 400 }).map((bid) => new Decide(bid)),
  fc.integer({ min: 50, max: 400 }).map((bid) => new Decide(bid)),
  fc.tuple(fc.nat(), fc.double({ min: 0.1, max: 1, noNaN: true }), fc.boolean()).map(([p, s, b]) => new Spend(p, s, b && p % 3 === 0)),
  fc.tuple(fc.nat(), fc.double({ min: 0.1, max: 1, noNaN: true })).map(([p, s]) => new Spend(p, s, false)),
  fc.nat().map((p) => new ConcurrentSpend(p)),
  fc.tuple(fc.nat(), fc.option(fc.nat(), { nil: null })).map(([p, o]) => new Resend(p, o)),
  fc.nat().map((p) => new Release(p)),
  fc.constant(new Expire()),
  fc.integer({ min: 100, max: 1_000 }).map((by) => new RaiseBudget(by)),
  fc.constant(new TogglePause()),
  fc.boolean().map((hard) => new Restart(hard)),
];

/** Quick commands only (no waiting, no restart), duplicates often naming another live reservation. */
const duplicateCommands: fc.Arbitrary<Cmd>[] = [
  fc.integer({ min: 50, max: 400 }).map((bid) => new Decide(bid)),
  fc.integer({ min: 50, max: 400 }).map((bid) => new Decide(bid)),
  fc.tuple(fc.nat(), fc.double({ min: 0.1, max: 1, noNaN: true })).map(([p, s]) => new Spend(p, s, false)),
  fc.tuple(fc.nat(), fc.nat()).map(([p, o]) => new Resend(p, o)),
  fc.tuple(fc.nat(), fc.nat()).map(([p, o]) => new Resend(p, o)),
  fc.nat().map((p) => new Release(p)),
];

let run = 0;

async function modelRuns(t: Test, commands: fc.Arbitrary<Cmd>[], seed: number, numRuns: number): Promise<void> {
  let commandsRun = 0;
  const property = fc.asyncProperty(fc.commands(commands, { maxCommands: 25, size: 'max' }), async (cmds) => {
    const m: Model = {
      campaignId: `model-${run++}`, budget: 1_000, paused: false, events: new Map(), reservations: new Map(), honest: true, nextId: 0, log: [],
    };
    await createCampaign(real.pacer, campaignBody(m));
    try {
      await fc.asyncModelRun(() => ({ model: m, real }), cmds);
    } finally {
      commandsRun += m.log.length;
    }
  });
  // endOnFailure: shrinking would restart the pacer many times; the failure prints its commands.
  const result = await fc.check(property, { seed, numRuns, endOnFailure: true });
  t.equal(result.failed, false, result.failed ? `seed ${result.seed} path ${result.counterexamplePath}: ${String(result.errorInstance)}` : 'no command sequence broke the money');
  t.ok(commandsRun > 0, `${commandsRun} commands ran`);
}

/** MODEL_SEED and MODEL_RUNS explore further than `npm test` does (docs/testing.md). */
const seed = Number(process.env.MODEL_SEED ?? 7301);
const runs = Number(process.env.MODEL_RUNS ?? 5);

t.test('settled spend equals the distinct acknowledged events and the cap holds through every command, restart and expiry', (t) =>
  modelRuns(t, allCommands, seed, runs));

t.test('a duplicate spend that names another live reservation changes nothing at all',
  {},
  (t) => modelRuns(t, duplicateCommands, seed + 1, runs * 4));
