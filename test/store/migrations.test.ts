import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { migrate, readMigrations } from '../../src/store/migrate.js';
import { EmbeddedSql, PostgresSql, type Sql } from '../../src/store/sql.js';
import { root } from '../helpers/server.js';
import { createDatabase } from '../helpers/services.js';

const run = promisify(execFile);
const tables = ['breaker_events', 'budget_changes', 'campaign_minute_denials', 'campaign_minutes', 'campaign_profiles', 'campaigns', 'config_changes',
  'counter_days', 'counter_events', 'counter_reservations', 'schema_migrations'];

t.test('migration files are numbered 0001, 0002… without gaps', async (t) => {
  const ms = readMigrations();
  t.ok(ms.length >= 3);
  t.same(ms.map((m) => m.version), ms.map((_, i) => i + 1));
});

async function check(t: Test, sql: Sql, fresh: boolean): Promise<void> {
  const all = readMigrations().map((m) => m.version);
  if (fresh) t.same(await migrate(sql), all, 'a new database gets every migration, in order');
  t.same(await migrate(sql), [], 'a second run applies nothing');
  const rows = await sql.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version');
  t.same(rows.map((r) => Number(r.version)), all, 'each is recorded in schema_migrations');
  const found = await sql.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
  );
  t.same(found.map((r) => r.table_name), tables);
}

t.test('the same migrations apply to PostgreSQL 15…', async (t) => {
  const db = await createDatabase('migrate');
  t.teardown(() => db.drop());
  const a = new PostgresSql(db.url);
  const b = new PostgresSql(db.url);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
  t.same([...ra, ...rb].sort(), readMigrations().map((m) => m.version), 'two pacers starting at once apply each migration once');
  await check(t, a, false);
});

t.test('…and to the embedded database', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pacer-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sql = await EmbeddedSql.open(dir);
  t.teardown(() => sql.close());
  await check(t, sql, true);
});

t.test('npm run migrate migrates the configured database and says so', async (t) => {
  const db = await createDatabase('migratecli');
  t.teardown(() => db.drop());
  const env = { PATH: process.env.PATH ?? '', PACER_DATABASE_URL: db.url, PACER_DATA_DIR: mkdtempSync(join(tmpdir(), 'pacer-m-')) };
  t.teardown(() => rmSync(env.PACER_DATA_DIR, { recursive: true, force: true }));
  const cli = join(root, 'dist/src/store/migrate-cli.js');
  const first = await run(process.execPath, [cli], { env, cwd: root });
  t.match(first.stdout, /^applied migrations 1, 2, 3.* to PostgreSQL/);
  const second = await run(process.execPath, [cli], { env, cwd: root });
  t.match(second.stdout, /PostgreSQL is up to date/);
  const bad = await run(process.execPath, [cli], { env: { ...env, PACER_DATABASE_URL: 'mysql://x' }, cwd: root }).catch((e: { code: number; stderr: string }) => e);
  t.equal((bad as { code: number }).code, 78, 'a bad URL is a configuration error');
  t.match((bad as { stderr: string }).stderr, /PACER_DATABASE_URL must start with postgres/);
});
