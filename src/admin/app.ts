import uWS, { type HttpRequest, type TemplatedApp } from 'uWebSockets.js';
import { ApiError } from '../http/errors.js';
import type { Res } from '../http/respond.js';
import type { Campaigns } from './campaigns.js';
import { registerCampaignRoutes } from './campaign-routes.js';
import { createAdminRouter, sendAdminError, sendAdminJson } from './router.js';
import type { ConfigStore } from '../store/config-store.js';
import { registerReports } from './reports.js';
import type { LiveHub } from './live.js';
import { registerDashboard } from './dashboard.js';
import { fitMinutesPerHourMin } from '../profile/fit.js';
import { profileToApi, type ProfileService } from '../profile/service.js';
import type { BacktestService } from './backtest.js';
import { forecast } from './forecast.js';
import { limits } from '../../shards/limits.js';
import { dayBounds } from '../../shards/time/zone.js';

export type { AdminRouter } from './router.js';

// Every admin answer closes its connection (see router.ts for why).
const sendJson = (res: Res, status: number, body: string): void => sendAdminJson(res, status, body);
const sendError = (res: Res, err: ApiError): void => sendAdminError(res, err);

export interface AdminState {
  shuttingDown: boolean;
}

/**
 * The management API on PACER_ADMIN_PORT, behind `Authorization: Bearer <token>`. Every handler
 * copies what it needs out of `req` first, then answers asynchronously through sendJson/sendError,
 * which cork and skip aborted responses.
 */
export function createAdminApp(token: string, campaigns: Campaigns, state: AdminState, scrape: () => Promise<string>, store: ConfigStore, live?: LiveHub, profiles?: ProfileService, backtests?: BacktestService): TemplatedApp {
  const app = uWS.App();
  // The live feed (docs/live-protocol.md): a WebSocket, authenticated by its first message.
  live?.attach(app);

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

  // Durable traffic profiles (src/profile/service.ts).
  if (profiles !== undefined) {
    const known = (id: string): void => {
      if (campaigns.get(id) === undefined) throw new ApiError('UNKNOWN_CAMPAIGN', `no campaign ${JSON.stringify(id)}`);
    };
    route('get', '/v1/campaigns/:id/profile', false, (res, [id]) => {
      known(id!);
      // Its fitted profile, else the starting one combined from campaigns like it (source: similar).
      const p = profiles.toApi(id!);
      if (p === null) throw new ApiError('NO_PROFILE', `campaign ${id} has no fitted profile yet: POST /v1/campaigns/${id}/profile/fit once it has history`);
      sendJson(res, 200, JSON.stringify(p));
    });
    route('post', '/v1/campaigns/:id/profile/fit', false, async (res, [id]) => {
      known(id!);
      const p = await profiles.fit(id!);
      if (p === null) throw new ApiError('NO_PROFILE', `the history of ${id} holds no local hour with ${fitMinutesPerHourMin} observed minutes yet`);
      sendJson(res, 200, JSON.stringify(profileToApi(p)));
    });
  }

  // Backtests: the stored minute history replayed through the simulator (src/admin/backtest.ts).
  if (backtests !== undefined) {
    route('post', '/v1/campaigns/:id/backtest', true, async (res, [id], { body }) => {
      const record = campaigns.get(id!);
      if (record === undefined) throw new ApiError('UNKNOWN_CAMPAIGN', `no campaign ${JSON.stringify(id)}`);
      sendJson(res, 200, JSON.stringify(await backtests.run(record, body)));
    });
  }

  // The forecast of today's spend (src/admin/forecast.ts).
  route('get', '/v1/campaigns/:id/forecast', false, async (res, [id]) => {
    const record = campaigns.get(id!);
    if (record === undefined) throw new ApiError('UNKNOWN_CAMPAIGN', `no campaign ${JSON.stringify(id)}`);
    const nowMs = Date.now();
    const status = await campaigns.status(id!);
    const since = Math.max(dayBounds(record.config.timezone, nowMs).startMs, Math.floor(nowMs / 60_000) * 60_000 - limits.forecastRecentMinutes * 60_000);
    const { minutes } = await store.history(id!, since, nowMs);
    const settledByMinute = new Map<number, number>();
    for (const m of minutes) settledByMinute.set(m.minuteMs, (settledByMinute.get(m.minuteMs) ?? 0) + m.settledMicros);
    const profile = profiles?.profileOf(id!) ?? null;
    sendJson(res, 200, JSON.stringify(forecast({ config: record.config, nowMs, spentMicros: status.settledMicros, budgetMicros: status.budgetMicros, settledByMinute, profile })));
  });

  // History, day and fleet reports, and the OpenAPI document (src/admin/reports.ts).
  registerReports(app, route, campaigns, store);

  // The dashboard's page and static files, without the token: the page asks for it (dashboard.ts).
  const dashboard = registerDashboard(app);

  app.get('/healthz', (res: Res) => {
    res.writeHeader('content-type', 'application/json').end('{"status":"ok"}', true);
  });

  app.any('/*', (res: Res, req: HttpRequest) => {
    const method = req.getMethod().toUpperCase();
    const url = req.getUrl();
    const known = url === '/metrics' || url === '/healthz' || url === '/v1/openapi.json' || url === '/v1/live' || router.knows(url) || dashboard.knows(url);
    const shown = JSON.stringify(url.slice(0, 100));
    if (known) sendAdminError(res, new ApiError('METHOD_NOT_ALLOWED', `${method.slice(0, 10)} is not supported on ${shown}`));
    else sendAdminError(res, new ApiError('NOT_FOUND', `no route ${method.slice(0, 10)} ${shown}`));
  });
  return app;
}

