import uWS, { type HttpRequest, type TemplatedApp } from 'uWebSockets.js';
import { ApiError } from '../http/errors.js';
import { readJsonBody, type Res, sendError as sendErrorKeepAlive, sendJson as sendJsonKeepAlive } from '../http/respond.js';
import { instantFormat, parseInstant } from '../http/time.js';
import { campaignIdPattern } from '../router/validate.js';
import { campaignToApi } from './campaign-schema.js';
import type { Campaigns } from './campaigns.js';
import { checkBearer } from './token.js';

const adminBodyBytesMax = 256 * 1024;
/** One history request spans at most a week of minutes (about 10k rows per campaign). */
const historyRangeMsMax = 7 * 86_400_000;

/*
 * The admin API closes the connection after every answer. It serves a handful of requests, and an
 * idle kept-alive connection keeps a socket open in the admin thread, which makes Node abort the
 * process when the thread is torn down at shutdown (uv_loop_close with open handles; this uWS
 * version can neither enumerate nor close its HTTP connections).
 */
const sendJson = (res: Res, status: number, body: string): void => sendJsonKeepAlive(res, status, body, true);
const sendError = (res: Res, err: ApiError): void => sendErrorKeepAlive(res, err, true);

function timeParam(query: URLSearchParams, name: string, fallback: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  const ms = parseInstant(raw);
  if (ms === null) throw new ApiError('INVALID_FIELD', `${name} must be ${instantFormat} (got ${JSON.stringify(raw.slice(0, 40))})`);
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

  type Handler = (res: Res, params: string[], ctx: { actor: string; body: unknown; query: URLSearchParams }) => Promise<void> | void;

  const route = (method: 'get' | 'post', pattern: string, withBody: boolean, handler: Handler): void => {
    const paramCount = (pattern.match(/:/g) ?? []).length;
    app[method](pattern, (res: Res, req: HttpRequest) => {
      const params: string[] = [];
      for (let i = 0; i < paramCount; i++) params.push(req.getParameter(i));
      const authorization = req.getHeader('authorization');
      const actor = (req.getHeader('x-pacer-actor') || 'admin-token').slice(0, 200);
      const contentLength = req.getHeader('content-length');
      const query = new URLSearchParams(req.getQuery() ?? '');
      res.onAborted(() => {
        res.aborted = true;
      });
      const auth = checkBearer(authorization, token);
      if (auth !== 'ok') {
        sendError(res, auth === 'missing'
          ? new ApiError('UNAUTHORIZED', 'send Authorization: Bearer <admin token>')
          : new ApiError('FORBIDDEN', 'the admin token is not valid'));
        return;
      }
      if (state.shuttingDown) {
        sendError(res, new ApiError('SHUTTING_DOWN', 'the pacer is shutting down'));
        return;
      }
      for (const p of params) {
        if (!campaignIdPattern.test(p)) {
          sendError(res, new ApiError('INVALID_CAMPAIGN_ID', `campaign id ${JSON.stringify(p.slice(0, 80))} is not valid`));
          return;
        }
      }
      const run = (body: unknown): void => {
        Promise.resolve()
          .then(() => handler(res, params, { actor, body, query }))
          .catch((err: unknown) => {
            if (err instanceof ApiError) sendError(res, err);
            else sendError(res, new ApiError('INTERNAL', err instanceof Error ? err.message : String(err)));
          });
      };
      if (withBody) readJsonBody(res, contentLength, adminBodyBytesMax, run);
      else run(undefined);
    });
  };

  route('post', '/v1/campaigns', true, async (res, _params, { actor, body }) => {
    const { record, created, status } = await campaigns.upsert(body, actor);
    sendJson(res, created ? 201 : 200, JSON.stringify({ campaign: campaignToApi(record), status }));
  });

  route('get', '/v1/campaigns', false, (res) => {
    sendJson(res, 200, JSON.stringify({ campaigns: campaigns.list().map(campaignToApi) }));
  });

  route('get', '/v1/campaigns/:id', false, (res, [id]) => {
    const record = campaigns.get(id!);
    if (record === undefined) throw new ApiError('UNKNOWN_CAMPAIGN', `no campaign ${JSON.stringify(id)}`);
    sendJson(res, 200, JSON.stringify({ campaign: campaignToApi(record) }));
  });

  route('get', '/v1/campaigns/:id/status', false, async (res, [id]) => {
    sendJson(res, 200, JSON.stringify(await campaigns.status(id!)));
  });

  route('post', '/v1/campaigns/:id/breaker/reset', false, async (res, [id]) => {
    sendJson(res, 200, JSON.stringify(await campaigns.resetBreaker(id!)));
  });

  route('get', '/v1/campaigns/:id/budget-changes', false, async (res, [id]) => {
    sendJson(res, 200, JSON.stringify({ changes: await campaigns.budgetChanges(id!) }));
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
    const known = url === '/metrics' || /^\/v1\/campaigns(\/[^/]+(\/status|\/breaker\/reset|\/budget-changes|\/history)?)?$/.test(url) || url === '/healthz';
    if (known) {
      res.writeStatus('405 Method Not Allowed').writeHeader('content-type', 'application/json');
      res.end(JSON.stringify(new ApiError('METHOD_NOT_ALLOWED', `${method} is not supported on ${url}`)), true);
      return;
    }
    res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json');
    res.end(JSON.stringify(new ApiError('NOT_FOUND', `no route ${method} ${url.slice(0, 100)}`)), true);
  });
  return app;
}

