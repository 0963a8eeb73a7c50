import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import type { PGlite } from '@electric-sql/pglite';

/**
 * How the embedded database (PGlite) is opened, chosen by measuring its resident memory
 * (bench/lib/pglite-probe.ts; the figures are in ARCHITECTURE.md, "What the embedded default costs").
 *
 * - PostgreSQL's own settings are cut to what one connection and a small catalogue need. PGlite's
 *   initdb writes shared_buffers=128MB, which PostgreSQL touches whole at start: the WASM linear
 *   memory then grows past its 128 MiB floor and is resident from the first second. `postgresqlconf`
 *   replaces postgresql.conf on every open, so these settings hold for old data directories too.
 * - initdb runs in a child process of its own that exits before the real open: PGlite's initdb
 *   runs a second PGlite and the initdb module beside the real one, and in-process they stayed
 *   resident for the life of the process (about 430 MB here; garbage collection did not free them).
 * - WebAssembly runs on V8's baseline compiler only (Liftoff): the optimising tier compiled
 *   PGlite's 9 MB module a second time in the background and kept both, about 50 MB standalone.
 *   The flag is process-wide but PGlite is the only WebAssembly in this process. Inserts were not
 *   slower with it here (the background compilation competed for the same cores), and this SQL
 *   runs off the hot path anyway (configuration writes, the embedded store's group commits).
 */
export const embeddedPostgresConf: readonly string[] = [
  // Pages of the catalogue and counter tables cached in WASM memory; the OS page cache is behind it.
  'shared_buffers=8MB',
  // One session (PGlite is single-user): no shared memory for a hundred backends.
  'max_connections=3',
  'superuser_reserved_connections=0',
  // Sorts and hashes larger than this spill to temporary files instead of growing the WASM heap.
  'work_mem=1MB',
  'maintenance_work_mem=4MB',
  'temp_buffers=800kB',
];

/** The WebAssembly compiler flag, set once before PGlite's module is compiled. */
let liftoffOnly = false;
function useBaselineWasmCompiler(): void {
  if (liftoffOnly) return;
  setFlagsFromString('--liftoff-only');
  liftoffOnly = true;
}

/**
 * Creates the data directory (initdb) in a short-lived child process, so that everything initdb
 * allocated goes back to the operating system when it exits. A worker thread was not enough: after
 * it was terminated the process stayed about 75 MB larger (freed pages kept by the allocators).
 * The child's code is inline so that this works from dist/ and from the TypeScript sources alike.
 */
async function initInChildProcess(dir: string): Promise<void> {
  const code = `
    const [pgliteUrl, dir, conf] = process.argv.slice(1);
    const { PGlite } = await import(pgliteUrl);
    const db = await PGlite.create(dir, { postgresqlconf: JSON.parse(conf) });
    await db.exec('CHECKPOINT');
    await db.close();
  `;
  // Baseline compiler only here too: the optimising tier would compile the module again in the
  // background for a process that lives a few seconds.
  const args = ['--liftoff-only', '--input-type=module', '-e', code, import.meta.resolve('@electric-sql/pglite'), dir, JSON.stringify(embeddedPostgresConf)];
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, args, { maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
      if (err === null) resolve();
      else reject(new Error(`creating the embedded database in ${dir} failed: ${stderr.trim() || err.message}`));
    });
  });
}

/** Opens (creating on first use) the embedded database in dir. First start takes seconds (initdb). */
export async function openPglite(dir: string): Promise<PGlite> {
  mkdirSync(dir, { recursive: true });
  useBaselineWasmCompiler();
  if (!existsSync(join(dir, 'PG_VERSION'))) await initInChildProcess(dir);
  // Loaded here, not at the top of the module: with PostgreSQL or the memory store the admin
  // thread never loads PGlite's JavaScript (about 0.6 MB of its heap).
  const { PGlite: pglite } = await import('@electric-sql/pglite');
  return pglite.create(dir, { postgresqlconf: [...embeddedPostgresConf] });
}
