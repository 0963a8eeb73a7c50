import { ConfigError, loadConfig } from '../config.js';
import { migrate } from './migrate.js';
import { openSql } from './sql.js';

/**
 * `npm run migrate`: applies pending migrations to PACER_DATABASE_URL, or to the embedded database
 * in PACER_DATA_DIR when it is unset. The pacer also migrates at every start; this command is for
 * deployments that migrate before rolling out. Stop the pacer first when it uses the embedded
 * database: PGlite is single-process.
 */
try {
  const config = loadConfig();
  const sql = await openSql(config);
  try {
    const applied = await migrate(sql);
    const where = config.databaseUrl !== null ? 'PostgreSQL' : `the embedded database in ${config.dataDir}`;
    process.stdout.write(applied.length === 0 ? `${where} is up to date\n` : `applied migrations ${applied.join(', ')} to ${where}\n`);
  } finally {
    await sql.close();
  }
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.code}: ${err.message}\n`);
    process.exit(78);
  }
  process.stderr.write(`migration failed: ${(err as Error).message}\n`);
  process.exit(1);
}
