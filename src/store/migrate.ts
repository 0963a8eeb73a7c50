import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sql } from './sql.js';

/**
 * Applies migrations/NNNN_name.sql in order, each in its own transaction together with its row in
 * schema_migrations, so a migration is applied completely or not at all. Runs at every start of the
 * admin thread and from `npm run migrate`. Several pacers starting against one PostgreSQL take
 * turns through an advisory lock; a migration already recorded is never run again.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const fileName = /^(\d{4})_([a-z0-9_]+)\.sql$/;
/** Any constant: the key of the advisory lock the migrators take turns on. */
const lockKey = 742_1001;

/** The migrations directory at the top of the project, found from here in src/ or dist/src/. */
export function migrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'migrations');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('migrations directory not found next to package.json');
}

export function readMigrations(dir: string = migrationsDir()): Migration[] {
  const out: Migration[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.sql')) continue;
    const m = fileName.exec(f);
    if (m === null) throw new Error(`migration file ${f} must be named NNNN_lower_snake.sql`);
    out.push({ version: Number(m[1]), name: m[2]!, sql: readFileSync(join(dir, f), 'utf8') });
  }
  out.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.version}_${m.name}: versions must run 1, 2, 3… without gaps`);
  });
  return out;
}

/** Applies what is missing; returns the versions applied now. */
export async function migrate(sql: Sql, migrations: Migration[] = readMigrations()): Promise<number[]> {
  await sql.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [lockKey]);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version     integer PRIMARY KEY,
      name        text NOT NULL,
      applied_at  timestamptz NOT NULL DEFAULT now()
    )`);
  });
  const applied: number[] = [];
  for (const m of migrations) {
    const done = await sql.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [lockKey]);
      const rows = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
      if (rows.length > 0) return false;
      await tx.exec(m.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      return true;
    });
    if (done) applied.push(m.version);
  }
  return applied;
}
