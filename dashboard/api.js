// The management API as the page uses it: the admin token from sessionStorage on every call, a
// 401 or 403 sends the person back to the login form, and errors keep the API's code and message.

const tokenKey = 'pacer.adminToken';
const actorKey = 'pacer.actor';

export const session = {
  token: () => sessionStorage.getItem(tokenKey),
  actor: () => sessionStorage.getItem(actorKey) ?? '',
  start(token, actor) {
    sessionStorage.setItem(tokenKey, token);
    if (actor) sessionStorage.setItem(actorKey, actor);
    else sessionStorage.removeItem(actorKey);
  },
  end() {
    sessionStorage.removeItem(tokenKey);
    sessionStorage.removeItem(actorKey);
  },
};

/** An answer of the API that was not 2xx: `{error: {code, message, …}}` (docs/api.md, Errors). */
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message);
    this.status = status;
    this.code = error.code;
    this.detail = error;
  }
}

let unauthorized = () => {};
/** What to do when the API refuses the token (the app shows the login form). */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/**
 * One API call. `etag` goes out as If-Match (every write names the version it was made against);
 * the answer is `{body, etag}`.
 */
export async function api(method, path, { body, etag, contentType = 'application/json', token } = {}) {
  // A token passed in is one being tried (the login form): its refusal is the caller's to show.
  const trying = token !== undefined;
  token ??= session.token();
  const headers = { authorization: `Bearer ${token}` };
  if (session.actor() !== '') headers['x-pacer-actor'] = session.actor();
  if (body !== undefined) headers['content-type'] = contentType;
  if (etag) headers['if-match'] = etag;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch (err) {
    throw new ApiError(0, { code: 'NETWORK', message: `the pacer did not answer (${err.message})` });
  }
  const text = await res.text();
  let json = null;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = null;
  }
  if (res.ok) return { body: json, etag: res.headers.get('etag') };
  const error = json?.error ?? { code: `HTTP_${res.status}`, message: text.slice(0, 200) || res.statusText };
  if ((res.status === 401 || res.status === 403) && !trying) unauthorized(error.message);
  throw new ApiError(res.status, error);
}

/** A query string from an object, leaving out empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

/**
 * The fleet-wide figures of /metrics (no token needed): decisions so far, breakers not CLOSED,
 * campaigns in the catalogue. Summed over every series of the metric.
 */
export async function fleetMetrics() {
  const res = await fetch('/metrics', { cache: 'no-store' });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  const text = await res.text();
  const sum = (name, filter = () => true) => {
    let total = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
      if (!filter(line)) continue;
      const v = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(v)) total += v;
    }
    return total;
  };
  return {
    atMs: Date.now(),
    decisions: sum('pacer_decisions_total'),
    breakersOpen: sum('pacer_breakers_open', (l) => l.includes('state="OPEN"')),
    campaigns: sum('pacer_configured_campaigns'),
  };
}
