import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkResponse } from './openapi.js';
import { allocatorEnv } from '../../src/allocator.js';

/**
 * Starts the real pacer (the compiled dist/src/main.js that `npm start` runs) in a child process on
 * free ports, and talks to it over real HTTP. `npm test` builds before it runs the tests.
 *
 * Every pacer runs one router thread unless PACER_TEST_ROUTERS=N asks for N (PACER_ROUTERS=N) or a
 * test sets its own: `PACER_TEST_ROUTERS=2 npx tap test/api.test.ts` runs a suite with two routers.
 */
function findRoot(): string {
  let dir = fileURLToPath(new URL('.', import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}
export const root = findRoot();
export const mainJs = join(root, 'dist/src/main.js');
export const adminToken = 'test-admin-token-0123456789';

export interface Pacer {
  port: number;
  adminPort: number;
  url: string;
  adminUrl: string;
  dataDir: string;
  child: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  kill(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  dataDir?: string;
  /** Keep the data directory after stop (for restart tests). */
  keepData?: boolean;
  /** Router threads (PACER_ROUTERS); default 1, or PACER_TEST_ROUTERS when set. */
  routers?: number;
  /** Start without the allocator setting npm start uses (src/allocator.ts). */
  allocatorDefaults?: boolean;
}

export async function startPacer(opts: StartOptions = {}): Promise<Pacer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'pacer-test-'));
  const child = spawn(process.execPath, [mainJs], {
    cwd: root,
    env: {
      // The pacer as npm start runs it (src/allocator.ts).
      ...(opts.allocatorDefaults === true ? {} : allocatorEnv),
      PATH: process.env.PATH ?? '',
      PACER_HOST: '127.0.0.1',
      PACER_PORT: '0',
      PACER_ADMIN_PORT: '0',
      PACER_SHARDS: '2',
      PACER_DATA_DIR: dataDir,
      PACER_ADMIN_TOKEN: adminToken,
      PACER_STORE: process.env.TEST_PACER_STORE ?? 'memory',
      ...(process.env.TEST_PACER_REDIS_URL ? { PACER_REDIS_URL: process.env.TEST_PACER_REDIS_URL } : {}),
      ...(process.env.TEST_PACER_DATABASE_URL ? { PACER_DATABASE_URL: process.env.TEST_PACER_DATABASE_URL } : {}),
      ...(process.env.TEST_PACER_REDIS_KEY_PREFIX ? { PACER_REDIS_KEY_PREFIX: process.env.TEST_PACER_REDIS_KEY_PREFIX } : {}),
      // Fixed, not the core-count default, so that a test reads the same on any machine.
      PACER_ROUTERS: String(opts.routers ?? (process.env.PACER_TEST_ROUTERS || '1')),
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = await new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    // A pacer that is late is killed, or it would outlive the test and load the machine.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pacer did not become ready in 30 s:\n${err}`));
    }, 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of err.split('\n')) {
        if (!line.includes('"msg":"ready"')) continue;
        const j = JSON.parse(line) as { port: number; adminPort: number };
        clearTimeout(timer);
        resolve({ port: j.port, adminPort: j.adminPort });
        return;
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`pacer exited with ${code} before ready:\n${err}`));
    });
  });
  const cleanup = (): void => {
    if (!opts.keepData && opts.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
  };
  return {
    ...ready,
    url: `http://127.0.0.1:${ready.port}`,
    adminUrl: `http://127.0.0.1:${ready.adminPort}`,
    dataDir,
    child,
    stderr: () => err,
    stdout: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      const code = await exited;
      cleanup();
      return code;
    },
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      cleanup();
    },
  };
}

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function post<T = any>(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return reply('POST', path, res);
}

/**
 * Every answer the API tests read through these helpers is checked against docs/openapi.yaml
 * (test/helpers/openapi.ts): a mismatch throws, and the test fails.
 */
async function reply<T>(method: string, path: string, res: Response): Promise<Reply<T>> {
  const text = await res.text();
  const json = (res.headers.get('content-type') ?? '').includes('json');
  const body = text === '' ? null : json ? JSON.parse(text) : text;
  checkResponse(method, path, res.status, body);
  return { status: res.status, body, headers: res.headers };
}

export async function get<T = any>(base: string, path: string, headers: Record<string, string> = {}): Promise<Reply<T>> {
  const res = await fetch(base + path, { headers });
  return reply('GET', path, res);
}

export const auth = { authorization: `Bearer ${adminToken}` };

export async function createCampaign(p: Pacer, campaign: Record<string, unknown>): Promise<Reply> {
  const r = await post(p.adminUrl, '/v1/campaigns', campaign, auth);
  if (r.status !== 200 && r.status !== 201) throw new Error(`create failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r;
}

export async function status(p: Pacer, id: string): Promise<any> {
  const r = await get(p.adminUrl, `/v1/campaigns/${id}/status`, auth);
  if (r.status !== 200) throw new Error(`status failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
