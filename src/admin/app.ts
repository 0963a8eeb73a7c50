import uWS, { type HttpRequest, type TemplatedApp } from 'uWebSockets.js';
import { ApiError } from '../http/errors.js';
import type { Res } from '../http/respond.js';
import type { Campaigns } from './campaigns.js';
import { registerCampaignRoutes } from './campaign-routes.js';
import { createAdminRouter, sendAdminError, sendAdminJson } from './router.js';

export type { AdminRouter } from './router.js';

/** One history request spans at most a week of minutes (about 10k rows per campaign). */
const historyRangeMsMax = 7 * 86_400_000;

// Every admin answer closes its connection (see router.ts for why).
const sendJson = (res: Res, status: number, body: string): void => sendAdminJson(res, status, body);
const sendError = (res: Res, err: ApiError): void => sendAdminError(res, err);

function timeParam(query: URLSearchParams, name: string, fallback: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  const ms = Date.parse(raw);
  if (!Number.isFinite(ms)) throw new ApiError('INVALID_FIELD', `${name} must be an ISO 8601 time (got ${JSON.stringify(raw.slice(0, 40))})`);
  return ms;
}

export interface AdminState {
  shuttingDown: boolean;
}

/**
 * The management API on PACER_ADMIN_PORT, behind `Authorization: Bearer <token>`. Every handler
 * copies what it needs out of `req` first, then answers asynchronously through sendJson/sendError,
 * which cork and skip aborted responses.
 */
export function createAdminApp(token: string, campaigns: Campaigns, state: AdminState, scrape: () => Promise<string>): TemplatedApp {
  const app = uWS.App();

  // Prometheus scrapes without the admin token (it carries no secret and changes nothing).
  app.get('/metrics', (res: Res) => {
    res.onAborted(() => {
      res.aborted = true;
    });
    scrape().then(
      (text) => {
        if (res.aborted) return;
        res.cork(() => {
          res.writeHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8').end(text, true);
        });
      },
      (err: unknown) => sendError(res, new ApiError('NOT_READY', `collecting metrics failed: ${(err as Error).message}`)),
    );
  });

  const router = createAdminRouter(app, token, state);
  registerCampaignRoutes(router, campaigns);
  const { route } = router;

  route('get', '/v1/campaigns/:id/status', false, async (res, [id]) => {
    sendJson(res, 200, JSON.stringify(await campaigns.status(id!)));
  });

  route('post', '/v1/campaigns/:id/breaker/reset', false, async (res, [id]) => {
    sendJson(res, 200, JSON.stringify(await campaigns.resetBreaker(id!)));
  });

  route('get', '/v1/campaigns/:id/history', false, async (res, [id], { query }) => {
    const now = Date.now();
    const toMs = timeParam(query, 'to', now);
    const fromMs = timeParam(query, 'from', toMs - 3_600_000);
    if (fromMs >= toMs) throw new ApiError('INVALID_FIELD', 'from must be before to');
    if (toMs - fromMs > historyRangeMsMax) throw new ApiError('INVALID_FIELD', `at most ${historyRangeMsMax / 86_400_000} days per request`);
    const { minutes, breakers } = await campaigns.history(id!, fromMs, toMs);
    sendJson(res, 200, JSON.stringify({
      from: new Date(fromMs).toISOString(),
      to: new Date(toMs).toISOString(),
      minutes: minutes.map(({ campaignId: _c, minuteMs, ...m }) => ({ minute: new Date(minuteMs).toISOString(), ...m })),
      breakerEvents: breakers.map(({ campaignId: _c, atMs, ...b }) => ({ at: new Date(atMs).toISOString(), ...b })),
    }));
  });

  app.get('/healthz', (res: Res) => {
    res.writeHeader('content-type', 'application/json').end('{"status":"ok"}', true);
  });

  app.any('/*', (res: Res, req: HttpRequest) => {
    const method = req.getMethod().toUpperCase();
    const url = req.getUrl();
    const known = url === '/metrics' || url === '/healthz' || router.knows(url);
    const shown = JSON.stringify(url.slice(0, 100));
    if (known) sendAdminError(res, new ApiError('METHOD_NOT_ALLOWED', `${method.slice(0, 10)} is not supported on ${shown}`));
    else sendAdminError(res, new ApiError('NOT_FOUND', `no route ${method.slice(0, 10)} ${shown}`));
  });
  return app;
}

