import { mkdirSync, readdirSync } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CounterStore, FlushBatch } from '../../shards/ports.js';

/**
 * The spool: an append-only file per shard and process start in PACER_DATA_DIR/spool, holding the
 * flush batches acknowledged while the counter store was unreachable. One line per batch:
 *
 *   {"b": FlushBatch, "a": "1101"}\n
 *
 * where `a` is what the spool answered for each event ('1' applied, '0' duplicate). Each line is
 * written and fdatasync'ed before its events are acknowledged (one sync per batch: group commit).
 * A crash can tear only the last line, whose events were never acknowledged: it is ignored.
 * Replaying a line applies its batch to the store under its own batch ID, which the store
 * applies at most once, so a line replayed twice (a crash during replay) counts once.
 */
export interface SpoolRecord {
  b: FlushBatch;
  a: string;
}

/**
 * The file IO the spool does, as a port: production plugs in the real file system with fdatasync
 * (nodeSpoolFs), the simulator an in-memory one (src/sim/memfs.ts), so the resilient store runs
 * under the simulated clock without touching the disk.
 */
export interface SpoolFile {
  size(): Promise<number>;
  /** Writes all of data at the end of the file (not yet durable). */
  append(data: Buffer): Promise<void>;
  /** Makes everything appended so far durable (fdatasync). */
  datasync(): Promise<void>;
  /** Reads up to length bytes at position into buffer; returns the bytes read. */
  read(buffer: Buffer, length: number, position: number): Promise<number>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

export interface SpoolFs {
  /** Opens path for appending and reading, creating it and its directory when missing. */
  openAppend(path: string): Promise<SpoolFile>;
  readFile(path: string): Promise<Buffer>;
  /** Removes path; a missing file is not an error. */
  remove(path: string): Promise<void>;
}

export const nodeSpoolFs: SpoolFs = {
  async openAppend(path) {
    mkdirSync(dirname(path), { recursive: true });
    const fh = await open(path, 'a+');
    return {
      size: async () => (await fh.stat()).size,
      async append(data) {
        let written = 0;
        while (written < data.length) {
          const { bytesWritten } = await fh.write(data, written, data.length - written, null);
          written += bytesWritten;
        }
      },
      datasync: () => fh.datasync(),
      read: async (buffer, length, position) => (await fh.read(buffer, 0, length, position)).bytesRead,
      truncate: (length) => fh.truncate(length),
      close: () => fh.close(),
    };
  },
  readFile: (path) => readFile(path),
  remove: (path) =>
    unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    }),
};

export function spoolDir(dataDir: string): string {
  return join(dataDir, 'spool');
}

/** instanceId starts with the start time in base 36, so names sort in start order. */
export function spoolFileName(instanceId: string, shard: number): string {
  return `${instanceId}-shard-${shard}.spool`;
}

/**
 * Splits complete lines off a chunk; returns the records, the offset just past each record
 * (relative to the chunk) and the bytes consumed.
 */
export function parseLines(chunk: Buffer): { records: SpoolRecord[]; ends: number[]; consumed: number } {
  const records: SpoolRecord[] = [];
  const ends: number[] = [];
  let start = 0;
  for (;;) {
    const nl = chunk.indexOf(10, start);
    if (nl < 0) break;
    const line = chunk.subarray(start, nl).toString('utf8');
    start = nl + 1;
    if (line.length === 0) continue;
    records.push(JSON.parse(line) as SpoolRecord);
    ends.push(start);
  }
  return { records, ends, consumed: start };
}

export class SpoolWriter {
  private fh: SpoolFile | null = null;
  /** Bytes written (the file's length). */
  size = 0;

  /** File operations run one after another: an append never races a read or the file's removal. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly fs: SpoolFs = nodeSpoolFs,
  ) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  append(record: SpoolRecord): Promise<void> {
    return this.serial(() => this.appendNow(record));
  }

  private async appendNow(record: SpoolRecord): Promise<void> {
    if (this.fh === null) {
      this.fh = await this.fs.openAppend(this.path);
      this.size = await this.fh.size();
    }
    const line = Buffer.from(JSON.stringify(record) + '\n');
    try {
      await this.fh.append(line);
      await this.fh.datasync();
    } catch (err) {
      // A partial line must not sit in the middle of the file: cut it off (the batch is not
      // acknowledged; the flusher retries it).
      await this.fh.truncate(this.size).catch(() => undefined);
      throw err;
    }
    this.size += line.length;
  }

  /** Reads whole records from offset, up to about maxBytes; ends[i] is the file offset past record i. */
  read(offset: number, maxBytes: number): Promise<{ records: SpoolRecord[]; ends: number[] }> {
    return this.serial(() => this.readNow(offset, maxBytes));
  }

  private async readNow(offset: number, maxBytes: number): Promise<{ records: SpoolRecord[]; ends: number[] }> {
    if (this.fh === null || offset >= this.size) return { records: [], ends: [] };
    let len = Math.min(maxBytes, this.size - offset);
    for (;;) {
      const buf = Buffer.allocUnsafe(len);
      const bytesRead = await this.fh.read(buf, len, offset);
      const { records, ends } = parseLines(buf.subarray(0, bytesRead));
      if (records.length > 0 || offset + len >= this.size) return { records, ends: ends.map((e) => offset + e) };
      // One record longer than maxBytes: read more.
      len = Math.min(len * 2, this.size - offset);
    }
  }

  /** Removes the file once everything in it reached the store. */
  remove(): Promise<void> {
    return this.serial(async () => {
      const fh = this.fh;
      this.fh = null;
      this.size = 0;
      if (fh !== null) await fh.close();
      await this.fs.remove(this.path);
    });
  }

  close(): Promise<void> {
    return this.serial(async () => {
      const fh = this.fh;
      this.fh = null;
      if (fh !== null) await fh.close();
    });
  }
}

/** Spool files left by earlier runs (not by instanceId, the current one), oldest run first. */
export function leftoverSpools(dataDir: string, instanceId: string): string[] {
  const dir = spoolDir(dataDir);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((n) => n.endsWith('.spool') && !n.startsWith(`${instanceId}-`))
    .sort()
    .map((n) => join(dir, n));
}

/**
 * Replays the spool files of earlier runs into the store, in order, deleting each once applied:
 * the admin thread does this at startup, before any shard loads a campaign, so the counters the
 * shards load include every acknowledged spend. Throws (and keeps the file) when the store fails.
 */
export async function replayLeftovers(
  files: string[],
  apply: CounterStore['apply'],
  fs: SpoolFs = nodeSpoolFs,
): Promise<{ files: number; batches: number; events: number }> {
  let batches = 0;
  let events = 0;
  for (const file of files) {
    const buf = await fs.readFile(file);
    // A torn last line (a crash while writing it) was never acknowledged: parseLines leaves it.
    let records: SpoolRecord[];
    try {
      records = parseLines(buf).records;
    } catch (err) {
      throw new Error(`spool ${file} is corrupt: ${(err as Error).message}`);
    }
    for (const r of records) {
      await apply(r.b);
      batches++;
      for (const d of r.b.campaigns) events += d.events.length;
    }
    await fs.remove(file);
  }
  return { files: files.length, batches, events };
}
