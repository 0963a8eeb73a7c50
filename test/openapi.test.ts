import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { reasonNames } from '../shards/reasons.js';
import { ErrorStatus } from '../src/http/errors.js';
import { checkResponse, openApi, openApiPath, templateOf } from './helpers/openapi.js';
import { get, root, startPacer } from './helpers/server.js';

/**
 * docs/openapi.yaml is the machine-readable contract: it lints clean under Redocly's strictest
 * recommended rules, it names every route the code registers and every error code, and the admin
 * port serves it. (Every answer of the API tests is validated against it by test/helpers/server.ts.)
 */
t.test('docs/openapi.yaml passes redocly lint with the recommended-strict rules', async (t) => {
  const bin = join(root, 'node_modules', '.bin', 'redocly');
  const r = spawnSync(bin, ['lint', openApiPath, '--config', join(root, 'docs', 'redocly.yaml'), '--format=stylish'], {
    cwd: root,
    encoding: 'utf8',
    // Offline: no telemetry, no update check.
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', CI: 'true', NO_COLOR: '1' },
    timeout: 60_000,
  });
  t.equal(r.status, 0, `redocly lint failed:\n${r.stdout}\n${r.stderr}`);
  t.match(r.stdout + r.stderr, /valid/);
});

/** The routes the code registers, read from the files that register them. */
function registeredRoutes(): { method: string; path: string; file: string }[] {
  const files = ['src/admin/app.ts', 'src/admin/reports.ts', 'src/admin/live.ts', 'src/router/http.ts', 'src/router/stream.ts'];
  const out: { method: string; path: string; file: string }[] = [];
  const forms = [
    // route('get', '/v1/…', …) in the admin app and reports
    /\broute\(\s*'(get|post|put|patch|del|delete)'\s*,\s*'([^']+)'/g,
    // app.get('/…', …), app.ws<Conn>('/…', …)
    /\bapp\.(get|post|put|patch|del|delete|ws)(?:<[^>]*>)?\(\s*'([^']+)'/g,
    // the router's post('/v1/…', 'name', …) helper
    /(?<![.\w])(post)\(\s*'(\/[^']+)'\s*,\s*'/g,
  ];
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const form of forms) {
      for (const m of text.matchAll(form)) {
        const method = m[1] === 'ws' ? 'get' : m[1] === 'del' ? 'delete' : m[1]!;
        out.push({ method, path: m[2]!.replace(/:(\w+)/g, '{$1}').replace(/\{\w+\}/g, '{id}'), file });
      }
    }
  }
  return out;
}

t.test('every route the admin app and the router register is in the document', async (t) => {
  const routes = registeredRoutes();
  t.ok(routes.length >= 15, `found ${routes.length} registered routes`);
  for (const r of routes) {
    const template = templateOf(r.path);
    t.ok(template !== null && openApi.paths[template][r.method] !== undefined, `${r.method.toUpperCase()} ${r.path} (${r.file})`);
  }
});

t.test('every error code of src/http/errors.ts and every decision reason is in the document', async (t) => {
  const codes: string[] = openApi.components.schemas.ErrorCode.enum;
  for (const code of Object.keys(ErrorStatus)) t.ok(codes.includes(code), code);
  const reasons: string[] = openApi.components.schemas.Reason.enum;
  for (const reason of reasonNames) t.ok(reasons.includes(reason), reason);
});

t.test('the response check refuses an undocumented body, status or route', async (t) => {
  t.doesNotThrow(() => checkResponse('POST', '/v1/release', 200, { released: true }));
  t.throws(() => checkResponse('POST', '/v1/release', 200, { released: 'yes' }), /does not match/);
  t.throws(() => checkResponse('POST', '/v1/release', 200, { released: true, extra: 1 }), /does not match/);
  t.throws(() => checkResponse('POST', '/v1/release', 418, null), /does not list status 418/);
  t.throws(() => checkResponse('GET', '/v1/nowhere', 200, {}), /has no operation/);
  t.throws(() => checkResponse('GET', '/v1/campaigns/c1', 404, { error: { code: 'NO_SUCH_CODE', message: 'x' } }), /does not match/);
  t.doesNotThrow(() => checkResponse('GET', '/v1/nowhere', 404, { error: { code: 'NOT_FOUND', message: 'no route' } }));
  t.equal(templateOf('/v1/campaigns/bulk'), '/v1/campaigns/bulk', 'a literal path wins over a template');
  t.equal(templateOf('/v1/campaigns/c-1/report?day=2025-11-02'), '/v1/campaigns/{id}/report');
});

t.test('the admin port serves the document as JSON, without the token', async (t) => {
  const pacer = await startPacer();
  t.teardown(() => pacer.stop());
  const r = await get(pacer.adminUrl, '/v1/openapi.json');
  t.equal(r.status, 200);
  t.match(r.headers.get('content-type'), /application\/json/);
  t.same(r.body, openApi, 'the same document as docs/openapi.yaml');
});
