import type { HttpRequest, TemplatedApp } from 'uWebSockets.js';
import { limits } from '../../shards/limits.js';
import { ApiError, statusLine } from '../http/errors.js';
import { readJsonBody, type Res } from '../http/respond.js';
import { campaignIdPattern, show } from '../model/campaign.js';
import { actorOf, type Preconditions } from './edits.js';
import { log } from '../log.js';
import { adminInternalErrors } from '../metrics.js';
import { accessLog } from './reports.js';
import { checkBearer } from './token.js';

/*
 * The admin API closes the connection after every answer, errors included. It serves a handful of
 * requests, and an idle kept-alive connection keeps a socket open in the admin thread, which makes
 * Node abort the process when the thread is torn down at shutdown (uv_loop_close with open handles;
 * this uWS version can neither enumerate nor close its HTTP connections).
 */

/** What a handler gets, copied out of the request before anything asynchronous. */
export interface AdminContext {
  /** X-Pacer-Actor, validated ('admin-token' when absent). */
  actor: string;
  /** The parsed JSON body (routes registered with a body), else undefined. */
  body: unknown;
  query: URLSearchParams;
  preconditions: Preconditions;
  /** The Content-Type header, lower-cased, '' when absent. */
  contentType: string;
}

export type AdminHandler = (res: Res, params: string[], ctx: AdminContext) => Promise<void> | void;
export type AdminMethod = 'get' | 'post' | 'put' | 'patch' | 'del';

/**
 * Registers admin routes: every route checks the bearer token, that the pacer is not shutting
 * down, and that each `:param` is a valid campaign ID, reads a JSON body when asked, and turns any
 * exception into a coded answer. Other route files (src/admin/reports.ts) register through it too.
 */
export interface AdminRouter {
  route(method: AdminMethod, pattern: string, withBody: boolean, handler: AdminHandler): void;
  /** Sends a JSON answer (and closes the connection); headers such as ETag go in `headers`. */
  send(res: Res, status: number, body: unknown, headers?: Record<string, string>): void;
  /** Whether a path is served for some method (for 405 rather than 404). */
  knows(url: string): boolean;
}

export function sendAdminJson(res: Res, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.aborted) return;
  res.cork(() => {
    res.writeStatus(statusLine(status)).writeHeader('content-type', 'application/json');
    for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
    res.end(body, true);
  });
}

export function sendAdminError(res: Res, err: ApiError): void {
  sendAdminJson(res, err.status, JSON.stringify(err), err.status === 503 ? { 'retry-after': String(limits.retryAfterSeconds) } : {});
}

/**
 * Whether a parsed JSON value nests deeper than `max` levels, walked without recursion so that no
 * value can overflow the stack (JSON.parse itself accepts thousands of levels).
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

interface Copied {
  params: string[];
  authorization: string;
  actorHeader: string;
  contentLength: string;
  ctx: Omit<AdminContext, 'actor' | 'body'>;
}

function copy(req: HttpRequest, paramCount: number): Copied {
  const params: string[] = [];
  for (let i = 0; i < paramCount; i++) params.push(req.getParameter(i));
  return {
    params,
    authorization: req.getHeader('authorization'),
    actorHeader: req.getHeader('x-pacer-actor'),
    contentLength: req.getHeader('content-length'),
    ctx: {
      query: new URLSearchParams(req.getQuery() ?? ''),
      preconditions: { ifMatch: req.getHeader('if-match'), ifNoneMatch: req.getHeader('if-none-match') },
      contentType: req.getHeader('content-type').toLowerCase(),
    },
  };
}

/** The first reason to refuse a request before its handler runs, or null. */
function refusal(c: Copied, token: string, shuttingDown: boolean): ApiError | null {
  const auth = checkBearer(c.authorization, token);
  if (auth === 'missing') return new ApiError('UNAUTHORIZED', 'send Authorization: Bearer <admin token>');
  if (auth !== 'ok') return new ApiError('FORBIDDEN', 'the admin token is not valid');
  if (shuttingDown) return new ApiError('SHUTTING_DOWN', 'the pacer is shutting down');
  for (const p of c.params) {
    if (!campaignIdPattern.test(p)) return new ApiError('INVALID_CAMPAIGN_ID', `campaign id ${show(p, 80)} is not valid`);
  }
  return null;
}

function asApiError(err: unknown, pattern: string): ApiError {
  if (err instanceof ApiError) return err;
  // An exception no handler expected is a bug: counted in pacer_internal_errors_total{thread="admin"}
  // and logged with the route and the error's class, never its message (it may quote the body).
  adminInternalErrors.set(pattern, (adminInternalErrors.get(pattern) ?? 0) + 1);
  log('error', 'internal error', { route: pattern, errorClass: err instanceof Error ? err.name : typeof err });
  return new ApiError('INTERNAL', err instanceof Error ? String(err.message).slice(0, 300) : 'unexpected failure');
}

export function createAdminRouter(app: TemplatedApp, token: string, state: { shuttingDown: boolean }): AdminRouter {
  const patterns: RegExp[] = [];
  const route = (method: AdminMethod, pattern: string, withBody: boolean, handler: AdminHandler): void => {
    patterns.push(new RegExp(`^${pattern.replace(/:[^/]+/g, '[^/]+')}$`));
    const paramCount = (pattern.match(/:/g) ?? []).length;
    app[method](pattern, (res: Res, req: HttpRequest) => {
      accessLog(res, method === 'del' ? 'DELETE' : method.toUpperCase(), pattern, req.getHeader('x-pacer-actor'));
      const c = copy(req, paramCount);
      res.onAborted(() => {
        res.aborted = true;
      });
      const refused = refusal(c, token, state.shuttingDown);
      if (refused !== null) return sendAdminError(res, refused);
      const run = (body: unknown): void => {
        Promise.resolve()
          .then(() => {
            if (body !== undefined && nestsDeeperThan(body, limits.adminBodyDepthMax)) {
              throw new ApiError('INVALID_BODY', `the body nests deeper than adminBodyDepthMax = ${limits.adminBodyDepthMax} levels`);
            }
            return handler(res, c.params, { ...c.ctx, actor: actorOf(c.actorHeader), body });
          })
          .catch((err: unknown) => sendAdminError(res, asApiError(err, pattern)));
      };
      if (withBody) readJsonBody(res, c.contentLength, limits.adminBodyBytesMax, run, (err) => sendAdminError(res, err));
      else run(undefined);
    });
  };
  return {
    route,
    send: (res, status, body, headers) => sendAdminJson(res, status, JSON.stringify(body), headers),
    knows: (url) => patterns.some((p) => p.test(url)),
  };
}
