import { PGlite, type PGliteOptions } from '@electric-sql/pglite';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openPglite } from '../../src/store/embedded-open.js';
import { root } from './process.js';
import { mb, procStatus, smapsBreakdown } from './smaps.js';

/**
 * A standalone PGlite, measured phase by phase in a process of its own (so that nothing else is in
 * its resident memory): after Node starts, after PGlite.create (initdb on a fresh directory), after
 * the project's migrations, after inserting --rows campaign rows and counter rows like the embedded
 * store writes, and after CHECKPOINT. Prints one JSON line per phase and a last line with all.
 *
 *   node dist/bench/lib/pglite-probe.js --dir D [--conf '["shared_buffers=16MB"]'] [--start '[...]']
 *        [--initial-mb N] [--rows N]
 */
const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    conf: { type: 'string', default: '[]' },
    start: { type: 'string' },
    'initial-mb': { type: 'string' },
    rows: { type: 'string', default: '1000' },
    // Open through the project's own code (src/store/embedded-open.ts) instead of the options above.
    project: { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);

interface Phase {
  phase: string;
  rssMb: number;
  hwmMb: number;
  wasmRssMb: number;
  wasmMemories: number;
  wasmLinearMb: number | null;
  anonMb: number;
  mallocHeapMb: number;
  jsHeapMb: number;
  externalMb: number;
  ms: number;
}
const phases: Phase[] = [];
const t0 = performance.now();
let db: PGlite | null = null;

function record(phase: string): void {
  const s = smapsBreakdown();
  const st = procStatus();
  const m = process.memoryUsage();
  const mod = (db as unknown as { mod?: { HEAPU8: Uint8Array } } | null)?.mod;
  const p: Phase = {
    phase,
    rssMb: mb(st.vmRssKb),
    hwmMb: mb(st.vmHwmKb),
    wasmRssMb: mb(s.wasmKb),
    wasmMemories: s.wasmMemories,
    wasmLinearMb: mod ? Math.round(mod.HEAPU8.byteLength / 1048576) : null,
    anonMb: mb(s.anonKb),
    mallocHeapMb: mb(s.mallocHeapKb),
    jsHeapMb: Math.round(m.heapUsed / 104857.6) / 10,
    externalMb: Math.round(m.external / 104857.6) / 10,
    ms: Math.round(performance.now() - t0),
  };
  phases.push(p);
  process.stderr.write(JSON.stringify(p) + '\n');
}

record('node');
const options: PGliteOptions = {};
const conf = JSON.parse(values.conf!) as string[];
if (conf.length > 0) options.postgresqlconf = conf;
if (values.start !== undefined) options.startParams = JSON.parse(values.start) as string[];
if (values['initial-mb'] !== undefined) options.initialMemory = Number(values['initial-mb']) * 1048576;
mkdirSync(values.dir!, { recursive: true });
db = values.project ? await openPglite(values.dir!) : await PGlite.create(values.dir!, options);
record('open');
// With --expose-gc: what of the open was garbage (initdb's instance, the copies made for it).
const gc = (globalThis as { gc?: () => void }).gc;
if (gc) {
  gc();
  record('open+gc');
}
const applied = (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'campaigns'")).rows[0]!.n;
if (applied === 0) {
  for (const f of readdirSync(join(root, 'migrations')).filter((x) => x.endsWith('.sql')).sort()) {
    await db.exec(readFileSync(join(root, 'migrations', f), 'utf8'));
  }
}
record('migrated');
const config = (i: number): string =>
  JSON.stringify({ id: `probe-${i}`, dailyBudgetMicros: 1_000_000_000, strategy: 'EVEN', timezone: 'UTC', breaker: { enabled: true } });
for (let i = 0; i < rows; i += 500) {
  const ids = Array.from({ length: Math.min(500, rows - i) }, (_, k) => i + k);
  await db.query(
    `INSERT INTO campaigns (id, config, version, created_at, updated_at)
     SELECT unnest($1::text[]), unnest($2::jsonb[]), 1, now(), now() ON CONFLICT DO NOTHING`,
    [ids.map((k) => `probe-${k}`), ids.map(config)],
  );
  await db.query(
    `INSERT INTO counter_days (campaign_id, day, settled_micros, updated_at)
     SELECT unnest($1::text[]), current_date, 1000, now() ON CONFLICT DO NOTHING`,
    [ids.map((k) => `probe-${k}`)],
  );
  await db.query(
    `INSERT INTO counter_events (campaign_id, event_id, batch_id, seen_at)
     SELECT unnest($1::text[]), 'e1', 'b1', now() ON CONFLICT DO NOTHING`,
    [ids.map((k) => `probe-${k}`)],
  );
}
record('rows');
const rowsMs = phases.at(-1)!.ms - phases.at(-2)!.ms;
await db.query('SELECT count(*) FROM campaigns');
await db.exec('CHECKPOINT');
record('checkpoint');
const settings = (await db.query<{ name: string; setting: string; unit: string | null }>(
  `SELECT name, setting, unit FROM pg_settings WHERE name IN
   ('shared_buffers','work_mem','wal_buffers','max_connections','temp_buffers','maintenance_work_mem','min_wal_size','max_wal_size')`,
)).rows;
await db.close();
record('closed');
process.stdout.write(JSON.stringify({ project: values.project, rowsMs, conf, start: options.startParams ?? null, rows, settings, phases }) + '\n');
