import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import calculateSlot from 'cluster-key-slot';
import t from 'tap';
import { LeaseClient } from '../../src/store/leases.js';
import { campaignKeys, NotReplicatedError, openRedis, openRedisCluster, RedisCounterStore, whenReady } from '../../src/store/redis.js';
import { batch, delta, ev } from '../helpers/counter-contract.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * PACER_REDIS_WAIT_REPLICAS (src/store/redis.ts, NotReplicatedError): a flush or a lease grant
 * counts only once the master's replica acknowledged it. On a real cluster of three masters with
 * a replica each, a replica stopped with SIGSTOP (connected but silent) makes the flush and the
 * grant fail; once it runs again the same batch is answered applied and counted once. On a Redis
 * without replicas WAIT asks for none, so nothing changes there.
 */
t.setTimeout(300_000);
const run = promisify(execFile);
const day = '2026-05-01';

t.test('a single Redis without replicas: WAIT 1 waits for none, flushes and grants go through', async (t) => {
  const prefix = uniqueName('pacer-wait1');
  const client = openRedis(redisUrl, 'test');
  await whenReady(client, 5_000);
  t.teardown(async () => {
    await dropRedisPrefix(redisUrl, prefix);
    client.disconnect();
  });
  const store = new RedisCounterStore(client, { prefix, counterTtlSeconds: 3 * 86_400, label: 'test', waitReplicas: 1 });
  t.same(await store.apply(batch(Date.now(), delta('w', day, { events: [ev('e1', 700)] }))), [[true]]);
  t.equal((await store.load('w', day, null)).settledMicros, 700);
  const leases = new LeaseClient(client, prefix, 3 * 86_400, 1);
  const g = await leases.grant({
    campaignId: 'w', day, holder: 'h1', budgetMicros: 10_000, budgetVersion: 1, usedTotalMicros: 0,
    reservedMicros: 0, reservedUntilMs: 0, wantMicros: 5_000, ttlMs: 5_000,
  });
  t.equal(g.grantedMicros, 5_000, 'granted, with the settled 700 seen');
  t.equal(g.settledMicros, 700);
});

t.test('a cluster with replicas: a silent replica fails the flush and the grant; the retry counts once', async (t) => {
  const cluster = await startRedisCluster(3, 1);
  const stopped: number[] = [];
  t.teardown(async () => {
    for (const pid of stopped) process.kill(pid, 'SIGCONT');
    await cluster.destroy();
  });
  const client = openRedisCluster(cluster.nodes.map(({ host, port }) => ({ host, port })), 'test');
  t.ok(await whenReady(client, 10_000), 'the cluster client is ready');
  t.teardown(() => client.disconnect());
  const prefix = uniqueName('pacer-wait');
  const store = new RedisCounterStore(client, { prefix, counterTtlSeconds: 3 * 86_400, label: 'test', waitReplicas: 1 });
  const leases = new LeaseClient(client, prefix, 3 * 86_400, 1);
  const grant = (holder: string) => leases.grant({
    campaignId: 'c', day, holder, budgetMicros: 100_000, budgetVersion: 1, usedTotalMicros: 0,
    reservedMicros: 0, reservedUntilMs: 0, wantMicros: 10_000, ttlMs: 60_000,
  });
  // What WAIT costs a flush of 10 campaigns on this cluster (printed, not asserted: speed is
  // measured, not tested; loopback replicas, so this is the floor of a real network's cost).
  const plain = new RedisCounterStore(client, { prefix, counterTtlSeconds: 3 * 86_400, label: 'test' });
  // A flush whose replica did not answer within limits.redisWaitTimeoutMs (a loaded machine: the
  // replica is a process on the same cores) is counted, not thrown: this loop measures.
  let late = 0;
  const median = async (s: RedisCounterStore, tag: string): Promise<number> => {
    const ms: number[] = [];
    for (let i = 0; i < 200; i++) {
      const b = batch(Date.now(), ...Array.from({ length: 10 }, (_, k) => delta(`m${k}`, day, { events: [ev(`${tag}-${i}-${k}`, 1)] })));
      const t0 = performance.now();
      try {
        await s.apply(b);
      } catch (err) {
        if (!(err instanceof NotReplicatedError)) throw err;
        late++;
      }
      ms.push(performance.now() - t0);
    }
    ms.sort((a, b) => a - b);
    return ms[100]!;
  };
  const m0 = await median(plain, 'p');
  const m1 = await median(store, 'w');
  t.comment(`flush of 10 campaigns, median of 200: ${m0.toFixed(2)} ms without WAIT, ${m1.toFixed(2)} ms with WAIT 1 (${late} not replicated in time)`);
  const first = batch(Date.now(), delta('c', day, { events: [ev('a1', 1_000)] }));
  t.same(await store.apply(first), [[true]], 'with the replica running, WAIT 1 is met');
  t.equal((await grant('h1')).grantedMicros, 10_000);

  // The master of campaign c's slot, and its replica's process.
  const slot = calculateSlot(campaignKeys(prefix, 'c').days);
  const master = cluster.nodes[await cluster.ownerOf(slot)]!;
  let replicaPort = 0;
  for (let i = 0; i < 100 && replicaPort === 0; i++) {
    const repl = (await run('redis-cli', ['-p', String(master.port), 'info', 'replication'])).stdout;
    replicaPort = Number(/slave0:ip=[^,]*,port=(\d+),state=online/.exec(repl)?.[1] ?? 0);
    if (replicaPort === 0) await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(replicaPort > 0, `the master on ${master.port} has a replica on ${replicaPort}`);
  const info = (await run('redis-cli', ['-p', String(replicaPort), 'info', 'server'])).stdout;
  const pid = Number(/process_id:(\d+)/.exec(info)![1]);
  process.kill(pid, 'SIGSTOP');
  stopped.push(pid);

  const second = batch(Date.now(), delta('c', day, { events: [ev('a2', 2_000)] }));
  await t.rejects(store.apply(second), NotReplicatedError, 'the flush is not acknowledged: the replica did not confirm it');
  await t.rejects(grant('h2'), NotReplicatedError, 'nor is the grant: its holder does not use it');

  process.kill(pid, 'SIGCONT');
  stopped.pop();
  let out: unknown;
  for (let i = 0; i < 50 && out === undefined; i++) {
    out = await store.apply(second).catch(() => undefined);
    if (out === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  t.same(out, [[true]], 'the same batch, retried once the replica answers, is applied');
  t.equal((await store.load('c', day, null)).settledMicros, 3_000, 'and counted once');
  const replicaSettled = (await run('redis-cli', ['-p', String(replicaPort), '-c', 'get', campaignKeys(prefix, 'c').day(day)])).stdout.trim();
  t.equal(replicaSettled, '3000', 'the replica holds the same total');
});
