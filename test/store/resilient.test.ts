import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { CampaignSnapshot, CounterStore, FlushBatch, FlushOutcome } from '../../shards/ports.js';
import { sfc32 } from '../../shards/rng.js';
import { VirtualTime } from '../../src/sim/clock.js';
import { MemorySpoolFs } from '../../src/sim/memfs.js';
import { MemoryStore } from '../../src/store/memory.js';
import { ResilientCounterStore, SpoolFullError, StoreUnavailableError } from '../../src/store/resilient.js';
import { leftoverSpools, replayLeftovers, spoolDir, spoolFileName } from '../../src/store/spool.js';

/**
 * The resilient store (deadline, dependency breaker, spool) on a virtual clock and an in-memory
 * file system: deadlines and probes fire when a test advances time, so nothing sleeps and every
 * run replays exactly. The test of spools left by a crashed run uses real files, as the admin
 * thread reads them at startup.
 */

/** A store that can be switched off (fails at once) or hung (never answers). */
class FlakyStore implements CounterStore {
  readonly kind = 'flaky';
  mode: 'up' | 'down' | 'hung' | 'lost' = 'up';
  readonly inner = new MemoryStore();
  calls = 0;

  async apply(batch: FlushBatch): Promise<FlushOutcome> {
    this.calls++;
    if (this.mode === 'down') throw new Error('connection refused');
    if (this.mode === 'hung') return new Promise(() => {});
    if (this.mode === 'lost') {
      // Applied, but the reply never reaches the caller.
      await this.inner.apply(batch);
      return new Promise(() => {});
    }
    return this.inner.apply(batch);
  }

  async load(c: string, d: string, f: string | null): Promise<CampaignSnapshot> {
    if (this.mode !== 'up') throw new Error('connection refused');
    return this.inner.load(c, d, f);
  }

  async close(): Promise<void> {}
}

let seq = 0;
function batch(events: [string, number][], campaignId = 'c1'): FlushBatch {
  return {
    batchId: `run:0:${++seq}`,
    atMs: Date.parse('2025-03-10T12:00:00Z'),
    campaigns: [{
      campaignId,
      day: '2025-03-10',
      events: events.map(([eventId, amountMicros]) => ({ eventId, amountMicros, requestId: '' })),
      reservationsAdded: [],
      reservationsRemoved: [],
    }],
  };
}

function setup(t: Test, over: Partial<ConstructorParameters<typeof ResilientCounterStore>[1]> = {}) {
  const time = new VirtualTime(Date.parse('2025-03-10T12:00:00Z'));
  const files = new MemorySpoolFs();
  const flaky = new FlakyStore();
  const degraded: [boolean, string][] = [];
  const late: [string, string, number][] = [];
  const spoolPath = join(spoolDir('/pacer-data'), spoolFileName('run', 0));
  const store = new ResilientCounterStore(flaky, {
    label: 'test',
    callTimeoutMs: 100,
    probeIntervalMs: 20,
    spoolPath,
    spoolBytesMax: 1 << 20,
    dedupeEventsMax: 1000,
    onDegraded: (d, r) => degraded.push([d, r]),
    timers: time,
    files,
    ...over,
  });
  store.onLateDuplicate = (c, d, a) => late.push([c, d, a]);
  t.teardown(() => store.close());
  const spoolLines = async (): Promise<number> =>
    files.list().includes(spoolPath) ? (await files.readFile(spoolPath)).toString('utf8').trim().split('\n').length : 0;
  return { time, files, flaky, store, degraded, late, spoolPath, spoolLines };
}

/** Starts p and advances virtual time until it settles (a hung call needs its deadline to pass). */
async function during<T>(time: VirtualTime, p: Promise<T>, maxMs = 10_000): Promise<T> {
  let done = false;
  const watched = p.finally(() => {
    done = true;
  });
  await time.until(() => done, 1, maxMs);
  return watched;
}

t.test('spend is acknowledged from the spool while the store is down, and reaches it exactly once', async (t) => {
  const { time, files, flaky, store, degraded, late, spoolPath, spoolLines } = setup(t);
  t.same(await store.apply(batch([['before', 100]])), [[true]], 'healthy: applied by the store');

  flaky.mode = 'down';
  t.same(await store.apply(batch([['a', 10], ['b', 20]])), [[true, true]], 'down: acknowledged from the spool');
  t.ok(store.spooling);
  t.equal(degraded.at(-1)?.[0], true, 'degraded is reported');
  t.ok(files.list().includes(spoolPath), 'the spool file exists');
  t.equal(await spoolLines(), 1, 'one line per batch');
  t.same(await store.apply(batch([['a', 10]])), [[false]], 'a resend within the outage is a duplicate');
  t.same(await store.apply(batch([['before', 100], ['c', 30]])), [[true, true]], 'an event stored before the outage cannot be told apart yet');
  await t.rejects(store.load('c1', '2025-03-10', null), StoreUnavailableError, 'loads fail fast while spooling');
  await time.advance(100);
  t.ok(store.spooling, 'the probes fail while the store is down');
  t.equal(flaky.inner.settledOf('c1', '2025-03-10'), 100, 'nothing spooled reached the store yet');

  flaky.mode = 'up';
  await time.until(() => !store.spooling);
  t.equal(degraded.at(-1)?.[0], false, 'recovery is reported');
  await time.advance(0);
  t.notOk(files.list().includes(spoolPath), 'the replayed spool is deleted');
  t.same(late, [['c1', '2025-03-10', 100]], 'the resent old event is taken back out of memory');
  t.equal(flaky.inner.settledOf('c1', '2025-03-10'), 160, 'the store holds each distinct event once');
  t.same(await store.apply(batch([['d', 1]])), [[true]], 'direct again');
});

t.test('a store that hangs is cut off at the deadline and the batch spooled', async (t) => {
  const { time, flaky, store } = setup(t, { callTimeoutMs: 50 });
  flaky.mode = 'hung';
  const started = time.now();
  let answeredAt = -1;
  const first = store.apply(batch([['h', 5]])).then((o) => {
    answeredAt = time.now();
    return o;
  });
  await time.advance(49);
  t.equal(answeredAt, -1, 'not answered before the deadline');
  await time.advance(1);
  t.same(await first, [[true]], 'answered from the spool');
  t.equal(answeredAt - started, 50, 'answered exactly at the deadline');
  const calls = flaky.calls;
  t.same(await store.apply(batch([['i', 5]])), [[true]], 'with the breaker open, the next batch is answered without the clock moving');
  t.equal(flaky.calls, calls, 'and without touching the store');
  await time.advance(20);
  t.equal(flaky.calls, calls + 1, 'the probe interval later, the replayer probes the store once');
  flaky.mode = 'up';
  await time.until(() => !store.spooling);
  t.equal(flaky.inner.settledOf('c1', '2025-03-10'), 10);
});

t.test('a write whose reply is lost is spooled, and its replay counts once', async (t) => {
  const { time, flaky, store, late } = setup(t);
  flaky.mode = 'lost';
  t.same(await during(time, store.apply(batch([['l1', 7], ['l2', 8]]))), [[true, true]], 'acknowledged from the spool after the deadline');
  t.equal(flaky.inner.settledOf('c1', '2025-03-10'), 15, 'the write itself reached the store');
  flaky.mode = 'up';
  await time.until(() => !store.spooling);
  t.equal(flaky.inner.settledOf('c1', '2025-03-10'), 15, 'the replay, under the same batch ID, added nothing');
  t.same(late, [], 'and memory needs no correction');
});

t.test('every batch the spool acknowledged survives a power loss', async (t) => {
  const { files, flaky, store, spoolPath } = setup(t);
  flaky.mode = 'down';
  t.same(await store.apply(batch([['s1', 4], ['s2', 5]])), [[true, true]]);
  t.same(await store.apply(batch([['s3', 6]])), [[true]]);
  files.crash();
  const replayed = new MemoryStore();
  const r = await replayLeftovers(files.list(), (b) => replayed.apply(b), files);
  t.same(r, { files: 1, batches: 2, events: 3 }, 'both lines were synced before their answer');
  t.equal(replayed.settledOf('c1', '2025-03-10'), 15);
  t.notOk(files.list().includes(spoolPath), 'the replayed file is removed');
});

t.test('a full spool refuses the batch instead of growing', async (t) => {
  const { flaky, store } = setup(t, { spoolBytesMax: 300 });
  flaky.mode = 'down';
  await store.apply(batch([['x1', 1], ['x2', 2], ['x3', 3]]));
  await t.rejects(store.apply(batch([['y', 1]])), SpoolFullError);
});

t.test('the dedupe memory of the spool is bounded', async (t) => {
  const { time, flaky, store, late } = setup(t, { dedupeEventsMax: 2 });
  flaky.mode = 'down';
  await store.apply(batch([['m1', 1], ['m2', 2], ['m3', 3]]));
  t.same(await store.apply(batch([['m1', 1]])), [[true]], 'a forgotten event is answered applied…');
  flaky.mode = 'up';
  await time.until(() => !store.spooling);
  t.same(late, [['c1', '2025-03-10', 1]], '…and corrected on replay');
  t.equal(flaky.inner.settledOf('c1', '2025-03-10'), 6);
});

t.test('spools left by a crashed run are replayed in order, a torn last line ignored, twice safely', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pacer-spool-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(spoolDir(dir), { recursive: true });
  const old = join(spoolDir(dir), spoolFileName('aaa', 0));
  const b1 = batch([['p', 7]]);
  const b2 = batch([['q', 8], ['p', 7]]);
  writeFileSync(old, JSON.stringify({ b: b1, a: '1' }) + '\n' + JSON.stringify({ b: b2, a: '10' }) + '\n');
  appendFileSync(old, '{"b":{"batchId":"torn');
  writeFileSync(join(spoolDir(dir), spoolFileName('zzz', 1)), '');
  const files = leftoverSpools(dir, 'zzz');
  t.same(files, [old], 'the current run’s own spool is not a leftover');
  const store = new MemoryStore();
  const r = await replayLeftovers(files, (b) => store.apply(b));
  t.same(r, { files: 1, batches: 2, events: 3 });
  t.equal(store.settledOf('c1', '2025-03-10'), 15);
  t.notOk(existsSync(old));
  writeFileSync(old, JSON.stringify({ b: b1, a: '1' }) + '\n');
  await replayLeftovers(leftoverSpools(dir, 'zzz'), (b) => store.apply(b));
  t.equal(store.settledOf('c1', '2025-03-10'), 15, 'a spool replayed again counts nothing twice');
});

t.test('outages that start and end in quick succession lose no spooled batch (seeded)', async (t) => {
  for (const seed of [1, 2, 3]) {
    const { time, flaky, store } = setup(t, { probeIntervalMs: 2 });
    const random = sfc32(seed);
    const modes = ['up', 'down', 'hung', 'lost'] as const;
    let expected = 0;
    let n = 0;
    for (let round = 0; round < 40; round++) {
      flaky.mode = modes[Math.floor(random() * modes.length)]!;
      // Several batches at once (more than the flusher sends) widen the windows a race needs.
      const applies = [];
      for (let k = 0; k < 5; k++) {
        const amount = 1 + Math.floor(random() * 13);
        expected += amount;
        applies.push(store.apply(batch([[`q${n++}`, amount]])));
        await time.advance(Math.floor(random() * 3));
      }
      for (const o of await during(time, Promise.all(applies))) t.same(o, [[true]]);
      await time.advance(Math.floor(random() * 5));
    }
    flaky.mode = 'up';
    await time.until(() => !store.spooling, 1);
    await time.advance(20);
    t.equal(flaky.inner.settledOf('c1', '2025-03-10'), expected, `seed ${seed}: every acknowledged event reached the store once`);
  }
});
