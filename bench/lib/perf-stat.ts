import { type ChildProcess, spawn, spawnSync } from 'node:child_process';

/**
 * System calls and context switches of a process, counted by the kernel's tracepoints through
 * `perf stat` (Debian's linux-perf; tracepoints work where hardware counters do not, as on this
 * VM). Unlike time, these counts do not change with how loaded the machine is. `start` returns
 * null when perf is missing or refused.
 */
export const perfEvents = [
  'syscalls:sys_enter_sendto',
  'syscalls:sys_enter_write',
  'syscalls:sys_enter_writev',
  'syscalls:sys_enter_recvfrom',
  'syscalls:sys_enter_read',
  'syscalls:sys_enter_epoll_wait',
  'syscalls:sys_enter_futex',
  'context-switches',
];

export interface PerfCounts {
  [event: string]: number;
}

export function startPerfStat(pid: number): { stop: () => Promise<PerfCounts | null> } | null {
  if (spawnSync('perf', ['--version'], { stdio: 'ignore' }).status !== 0) return null;
  const p: ChildProcess = spawn('perf', ['stat', '-x', ',', '-e', perfEvents.join(','), '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return {
    stop: () =>
      new Promise((resolve) => {
        p.once('exit', () => {
          const out: PerfCounts = {};
          for (const line of err.split('\n')) {
            const f = line.split(',');
            const n = Number(f[0]);
            const name = f[2];
            if (name !== undefined && perfEvents.includes(name) && Number.isFinite(n)) out[name.replace('syscalls:sys_enter_', '')] = n;
          }
          resolve(Object.keys(out).length === 0 ? null : out);
        });
        p.kill('SIGINT');
      }),
  };
}

/** Counts per operation, 3 decimals. */
export function perOp(counts: PerfCounts | null, ops: number): PerfCounts | null {
  if (counts === null) return null;
  const out: PerfCounts = {};
  for (const [k, v] of Object.entries(counts)) out[k] = Math.round((v / Math.max(1, ops)) * 1000) / 1000;
  return out;
}
