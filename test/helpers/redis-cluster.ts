import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A real Redis Cluster for a test file: `masters` redis-server processes with cluster mode on, on
 * loopback ports, each in its own directory under one temp dir, joined by
 * `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`. destroy() stops them and
 * deletes the directory.
 *
 * Ports: a cluster node also listens on its port + 10000 (the cluster bus), so both must be free.
 * Nodes are looked for in TEST_REDIS_CLUSTER_PORTS (`first-last`, default 17000-17099), starting
 * at a random offset so that two test files running at once rarely race for the same ports.
 */
export interface ClusterNode {
  host: string;
  port: number;
  /** The node's cluster ID (CLUSTER MYID). */
  id: string;
}

export interface RedisCluster {
  nodes: ClusterNode[];
  /** The PACER_REDIS_CLUSTER value for this cluster. */
  seeds: string;
  /** Moves `slots` hash slots from one node to another with `redis-cli --cluster reshard`. */
  reshard(from: number, to: number, slots: number): Promise<void>;
  /** Which node (index into nodes) serves a slot now, as node 0 sees it. */
  ownerOf(slot: number): Promise<number>;
  /** SIGKILLs one node (a master loss drill with startRedisCluster(masters, 1)). */
  kill(index: number): void;
  destroy(): Promise<void>;
}

function portRange(): [number, number] {
  const raw = process.env.TEST_REDIS_CLUSTER_PORTS ?? '17000-17099';
  const m = /^(\d+)-(\d+)$/.exec(raw);
  if (m === null) throw new Error(`TEST_REDIS_CLUSTER_PORTS must be first-last, got ${raw}`);
  return [Number(m[1]), Number(m[2])];
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.unref();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function freeClusterPorts(n: number): Promise<number[]> {
  const [first, last] = portRange();
  const span = last - first + 1;
  const start = Math.floor(Math.random() * span);
  const out: number[] = [];
  for (let i = 0; i < span && out.length < n; i++) {
    const port = first + ((start + i) % span);
    if ((await bindable(port)) && (await bindable(port + 10_000))) out.push(port);
  }
  if (out.length < n) throw new Error(`no ${n} free port pairs (p, p + 10000) in ${first}-${last}`);
  return out;
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await ok()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`redis cluster: ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startRedisCluster(masters = 3, replicas = 0): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'pacer-redis-cluster-'));
  const ports = await freeClusterPorts(masters * (1 + replicas));
  const children: ChildProcess[] = [];
  const destroy = async (): Promise<void> => {
    await Promise.all(children.map((c) => new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    })));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const child = spawn('redis-server', [
        '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no', '--dir', dir,
        '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '3000',
        '--save', '', '--appendonly', 'yes', '--appendfilename', `aof-${port}.aof`, '--appenddirname', `aof-${port}`,
        '--appendfsync', 'everysec',
      ], { stdio: 'ignore' });
      children.push(child);
    }
    for (const port of ports) await until(`node ${port} answers`, async () => (await cli(port, 'ping')).trim() === 'PONG');
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 60_000 });
    for (const port of ports) {
      await until(`node ${port} reports cluster_state:ok`, async () => (await cli(port, 'cluster', 'info')).includes('cluster_state:ok'));
    }
    // Replicas count once their first sync is done: before that a master's WAIT 1 answers 0
    // (test/store/redis-wait.test.ts failed so once, on a loaded machine, right after the start).
    if (replicas > 0) {
      for (const port of ports) {
        await until(`node ${port} has its replicas in sync`, async () => {
          const info = await cli(port, 'info', 'replication');
          if (info.includes('role:slave')) return info.includes('master_link_status:up');
          return new RegExp(`connected_slaves:${replicas}\\b`).test(info) && !/state=(wait_bgsave|send_bulk)/.test(info);
        });
      }
    }
    const nodes: ClusterNode[] = [];
    for (const port of ports) nodes.push({ host: '127.0.0.1', port, id: (await cli(port, 'cluster', 'myid')).trim() });
    return {
      nodes,
      seeds: nodes.map((n) => `${n.host}:${n.port}`).join(','),
      async reshard(from, to, slots) {
        await run('redis-cli', [
          '--cluster', 'reshard', `127.0.0.1:${nodes[from]!.port}`,
          '--cluster-from', nodes[from]!.id, '--cluster-to', nodes[to]!.id,
          '--cluster-slots', String(slots), '--cluster-yes', '--cluster-pipeline', '100',
        ], { timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
      },
      async ownerOf(slot) {
        // CLUSTER NODES: one line per node, its slot ranges from the ninth field on.
        const slotsText = await cli(nodes[0]!.port, 'cluster', 'nodes');
        for (const line of slotsText.trim().split('\n')) {
          const f = line.split(' ');
          const index = nodes.findIndex((n) => n.id === f[0]);
          for (const range of f.slice(8)) {
            if (range.startsWith('[')) continue; // a slot being migrated or imported
            const [a, b] = range.split('-').map(Number);
            if (slot >= a! && slot <= (b ?? a)!) return index;
          }
        }
        return -1;
      },
      kill(index) {
        children[index]?.kill('SIGKILL');
      },
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}
