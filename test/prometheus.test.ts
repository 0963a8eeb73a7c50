import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { createCampaign, post, root, startPacer } from './helpers/server.js';

/**
 * A real Prometheus (Debian package `prometheus`, which .ci/run installs) scrapes a loaded pacer
 * every second with the project's alert rules. Every Grafana panel query must then return data,
 * and every alert rule must evaluate without error and read only metrics that exist. Bounded: a
 * few seconds of scrapes, every wait with a deadline.
 */
type Rule = { alert: string; expr: string };
const rules = (parse(readFileSync(join(root, 'prometheus/alerts.yml'), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap(
  (g) => g.rules,
);
const dashboard = JSON.parse(readFileSync(join(root, 'grafana/dashboards/pacer.json'), 'utf8')) as {
  panels: { type: string; title: string; targets?: { expr: string }[] }[];
};
const panelQueries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((x) => ({ title: p.title, expr: x.expr })));

/**
 * Panel queries that may legitimately return nothing on a healthy pacer, with the reason. Empty
 * today: the load below makes every counter the dashboard reads exist (an error, a breaker
 * transition), and the one query whose numerator may not exist (503 OVERLOADED) falls back to 0.
 */
const mayBeEmpty = new Map<string, string>();

/** Metric names in a PromQL expression (the pacer's, prom-client's defaults and `up`). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:pacer|process|nodejs)_[a-z0-9_]+|up(?=\{))/g)].map((m) => m[1]!);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const got = await probe().catch(() => undefined);
    if (got !== undefined) return got;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

type Sample = { metric: Record<string, string>; value: [number, string] };

const pacer = await startPacer();

let loading = true;
let n = 0;
async function drive(): Promise<void> {
  while (loading) {
    const i = n++;
    const campaignId = i % 2 === 0 ? 'prom-even' : 'prom-asap';
    const d = await post(pacer.url, '/v1/decide', { campaignId, bidMicros: 1_000, requestId: `r${i}` });
    if (d.body?.allow === true && i % 3 === 0) {
      await post(pacer.url, '/v1/release', { campaignId, requestId: `r${i}` });
    } else if (d.body?.allow === true) {
      await post(pacer.url, '/v1/spend', { campaignId, eventId: `e${i}`, amountMicros: 900, requestId: `r${i}` });
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
let driving: Promise<unknown> = Promise.resolve();
t.test('the pacer is loaded: campaigns, decisions, spend, a release, an exhausted budget, a bad request', async (t) => {
  // A campaign that runs out of budget makes a breaker transition (to EXHAUSTED), and the bad
  // request an error series, so the panels that read those counters have series to show.
  await createCampaign(pacer, { id: 'prom-even', dailyBudgetMicros: 1_000_000_000, strategy: 'EVEN' });
  await createCampaign(pacer, { id: 'prom-asap', dailyBudgetMicros: 1_000_000_000, strategy: 'ASAP' });
  await createCampaign(pacer, { id: 'prom-tiny', dailyBudgetMicros: 1_000, strategy: 'ASAP' });
  const tiny = await post(pacer.url, '/v1/decide', { campaignId: 'prom-tiny', bidMicros: 600, requestId: 'tiny-1' });
  t.equal(tiny.body.allow, true, 'the tiny campaign may bid once');
  const spent = await post(pacer.url, '/v1/spend', { campaignId: 'prom-tiny', eventId: 'tiny-e1', amountMicros: 600, requestId: 'tiny-1' });
  t.equal(spent.body.status, 'applied');
  const bad = await post(pacer.url, '/v1/decide', '{not json');
  t.equal(bad.status, 400);
  driving = Promise.all([drive(), drive()]);
  await new Promise((r) => setTimeout(r, 200));
  t.ok(n > 0, `${n} decisions sent so far, more while Prometheus scrapes`);
});

const dir = mkdtempSync(join(tmpdir(), 'pacer-prometheus-'));
let port = 0;
let promUrl = '';
/** Scrapes the pacer's admin port every second and evaluates the rules every second. */
function writeConfig(): void {
  const config = {
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    rule_files: [join(root, 'prometheus/alerts.yml')],
    scrape_configs: [{ job_name: 'pacer', metrics_path: '/metrics', static_configs: [{ targets: [`127.0.0.1:${pacer.adminPort}`] }] }],
  };
  // JSON is YAML: Prometheus reads it as its configuration file.
  writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config));
}
let prometheus: ChildProcess | null = null;
let promLog = '';
let exited: Promise<void> = Promise.resolve();
t.teardown(async () => {
  loading = false;
  await driving;
  if (prometheus !== null && prometheus.exitCode === null) prometheus.kill('SIGTERM');
  await exited;
  rmSync(dir, { recursive: true, force: true });
  await pacer.stop();
});

async function query(expr: string): Promise<Sample[]> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; error?: string; data: { resultType: string; result: Sample[] } };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
}

t.test('Prometheus starts with the alert rules and scrapes the pacer every second', async (t) => {
  port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  writeConfig();
  prometheus = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  prometheus.stderr!.on('data', (d: Buffer) => (promLog = (promLog + d.toString()).slice(-20_000)));
  const spawned = await new Promise<boolean>((resolve) => {
    prometheus!.once('spawn', () => resolve(true));
    prometheus!.once('error', () => resolve(false));
  });
  t.ok(spawned, 'the prometheus server is installed (apt-get install prometheus)');
  if (!spawned) return;
  exited = new Promise((resolve) => prometheus!.once('exit', () => resolve()));
  await until('Prometheus to be ready', 20_000, async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined));
  // Five scrapes: every rate() and increase() over the panels' windows has samples to work with.
  const scrapes = await until('five scrapes of the pacer', 20_000, async () => {
    const r = await query('count_over_time(up{job="pacer"}[1m])');
    return r.length === 1 && Number(r[0]!.value[1]) >= 5 ? Number(r[0]!.value[1]) : undefined;
  });
  t.ok(scrapes >= 5, `${scrapes} scrapes`);
  t.equal((await query('up{job="pacer"}'))[0]?.value[1], '1', 'the target is up');
});

t.test('every Grafana panel query returns data from the scraped pacer', async (t) => {
  t.ok(panelQueries.length >= 20, `${panelQueries.length} panel queries`);
  for (const { title, expr } of panelQueries) {
    const result = await query(expr);
    if (mayBeEmpty.has(expr) && result.length === 0) {
      t.comment(`${title}: empty, ${mayBeEmpty.get(expr)}`);
      continue;
    }
    t.ok(result.length > 0, `${title}: ${expr} returns data`);
    const values = result.map((s) => Number(s.value[1]));
    t.ok(
      values.every((v) => Number.isFinite(v)),
      `${title}: ${expr} returns numbers (${result.map((s) => s.value[1]).join(', ')})`,
    );
  }
});

t.test('every alert rule is evaluated without error and reads metrics that exist', async (t) => {
  type ApiRule = { name: string; health: string; lastError?: string; lastEvaluation: string; type: string };
  const evaluated = await until('every rule to be evaluated', 10_000, async () => {
    const body = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: { rules: ApiRule[] }[] } };
    const all = body.data.groups.flatMap((g) => g.rules);
    return all.length === rules.length && all.every((r) => !r.lastEvaluation.startsWith('0001')) ? all : undefined;
  });
  for (const rule of rules) {
    const got = evaluated.find((r) => r.name === rule.alert);
    t.equal(got?.type, 'alerting', `${rule.alert} is loaded`);
    t.equal(got?.health, 'ok', `${rule.alert} evaluates without error${got?.lastError ? `: ${got.lastError}` : ''}`);
  }
  const names = new Set(rules.flatMap((r) => metricNames(r.expr)));
  for (const name of names) {
    const r = await query(`count(${name === 'up' ? 'up' : `{__name__="${name}"}`})`);
    t.ok(r.length > 0 && Number(r[0]!.value[1]) > 0, `${name}, read by an alert, is scraped`);
  }
  t.notMatch(promLog, /level=error/, 'Prometheus logged no error');
});
