import type { PacerConfig } from '../config.js';
import { log } from '../log.js';
import { migrate } from '../store/migrate.js';
import { openSql, type Sql } from '../store/sql.js';
import { SqlConfigStore } from '../store/sql-config.js';
import { SqlCounterStore } from '../store/sql-counters.js';
import { type ConfigStore, MemoryConfigStore } from './registry.js';

export interface AdminStores {
  /** The database the admin thread owns: PostgreSQL, the embedded PGlite, or none (memory). */
  sql: Sql | null;
  config: ConfigStore;
  /** The embedded store's counters (PACER_STORE=embedded): served to the shards over their ports. */
  counters: SqlCounterStore | null;
}

/**
 * Opens the configuration store and, for the embedded store, the counters beside it, and applies
 * pending migrations:
 * - PACER_DATABASE_URL set: PostgreSQL;
 * - otherwise (embedded or redis): the embedded database in PACER_DATA_DIR/pglite;
 * - PACER_STORE=memory: process memory.
 */
export async function openAdminStores(config: PacerConfig): Promise<AdminStores> {
  if (config.store === 'memory') return { sql: null, config: new MemoryConfigStore(), counters: null };
  const sql = await openSql(config, (err) => log('warn', 'idle database connection lost', { error: err.message }));
  try {
    const applied = await migrate(sql);
    if (applied.length > 0) log('info', 'migrations applied', { versions: applied, database: sql.kind });
  } catch (err) {
    await sql.close().catch(() => undefined);
    throw err;
  }
  return {
    sql,
    config: new SqlConfigStore(sql),
    counters: config.store === 'embedded' ? new SqlCounterStore(sql) : null,
  };
}
