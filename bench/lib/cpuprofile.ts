import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Reads the `.cpuprofile` files `node --cpu-prof` wrote (one per thread: the file name ends in
 * `<pid>.<threadId>.<seq>.cpuprofile`, thread 0 is the main thread) and sums the self time of
 * every function: the time the sampler found that function itself on top of the stack. Used by
 * `bench/http.ts --cpu-prof`; also runnable on its own:
 *
 *   node dist/bench/lib/cpuprofile.js DIR_OR_FILE [--top N]
 */
interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  /** `name (file:line)`, or a V8 pseudo-frame such as `(garbage collector)`. */
  fn: string;
  ms: number;
  /** Share of the thread's busy time (every sample that was not idle). */
  pct: number;
}

export interface ThreadProfile {
  file: string;
  /** Thread ID from the file name: 0 is the main thread. */
  threadId: number;
  totalMs: number;
  /** Time not spent idle, (program) included. */
  busyMs: number;
  top: SelfTime[];
}

function label(f: CallFrame): string {
  const name = f.functionName === '' ? '(anonymous)' : f.functionName;
  if (f.url === '') return name;
  // Trim to the path inside the project (or node_modules) so that lines stay short.
  const file = f.url.replace(/^file:\/\//, '').replace(/^.*\/(dist|node_modules)\//, '$1/');
  return `${name} (${file}:${f.lineNumber + 1})`;
}

export function summarise(path: string, topN: number): ThreadProfile {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const self = new Map<string, number>();
  let total = 0;
  // The delta before sample i is the time that sample stands for (V8's own convention).
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const key = label(byId.get(p.samples[i]!)!.callFrame);
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const idle = self.get('(idle)') ?? 0;
  const top = [...self]
    .filter(([k]) => k !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([fn, us]) => ({ fn, ms: Math.round(us / 100) / 10, pct: Math.round((us / Math.max(1, total - idle)) * 1000) / 10 }));
  const m = /\.(\d+)\.(\d+)\.(\d+)\.cpuprofile$/.exec(basename(path));
  return {
    file: basename(path),
    threadId: m === null ? -1 : Number(m[2]),
    totalMs: Math.round(total / 1000),
    busyMs: Math.round((total - idle) / 1000),
    top,
  };
}

/** Every profile in a directory, main thread first. */
export function summariseDir(dir: string, topN: number): ThreadProfile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => summarise(join(dir, f), topN))
    .sort((a, b) => a.threadId - b.threadId);
}

export function format(t: ThreadProfile): string {
  const head = `thread ${t.threadId} (${t.file}): ${t.totalMs} ms sampled, ${t.busyMs} ms busy`;
  const rows = t.top.map((x) => `  ${x.ms.toFixed(1).padStart(9)} ms ${x.pct.toFixed(1).padStart(5)}% of busy  ${x.fn}`);
  return [head, ...rows].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const target = process.argv[2];
  if (target === undefined) throw new Error('usage: node dist/bench/lib/cpuprofile.js DIR_OR_FILE [--top N]');
  const i = process.argv.indexOf('--top');
  const topN = i > 0 ? Number(process.argv[i + 1]) : 25;
  const profiles = target.endsWith('.cpuprofile') ? [summarise(target, topN)] : summariseDir(target, topN);
  for (const t of profiles) process.stdout.write(format(t) + '\n\n');
}
