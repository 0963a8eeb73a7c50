import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time (user + system) of every thread of a process, in clock ticks (10 ms on Linux), from
 * /proc/PID/task/TID/stat. On a shared machine a wall-clock profile blames a thread's waits for a
 * core on whatever it was doing; CPU time per operation does not. Empty when not on Linux or the
 * process is gone.
 */
export function threadTicks(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // Fields after the command name (in parentheses, may hold spaces): utime is the 12th and
      // stime the 13th of them.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(f[11]) + Number(f[12]));
    }
  } catch {
    // Not Linux, or the process is gone.
  }
  return out;
}

export const tickUs = 10_000;

/**
 * CPU µs per operation between two readings: the whole process, and the busiest threads (by
 * thread ID order, the main thread first; worker threads are named by their order of start).
 */
export function cpuPerOp(pid: number, before: Map<number, number>, after: Map<number, number>, ops: number): { processUs: number; byThreadUs: number[] } {
  const per = (ticks: number): number => Math.round(((ticks * tickUs) / Math.max(1, ops)) * 100) / 100;
  let all = 0;
  const threads: [number, number][] = [];
  for (const [tid, t] of after) {
    const d = t - (before.get(tid) ?? 0);
    all += d;
    threads.push([tid, d]);
  }
  threads.sort((a, b) => (a[0] === pid ? -1 : b[0] === pid ? 1 : a[0] - b[0]));
  return { processUs: per(all), byThreadUs: threads.filter(([, d]) => d > 0).map(([, d]) => per(d)) };
}

