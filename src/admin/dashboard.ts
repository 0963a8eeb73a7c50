import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpRequest, TemplatedApp } from 'uWebSockets.js';
import type { Res } from '../http/respond.js';
import { accessLog } from './reports.js';

/**
 * The dashboard (README.md, "Dashboard"): the static files of the top-level `dashboard/` folder
 * and Chart.js's UMD build from node_modules, served by the admin port without the bearer token
 * (the page itself asks for the token and sends it with every API call it makes).
 *
 * Every file is read once, at startup, into memory, and served by its exact path: no part of a
 * request's path ever reaches the file system, so `/dashboard/../package.json` and its encoded
 * variants cannot read anything; they fall through to the admin app's JSON 404.
 */

interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Everything the page loads comes from this origin: no inline script or style, no other host. The
 * live feed's WebSocket is the same origin too ('self' covers ws: on the page's host and port).
 */
export const dashboardCsp = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++, dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'dashboard', 'index.html'))) return dir;
  }
  throw new Error('the dashboard/ folder was not found next to package.json');
}

function asset(body: Buffer, name: string): Asset {
  const contentType = contentTypes[extname(name)] ?? 'application/octet-stream';
  // A validator, so browsers revalidate (Cache-Control: no-cache) and get 304 after an upgrade-free reload.
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return { body, contentType, etag };
}

/** The served assets by URL path, read from disk once. */
export function loadDashboard(): Map<string, Asset> {
  const root = findRoot();
  const dir = join(root, 'dashboard');
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir).sort()) {
    if (contentTypes[extname(name)] === undefined) continue;
    const body = readFileSync(join(dir, name));
    assets.set(name === 'index.html' ? '/' : `/dashboard/${name}`, asset(body, name));
  }
  // Chart.js 4's UMD build (it defines window.Chart); its package exports do not list the file, so
  // it is found next to the package's main entry.
  const chartDist = dirname(createRequire(import.meta.url).resolve('chart.js'));
  assets.set('/dashboard/chart.umd.js', asset(readFileSync(join(chartDist, 'chart.umd.js')), 'chart.umd.js'));
  return assets;
}

function serve(res: Res, a: Asset, ifNoneMatch: string): void {
  res.cork(() => {
    const fresh = ifNoneMatch === a.etag;
    if (fresh) res.writeStatus('304 Not Modified');
    res
      .writeHeader('content-type', a.contentType)
      .writeHeader('cache-control', 'no-cache')
      .writeHeader('etag', a.etag)
      .writeHeader('content-security-policy', dashboardCsp)
      .writeHeader('x-content-type-options', 'nosniff')
      .writeHeader('referrer-policy', 'no-referrer');
    // Closed after every answer, like every admin answer (src/admin/router.ts says why).
    res.end(fresh ? '' : a.body, true);
  });
}

/** Registers GET for each asset; answers `knows(url)` for the admin app's 405-or-404 choice. */
export function registerDashboard(app: TemplatedApp, assets: Map<string, Asset> = loadDashboard()): { knows(url: string): boolean } {
  for (const [path, a] of assets) {
    app.get(path, (res: Res, req: HttpRequest) => {
      accessLog(res, 'GET', path, req.getHeader('x-pacer-actor'));
      serve(res, a, req.getHeader('if-none-match'));
    });
  }
  return { knows: (url) => assets.has(url) };
}
