import type { SpoolFile, SpoolFs } from '../store/spool.js';

/**
 * An in-memory file system for the spool (src/store/spool.ts's SpoolFs port), so the simulator and
 * the resilient store's tests run the real spool code without a disk and without real IO, which
 * would make a run depend on the machine's timing. Every operation completes in a microtask.
 * Durability is modelled: `crash()` cuts every file back to what its last datasync made durable.
 */
interface MemFile {
  data: Buffer;
  length: number;
  synced: number;
}

export class MemorySpoolFs implements SpoolFs {
  private readonly files = new Map<string, MemFile>();

  async openAppend(path: string): Promise<SpoolFile> {
    let f = this.files.get(path);
    if (f === undefined) this.files.set(path, (f = { data: Buffer.alloc(256), length: 0, synced: 0 }));
    // A handle keeps its file after remove(), as an open descriptor keeps an unlinked inode.
    const m = f;
    return {
      size: async () => m.length,
      append: async (data) => {
        if (m.length + data.length > m.data.length) {
          const grown = Buffer.alloc(Math.max(m.data.length * 2, m.length + data.length));
          m.data.copy(grown, 0, 0, m.length);
          m.data = grown;
        }
        data.copy(m.data, m.length);
        m.length += data.length;
      },
      datasync: async () => {
        m.synced = m.length;
      },
      read: async (buffer, length, position) => {
        const n = Math.max(0, Math.min(length, m.length - position));
        m.data.copy(buffer, 0, position, position + n);
        return n;
      },
      truncate: async (length) => {
        m.length = Math.min(m.length, length);
        m.synced = Math.min(m.synced, m.length);
      },
      close: async () => {},
    };
  }

  async readFile(path: string): Promise<Buffer> {
    const f = this.files.get(path);
    if (f === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return Buffer.from(f.data.subarray(0, f.length));
  }

  async remove(path: string): Promise<void> {
    this.files.delete(path);
  }

  /** Paths of the files present, sorted (spool names sort in start order). */
  list(): string[] {
    return [...this.files.keys()].sort();
  }

  /** A power loss: what no datasync covered is gone. */
  crash(): void {
    for (const f of this.files.values()) f.length = f.synced;
  }
}
