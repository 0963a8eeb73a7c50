import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { embeddedPostgresConf } from '../../src/store/embedded-open.js';
import { EmbeddedSql } from '../../src/store/sql.js';

const setting = async (sql: EmbeddedSql, name: string): Promise<string> =>
  (await sql.query<{ v: string }>(`SELECT current_setting('${name}') AS v`))[0]!.v;

t.test('a fresh embedded database is created, runs with the small settings and keeps its data when reopened', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pacer-embedded-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = await EmbeddedSql.open(dir);
  t.equal(await setting(first, 'shared_buffers'), '8MB', 'shared_buffers is cut from initdb\'s 128MB');
  t.equal(await setting(first, 'max_connections'), '3');
  await first.exec('CREATE TABLE kept (v int); INSERT INTO kept VALUES (42);');
  await first.close();
  const again = await EmbeddedSql.open(dir);
  t.teardown(() => again.close());
  t.same(await again.query('SELECT v FROM kept'), [{ v: 42 }], 'the row written before the reopen is there');
  t.equal(await setting(again, 'work_mem'), '1MB');
});

t.test('a data directory with old settings gets the small ones on its next open', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pacer-embedded-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await (await EmbeddedSql.open(dir)).close();
  // What PGlite's own initdb leaves: shared_buffers of 128MB in postgresql.conf.
  writeFileSync(join(dir, 'postgresql.conf'), 'shared_buffers=128MB\n');
  const sql = await EmbeddedSql.open(dir);
  t.teardown(() => sql.close());
  t.equal(await setting(sql, 'shared_buffers'), '8MB');
  t.ok(embeddedPostgresConf.includes('shared_buffers=8MB'), 'the setting comes from embeddedPostgresConf');
});

t.test('a data directory that cannot be created fails the open with a message naming it', async (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'pacer-embedded-'));
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  // A file where the directory should be: neither mkdir nor initdb can use it.
  const dir = join(parent, 'not-a-dir');
  writeFileSync(dir, 'x');
  await t.rejects(EmbeddedSql.open(dir), /not-a-dir/);
});
