import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { limits } from '../../shards/limits.js';
import { conflictsOf, givesWay, InstanceGuard, InstanceRegistry } from '../../src/store/instances.js';
import { openRedis, whenReady } from '../../src/store/redis.js';
import { adminToken, createCampaign, mainJs, post, root, startPacer } from '../helpers/server.js';
import { createDatabase, dropRedisPrefix, freePort, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * Instances sharing a Redis prefix (src/store/instances.ts): an instance that cannot share budgets
 * with a live instance on the same prefix (leases off beside any other, or leases on beside one
 * without) does not serve: its /readyz answers 503 naming PACER_ERR_INSTANCE_CONFLICT, its log says
 * so with the fix, and its shards have no campaign, so a decision is never allowed. It starts as
 * soon as the other instance is gone. A restart of the same instance (same data directory) is not
 * held up by the entry its killed predecessor left.
 */
t.setTimeout(300_000);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Waiting {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
  kill(): Promise<void>;
}

/** Starts a pacer without waiting for "ready" (startPacer does), on ports known in advance. */
async function spawnPacer(env: Record<string, string>, dataDir: string): Promise<Waiting> {
  const port = await freePort();
  const child = spawn(process.execPath, [mainJs], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '', PACER_HOST: '127.0.0.1', PACER_PORT: String(port), PACER_ADMIN_PORT: String(await freePort()),
      PACER_SHARDS: '1', PACER_ROUTERS: '1', PACER_DATA_DIR: dataDir, PACER_ADMIN_TOKEN: adminToken, ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child, url: `http://127.0.0.1:${port}`, stderr: () => err, exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

async function until(what: string, ok: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      if (await ok()) return Date.now() - started;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function readyz(url: string): Promise<{ status: number; body: { status: string; reason?: string } }> {
  const r = await fetch(`${url}/readyz`);
  return { status: r.status, body: (await r.json()) as { status: string; reason?: string } };
}

const db = await createDatabase('instance_guard');
const dirs: string[] = [];
const dir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'pacer-guard-'));
  dirs.push(d);
  return d;
};
const prefixes: string[] = [];
t.teardown(async () => {
  for (const p of prefixes) await dropRedisPrefix(redisUrl, p);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await db.drop();
});
const envFor = (leases: 'on' | 'off'): Record<string, string> => {
  const prefix = uniqueName('pacer-guard');
  prefixes.push(prefix);
  return { PACER_STORE: 'redis', PACER_REDIS_URL: redisUrl, PACER_REDIS_KEY_PREFIX: prefix, PACER_DATABASE_URL: db.url, PACER_SHARDS: '1', PACER_LEASES: leases };
};

t.test('a second instance without leases on the same Redis prefix does not serve, and starts once the first is gone', async (t) => {
  const env = envFor('off');
  const a = await startPacer({ env });
  t.teardown(() => a.kill());
  await createCampaign(a, { id: 'guard-1', dailyBudgetMicros: 1_000_000, strategy: 'ASAP', breaker: { enabled: false } });
  t.equal((await post(a.url, '/v1/decide', { campaignId: 'guard-1', bidMicros: 1_000 })).body.allow, true, 'A serves');

  const b = await spawnPacer({ ...env, PACER_LEASES: 'off' }, dir());
  t.teardown(() => b.kill());
  await until('B logs the conflict', () => b.stderr().includes('PACER_ERR_INSTANCE_CONFLICT'));
  const line = JSON.parse(b.stderr().split('\n').find((l) => l.includes('PACER_ERR_INSTANCE_CONFLICT'))!) as { level: string; msg: string; code: string };
  t.equal(line.level, 'error', 'logged as an error');
  t.equal(line.code, 'PACER_ERR_INSTANCE_CONFLICT');
  t.match(line.msg, /shares the Redis key prefix .* with the live instance .*\(leases off\)/, `names the other instance: ${line.msg}`);
  t.match(line.msg, /Set PACER_LEASES=on on every instance that shares this prefix, or give this one its own PACER_REDIS_KEY_PREFIX/, 'and the fix');
  const r = await readyz(b.url);
  t.equal(r.status, 503, 'B is not ready');
  t.match(r.body.reason ?? '', /^PACER_ERR_INSTANCE_CONFLICT: /, `its /readyz names the conflict: ${r.body.reason?.slice(0, 80)}…`);
  for (let i = 0; i < 5; i++) {
    const d = await post(b.url, '/v1/decide', { campaignId: 'guard-1', bidMicros: 1_000 });
    t.not(d.body?.allow, true, `a decision on B is not allowed (${d.status} ${JSON.stringify(d.body).slice(0, 80)})`);
    await sleep(200);
  }
  t.notOk(b.stderr().includes('"msg":"ready"'), 'B never announced ready');

  // A stops gracefully and leaves the registry: B starts at once.
  await a.stop();
  const took = await until('B starts after A stopped', () => b.stderr().includes('instance conflict gone: starting'), 20_000);
  t.ok(took < limits.instanceHeartbeatMs * 3, `B started ${took} ms after A stopped (it looks every ${limits.instanceHeartbeatMs} ms)`);
  await until('B is ready', async () => (await readyz(b.url)).status === 200, 30_000);
  await until('B allows', async () => (await post(b.url, '/v1/decide', { campaignId: 'guard-1', bidMicros: 1_000 })).body.allow === true);
  t.pass('B allows decisions once it is alone');
});

t.test('leases on beside an instance without leases: refused either way round', async (t) => {
  for (const [first, second, why] of [
    ['off', 'on', /an instance without leases decides from its own memory, outside every lease/],
    ['on', 'off', /without leases each instance allows every budget in full from its own memory/],
  ] as const) {
    const env = envFor(first);
    const a = await startPacer({ env });
    const b = await spawnPacer({ ...env, PACER_LEASES: second }, dir());
    await until(`leases ${second} beside leases ${first}: conflict logged`, () => b.stderr().includes('PACER_ERR_INSTANCE_CONFLICT'));
    const msg = (JSON.parse(b.stderr().split('\n').find((l) => l.includes('PACER_ERR_INSTANCE_CONFLICT'))!) as { msg: string }).msg;
    t.match(msg, why, `leases ${second} beside leases ${first}: ${msg.slice(0, 120)}…`);
    t.equal((await readyz(b.url)).status, 503, 'not ready');
    await b.kill();
    await a.kill();
  }
});

t.test('instances with leases on share a prefix', async (t) => {
  const env = envFor('on');
  const a = await startPacer({ env });
  const b = await startPacer({ env });
  t.equal((await readyz(a.url)).status, 200, 'A ready');
  t.equal((await readyz(b.url)).status, 200, 'B ready');
  t.notOk(a.stderr().includes('PACER_ERR_INSTANCE_CONFLICT') || b.stderr().includes('PACER_ERR_INSTANCE_CONFLICT'), 'no conflict logged');
  await a.stop();
  await b.stop();
});

t.test('an instance held back by a conflict stops at once on SIGTERM, and the one serving leaves the registry when it stops', async (t) => {
  const env = envFor('off');
  const a = await startPacer({ env });
  t.teardown(() => a.kill());
  const b = await spawnPacer(env, dir());
  t.teardown(() => b.kill());
  await until('B logs the conflict', () => b.stderr().includes('PACER_ERR_INSTANCE_CONFLICT'));
  const started = Date.now();
  b.child.kill('SIGTERM');
  const code = await b.exited;
  const took = Date.now() - started;
  t.equal(code, 0, 'B exits 0');
  t.ok(took < limits.shutdownGraceMs, `within the grace period (${took} ms, grace ${limits.shutdownGraceMs} ms)`);
  t.notOk(b.stderr().includes('threads did not stop in time'), 'every thread stopped');
  const redis = openRedis(redisUrl, 'test');
  t.teardown(() => redis.disconnect());
  await whenReady(redis, 2_000);
  const key = `${env.PACER_REDIS_KEY_PREFIX}:instances`;
  t.equal(Object.keys(await redis.hgetall(key)).length, 1, 'B never registered: only A is listed');
  await a.stop();
  t.same(await redis.hgetall(key), {}, 'A left the registry when it stopped');
});

t.test('a restart of the same instance after kill -9 is not held up by its own entry', async (t) => {
  const env = envFor('off');
  const dataDir = dir();
  const a = await startPacer({ env, dataDir });
  await sleep(limits.instanceHeartbeatMs * 1.5); // registered and renewed at least once
  a.child.kill('SIGKILL');
  await new Promise((r) => a.child.once('exit', r));
  const started = Date.now();
  const again = await startPacer({ env, dataDir });
  t.teardown(() => again.kill());
  const took = Date.now() - started;
  t.notOk(again.stderr().includes('PACER_ERR_INSTANCE_CONFLICT'), `no conflict with its own entry (ready in ${took} ms, the entry lives ${limits.instanceTtlMs} ms)`);
  t.equal((await readyz(again.url)).status, 200, 'ready');
});

t.test('the registry script: live entries, expiry, leave, and who gives way', async (t) => {
  const prefix = uniqueName('pacer-guard-unit');
  prefixes.push(prefix);
  const redis = openRedis(redisUrl, 'test');
  await whenReady(redis, 2_000);
  t.teardown(() => redis.disconnect());
  const a = new InstanceRegistry(redis, prefix, { name: 'host-a:/data', instanceId: 'a1', leases: false });
  const b = new InstanceRegistry(redis, prefix, { name: 'host-b:/data', instanceId: 'b1', leases: true });
  t.same((await a.check()).others, [], 'nobody registered');
  const first = await a.beat();
  const seen = (await b.check()).others;
  t.same(seen.map((o) => [o.name, o.instanceId, o.leases, o.sinceMs]), [['host-a:/data', 'a1', false, first.sinceMs]], 'B sees A');
  t.equal((await a.beat()).sinceMs, first.sinceMs, "a renewal keeps the entry's since");
  t.same(conflictsOf(b.self, seen).map((o) => o.name), ['host-a:/data'], 'leases on beside leases off: a conflict');
  t.same(conflictsOf({ name: 'x', leases: true }, [{ ...seen[0]!, leases: true }]), [], 'leases on beside leases on: none');
  // A restart of A (same name, new instanceId) does not conflict with the old entry.
  const a2 = new InstanceRegistry(redis, prefix, { name: 'host-a:/data', instanceId: 'a2', leases: false });
  const old = (await a2.check()).others;
  t.same(old.map((o) => o.instanceId), ['a1'], 'it sees its earlier run');
  t.same(conflictsOf(a2.self, old), [], 'which is not a conflict');
  t.ok(givesWay(first.sinceMs + 1, 'b', { ...seen[0]!, sinceMs: first.sinceMs }), 'the later one gives way');
  t.notOk(givesWay(first.sinceMs, 'a', { ...seen[0]!, name: 'b', sinceMs: first.sinceMs + 1 }), 'the earlier one stays');
  await a.leave();
  t.same((await b.check()).others, [], 'a left entry is gone at once');
  await a.beat();
  await sleep(limits.instanceTtlMs + 200);
  t.same((await b.check()).others, [], `an entry not renewed for ${limits.instanceTtlMs} ms is gone`);
});

t.test('an instance that finds an earlier conflicting one while serving gives way', async (t) => {
  const prefix = uniqueName('pacer-guard-race');
  prefixes.push(prefix);
  const redis = openRedis(redisUrl, 'test');
  await whenReady(redis, 2_000);
  const registry = new InstanceRegistry(redis, prefix, { name: 'host-late:/data', instanceId: 'late1', leases: false });
  const events: string[] = [];
  let gaveWay = '';
  const guard = new InstanceGuard(registry, prefix, {
    onConflict: (m) => events.push(m === null ? 'clear' : 'conflict'),
    onGiveWay: (m) => (gaveWay = m),
    log: () => undefined,
  }, () => redis.disconnect());
  await guard.start();
  t.same(events, ['clear'], 'alone: it serves');
  // Another instance that registered earlier (as when both started while Redis was away).
  await redis.hset(`${prefix}:instances`, 'host-early:/data', `early1|0|1|${Date.now() + 60_000}`);
  await until('the guard gives way', () => gaveWay !== '', limits.instanceHeartbeatMs * 5);
  t.match(gaveWay, /PACER_ERR_INSTANCE_CONFLICT: .*"host-early:\/data" \(leases off\)/, 'and says why');
  await guard.stop();
});

t.test('the conflict text is documented', async (t) => {
  const { readFileSync } = await import('node:fs');
  const ops = readFileSync(join(root, 'docs/operations.md'), 'utf8');
  t.match(ops, /PACER_ERR_INSTANCE_CONFLICT/, 'docs/operations.md explains PACER_ERR_INSTANCE_CONFLICT');
  t.match(readFileSync(join(root, 'README.md'), 'utf8'), /PACER_ERR_INSTANCE_CONFLICT/, 'README names it next to PACER_LEASES');
});
