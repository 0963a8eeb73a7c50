import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The admin API's bearer token: PACER_ADMIN_TOKEN when set; otherwise the one kept in the data
 * directory, generated (and printed once) on the first start.
 */
export function ensureAdminToken(dataDir: string, fromEnv: string | null): { token: string; generated: boolean; path: string } {
  const path = join(dataDir, 'admin-token');
  if (fromEnv !== null) return { token: fromEnv, generated: false, path };
  mkdirSync(dataDir, { recursive: true });
  try {
    const token = readFileSync(path, 'utf8').trim();
    if (token.length >= 16) return { token, generated: false, path };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(24).toString('base64url');
  writeFileSync(path, token + '\n', { mode: 0o600, flag: 'w' });
  return { token, generated: true, path };
}

/** Constant-time comparison of an Authorization header with the token. */
export function checkBearer(header: string, token: string): 'ok' | 'missing' | 'wrong' {
  if (!header.startsWith('Bearer ') && !header.startsWith('bearer ')) return 'missing';
  const given = Buffer.from(header.slice(7).trim());
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want) ? 'ok' : 'wrong';
}
