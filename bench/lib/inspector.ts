import { writeFileSync } from 'node:fs';
import WebSocket from 'ws';

/**
 * A small Chrome DevTools Protocol client for a Node process started with `--inspect=127.0.0.1:0`:
 * it reaches the main thread directly and every worker thread through the NodeWorker domain, so a
 * benchmark can collect garbage, read the V8 heap and take a heap snapshot of each thread without
 * any code in the process under test.
 */
export interface HeapUsage {
  usedMb: number;
  totalMb: number;
  /**
   * The thread's ArrayBuffer memory (process.memoryUsage().arrayBuffers in that thread: typed-array
   * columns, message buffers), outside the V8 heap; null when the thread could not say.
   */
  arrayBuffersMb: number | null;
  /**
   * What V8 itself has malloc'd for the thread outside its heap's pages (getHeapStatistics'
   * malloced_memory: the collector's remembered sets and worklists, the compiler's zones); null when
   * the thread could not say.
   */
  mallocedMb: number | null;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/** Longest wait for one inspector call (a full collection of a multi-GB heap takes seconds, not minutes). */
const inspectorCallTimeoutMs = 600_000;

export class ProcessInspector {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Worker sessions by thread name (the Worker's `name`: shard-0, admin, …). */
  readonly workers = new Map<string, string>();
  private readonly chunks = new Map<string, string[]>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => this.onMessage('main', JSON.parse(data.toString()) as CdpMessage));
  }

  /** Connects and attaches to every worker thread running now. */
  static async connect(url: string): Promise<ProcessInspector> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const insp = new ProcessInspector(ws);
    await insp.send('main', 'NodeWorker.enable', { waitForDebuggerOnStart: false });
    // Attach events arrive right after enable; give them a moment.
    await new Promise((r) => setTimeout(r, 300));
    return insp;
  }

  get threads(): string[] {
    return ['main', ...this.workers.keys()];
  }

  private onMessage(thread: string, msg: CdpMessage): void {
    if (msg.method === 'NodeWorker.attachedToWorker') {
      const p = msg.params as { sessionId: string; workerInfo: { title: string } };
      // Titles read "[worker 2] admin": keep the Worker's name.
      const name = (p.workerInfo.title || p.sessionId).replace(/^\[worker \d+\] ?/, '');
      // An unnamed worker is not one of the pacer's threads but a pool's (the profile service's
      // piscina fit worker): idle, it blocks in Atomics.wait and never answers, which left heap
      // readings waiting (a 100,000-campaign redis-postgres run, twice, once the pool had started).
      if (name !== '') this.workers.set(name, p.sessionId);
      return;
    }
    if (msg.method === 'NodeWorker.receivedMessageFromWorker') {
      const p = msg.params as { sessionId: string; message: string };
      const name = [...this.workers].find(([, s]) => s === p.sessionId)?.[0] ?? p.sessionId;
      this.onMessage(name, JSON.parse(p.message) as CdpMessage);
      return;
    }
    if (msg.method === 'HeapProfiler.addHeapSnapshotChunk') {
      this.chunks.get(thread)?.push((msg.params as { chunk: string }).chunk);
      return;
    }
    if (msg.id === undefined) return;
    const waiter = this.pending.get(msg.id);
    if (waiter === undefined) return;
    this.pending.delete(msg.id);
    if (msg.error) waiter.reject(new Error(`${msg.error.message}`));
    else waiter.resolve(msg.result);
  }

  send(thread: string, method: string, params: unknown = {}): Promise<unknown> {
    const id = this.nextId++;
    const payload = JSON.stringify({ id, method, params });
    return new Promise((resolve, reject) => {
      // A reply that never comes must fail the bench loudly, not leave it waiting for ever (seen once
      // at 1,000,000 campaigns: every thread idle, no answer to a heap reading).
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the inspector did not answer ${method} on thread ${thread} within ${inspectorCallTimeoutMs / 1000} s`));
      }, inspectorCallTimeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      if (thread === 'main') this.ws.send(payload);
      else {
        const sessionId = this.workers.get(thread);
        if (sessionId === undefined) {
          this.pending.get(id)!.reject(new Error(`no thread ${thread}`));
          this.pending.delete(id);
          return;
        }
        this.ws.send(JSON.stringify({ id: this.nextId++, method: 'NodeWorker.sendMessageToWorker', params: { sessionId, message: payload } }));
      }
    });
  }

  /** Full garbage collection in every thread, then each thread's V8 heap. */
  async heapByThread(): Promise<Record<string, HeapUsage>> {
    const out: Record<string, HeapUsage> = {};
    for (const t of this.threads) {
      await this.send(t, 'HeapProfiler.enable');
      await this.send(t, 'HeapProfiler.collectGarbage');
      const u = (await this.send(t, 'Runtime.getHeapUsage')) as { usedSize: number; totalSize: number };
      const e = (await this.send(t, 'Runtime.evaluate', { expression: 'process.memoryUsage().arrayBuffers', returnByValue: true })) as {
        result?: { value?: unknown };
      };
      const ab = typeof e.result?.value === 'number' ? e.result.value : null;
      const m = (await this.send(t, 'Runtime.evaluate', {
        expression: "process.getBuiltinModule?.('v8')?.getHeapStatistics().malloced_memory ?? null",
        returnByValue: true,
      })) as { result?: { value?: unknown } };
      const malloced = typeof m.result?.value === 'number' ? m.result.value : null;
      out[t] = {
        usedMb: Math.round(u.usedSize / 104857.6) / 10,
        totalMb: Math.round(u.totalSize / 104857.6) / 10,
        arrayBuffersMb: ab === null ? null : Math.round(ab / 104857.6) / 10,
        mallocedMb: malloced === null ? null : Math.round(malloced / 104857.6) / 10,
      };
    }
    return out;
  }

  /** Writes a heap snapshot of `thread` to `path` (loadable in Chrome DevTools) and returns it parsed. */
  async snapshot(thread: string, path: string): Promise<HeapSnapshot> {
    this.chunks.set(thread, []);
    await this.send(thread, 'HeapProfiler.enable');
    await this.send(thread, 'HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    const text = this.chunks.get(thread)!.join('');
    this.chunks.delete(thread);
    writeFileSync(path, text);
    return JSON.parse(text) as HeapSnapshot;
  }

  close(): void {
    this.ws.close();
  }
}

interface CdpMessage {
  id?: number;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: { message: string };
}

export interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/**
 * The largest groups of a heap snapshot by self size: objects grouped by constructor name, strings,
 * arrays, compiled code and the rest by their V8 type. Self sizes only (no retained sizes), which
 * add up to the heap's used size.
 */
export function topBySelfSize(s: HeapSnapshot, n: number): { group: string; count: number; mb: number }[] {
  const fields = s.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = s.snapshot.meta.node_types[0];
  const groups = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + typeAt]!]!;
    const group = type === 'object' || type === 'closure' ? `${type} ${s.strings[s.nodes[i + nameAt]!]}` : type;
    const g = groups.get(group) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += s.nodes[i + sizeAt]!;
    groups.set(group, g);
  }
  return [...groups]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, n)
    .map(([group, g]) => ({ group, count: g.count, mb: Math.round(g.bytes / 10485.76) / 100 }));
}
