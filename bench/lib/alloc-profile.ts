import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProcessInspector } from './inspector.js';

/**
 * Allocation profiles of running threads over a window, through the inspector: V8's sampling heap
 * profiler with the objects that the young and the old generation's collections freed kept in the
 * profile, so it counts what a thread allocates (the garbage it makes), not only what stays alive.
 * V8 scales each sample by its chance of being taken, so the sizes estimate all bytes allocated.
 */
interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

export interface AllocationTop {
  thread: string;
  /** Estimated bytes allocated by the thread in the window. */
  totalBytes: number;
  /** The functions that allocated most (self), with their share. */
  top: { fn: string; bytes: number; share: number }[];
}

/**
 * `survivors`: leave out what the young generation's collections freed, so the profile shows what
 * lived long enough to be promoted to the old generation (and what is still alive), the allocations
 * that make scavenges slow and mark-compacts come.
 */
export async function startAllocationProfiles(insp: ProcessInspector, threads: string[], survivors = false): Promise<void> {
  for (const t of threads) {
    await insp.send(t, 'HeapProfiler.enable');
    await insp.send(t, 'HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: !survivors,
    });
  }
}

/** Stops the profiles, writes each as DIR/THREAD.heapprofile (DevTools loads it) and summarizes it. */
export async function stopAllocationProfiles(insp: ProcessInspector, threads: string[], dir: string, n = 25): Promise<AllocationTop[]> {
  const out: AllocationTop[] = [];
  for (const t of threads) {
    const { profile } = (await insp.send(t, 'HeapProfiler.stopSampling')) as { profile: { head: ProfileNode } };
    writeFileSync(join(dir, `${t}.heapprofile`), JSON.stringify(profile));
    const byFn = new Map<string, number>();
    let total = 0;
    const walk = (node: ProfileNode): void => {
      const f = node.callFrame;
      const file = f.url.replace(/^.*\/(dist|node_modules)\//, '$1/');
      const key = `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}`;
      byFn.set(key, (byFn.get(key) ?? 0) + node.selfSize);
      total += node.selfSize;
      for (const c of node.children) walk(c);
    };
    walk(profile.head);
    const top = [...byFn]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([fn, bytes]) => ({ fn, bytes, share: Math.round((bytes / Math.max(1, total)) * 1000) / 1000 }));
    out.push({ thread: t, totalBytes: total, top });
  }
  return out;
}
