import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { limits } from '../../shards/limits.js';
import { openPglite } from './embedded-open.js';

/**
 * The one SQL surface the pacer uses, with two implementations: PostgreSQL through a pg pool
 * (PACER_DATABASE_URL) and PGlite, PostgreSQL compiled to WASM and run in the admin thread on a
 * directory of PACER_DATA_DIR (the embedded default). The migrations and every statement are the
 * same for both, so they are kept to SQL that PostgreSQL 15 and PGlite's 18 both accept.
 */
export interface SqlClient {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** Runs several statements without parameters (migration files). */
  exec(text: string): Promise<void>;
}

export interface Sql extends SqlClient {
  readonly kind: 'postgres' | 'embedded';
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The database could not be reached or answered too late: the caller answers 503, not 500. */
export class DatabaseUnavailableError extends Error {
  readonly code = 'PACER_ERR_DATABASE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseUnavailableError';
  }
}

/** An integer column as a JS number: pg returns bigint as a string, PGlite as a number. */
export function int(v: unknown, what: string): number {
  const n = typeof v === 'string' || typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new RangeError(`${what} is not a safe integer: ${String(v)}`);
  return n;
}

// ---- PostgreSQL ---------------------------------------------------------------------------------

/** Error codes and messages of pg and node:net that mean "not reachable", not "bad statement". */
function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (typeof e?.code === 'string') {
    if (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|57P0[1-3]|08\d\d\d|53300)$/.test(e.code)) return true;
  }
  return /timeout|terminated|Connection|connect/i.test(e?.message ?? '');
}

function unavailable(err: unknown): Error {
  if (err instanceof DatabaseUnavailableError) return err;
  if (isConnectionError(err)) return new DatabaseUnavailableError(`PostgreSQL unavailable: ${(err as Error).message}`, { cause: err });
  return err as Error;
}

class PgClient implements SqlClient {
  constructor(private readonly c: pg.PoolClient) {}

  async query<R>(text: string, params?: unknown[]): Promise<R[]> {
    try {
      return (await this.c.query(text, params)).rows as R[];
    } catch (err) {
      throw unavailable(err);
    }
  }

  async exec(text: string): Promise<void> {
    try {
      await this.c.query(text);
    } catch (err) {
      throw unavailable(err);
    }
  }
}

export class PostgresSql implements Sql {
  readonly kind = 'postgres';
  private readonly pool: pg.Pool;

  constructor(url: string, onIdleError: (err: Error) => void = () => {}) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: 4,
      connectionTimeoutMillis: limits.databaseConnectTimeoutMs,
      // The client-side deadline catches a server that stopped answering; the server-side one
      // cancels a statement that runs too long.
      query_timeout: limits.databaseStatementTimeoutMs,
      statement_timeout: limits.databaseStatementTimeoutMs,
      idleTimeoutMillis: 30_000,
      application_name: 'budget-pacer',
    });
    // An idle client that loses its connection emits 'error' on the pool; unhandled, it would
    // stop the process. The next query reconnects.
    this.pool.on('error', onIdleError);
  }

  async query<R>(text: string, params?: unknown[]): Promise<R[]> {
    try {
      return (await this.pool.query(text, params)).rows as R[];
    } catch (err) {
      throw unavailable(err);
    }
  }

  async exec(text: string): Promise<void> {
    await this.query(text);
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw unavailable(err);
    }
    let broken = false;
    try {
      await client.query('BEGIN');
      const out = await fn(new PgClient(client));
      await client.query('COMMIT');
      return out;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw unavailable(err);
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

// ---- PGlite -------------------------------------------------------------------------------------

export class EmbeddedSql implements Sql {
  readonly kind = 'embedded';
  private constructor(private readonly db: PGlite) {}

  /** Opens (creating on first use) the embedded database in dir. First start takes seconds (initdb). */
  static async open(dir: string): Promise<EmbeddedSql> {
    return new EmbeddedSql(await openPglite(dir));
  }

  async query<R>(text: string, params?: unknown[]): Promise<R[]> {
    return (await this.db.query<R>(text, params)).rows;
  }

  async exec(text: string): Promise<void> {
    await this.db.exec(text);
  }

  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) =>
      fn({
        query: async <R>(text: string, params?: unknown[]) => (await tx.query<R>(text, params)).rows,
        exec: async (text: string) => {
          await tx.exec(text);
        },
      }),
    );
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

/** The configuration database as configured: PostgreSQL when PACER_DATABASE_URL is set, else embedded. */
export async function openSql(
  config: { databaseUrl: string | null; dataDir: string },
  onIdleError?: (err: Error) => void,
): Promise<Sql> {
  if (config.databaseUrl !== null) return new PostgresSql(config.databaseUrl, onIdleError);
  return EmbeddedSql.open(embeddedDir(config.dataDir));
}

export function embeddedDir(dataDir: string): string {
  return `${dataDir}/pglite`;
}
