import { readFileSync } from 'node:fs';

/**
 * Where a process's resident memory sits, from /proc/PID/smaps (Linux): every mapping's resident
 * kB, grouped into the kinds that explain a Node.js process with WebAssembly in it.
 *
 * - `wasm`: V8 reserves about 10 GiB of address space for every WebAssembly.Memory on 64-bit
 *   Linux: the accessible part rw, the rest of the reservation PROT_NONE. The rw mapping just
 *   before such a reservation is the linear memory (PGlite's PostgreSQL heap); its resident part
 *   is the pages the module touched. An upper bound: the kernel merges adjacent anonymous rw
 *   mappings, so V8 heap pages mapped right below it count here too (exact in the standalone
 *   probe, where its size equals the memory's; read it with care in a process with big heaps).
 * - `mallocHeap`: `[heap]`, the main malloc arena (brk).
 * - `anon`: other anonymous memory: the V8 heaps of every thread (256 KiB pages), malloc's
 *   per-thread arenas (64 MiB reservations), thread stacks, uWS and OpenSSL buffers.
 * - `nodeBinary`: the node executable's mapped text and data.
 * - `otherFiles`: shared libraries, native addons (uWS), mapped files.
 */
export interface SmapsBreakdown {
  rssKb: number;
  wasmKb: number;
  /** How many WebAssembly memories are mapped (one per PGlite instance, plus initdb's while it runs). */
  wasmMemories: number;
  mallocHeapKb: number;
  anonKb: number;
  nodeBinaryKb: number;
  otherFilesKb: number;
}

const wasmReservationKbMin = 4 * 1024 * 1024;

export function smapsBreakdown(pid: number | 'self' = 'self'): SmapsBreakdown {
  const text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const out: SmapsBreakdown = { rssKb: 0, wasmKb: 0, wasmMemories: 0, mallocHeapKb: 0, anonKb: 0, nodeBinaryKb: 0, otherFilesKb: 0 };
  // A WebAssembly memory is its accessible part (rw-p) directly followed by the rest of its
  // reservation (---p, gigabytes): an anonymous rw mapping is counted as wasm when the next mapping
  // is such a reservation starting where it ends.
  let prev: { end: number; rssKb: number; anonRw: boolean } | null = null;
  let name = '';
  let perm = '';
  let start = 0;
  let end = 0;
  const classify = (rss: number): void => {
    out.rssKb += rss;
    if (name === '[heap]') out.mallocHeapKb += rss;
    else if (name === '' || name.startsWith('[')) out.anonKb += rss;
    else if (name === process.execPath || /\/node$/.test(name)) out.nodeBinaryKb += rss;
    else out.otherFilesKb += rss;
  };
  for (const line of text.split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header !== null) {
      start = parseInt(header[1]!, 16);
      end = parseInt(header[2]!, 16);
      perm = header[3]!;
      name = header[4] ?? '';
      const reservation = name === '' && perm === '---p' && (end - start) / 1024 >= wasmReservationKbMin;
      if (reservation && prev !== null && prev.anonRw && prev.end === start) {
        out.anonKb -= prev.rssKb;
        out.wasmKb += prev.rssKb;
        out.wasmMemories++;
      }
      continue;
    }
    if (!line.startsWith('Rss:')) continue;
    const rss = Number(/(\d+)/.exec(line)![1]);
    classify(rss);
    prev = { end, rssKb: rss, anonRw: name === '' && perm === 'rw-p' };
  }
  return out;
}

/** VmRSS, VmHWM (peak resident) and the thread count from /proc/PID/status, in kB. */
export function procStatus(pid: number | 'self' = 'self'): { vmRssKb: number; vmHwmKb: number; threads: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { vmRssKb: field('VmRSS'), vmHwmKb: field('VmHWM'), threads: field('Threads') };
}

export const mb = (kb: number): number => Math.round(kb / 102.4) / 10;
