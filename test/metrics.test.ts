import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr, Unpackr } from 'msgpackr';
import t from 'tap';
import WebSocket from 'ws';
import { limits } from '../shards/limits.js';
import { createCampaign, get, post, startPacer } from './helpers/server.js';

const pacer = await startPacer();
t.teardown(() => pacer.stop());

async function scrape(): Promise<string> {
  const res = await fetch(`${pacer.adminUrl}/metrics`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type') ?? '', /text\/plain/);
  return res.text();
}

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

t.test('metrics from the router and every shard are merged on the admin port, without a token', async (t) => {
  await createCampaign(pacer, { id: 'm-1', dailyBudgetMicros: 1_000_000, strategy: 'ASAP' });
  for (let i = 0; i < 5; i++) await post(pacer.url, '/v1/decide', { campaignId: 'm-1', bidMicros: 10, requestId: `q${i}` });
  await post(pacer.url, '/v1/decide', { campaignId: 'nobody' });
  await post(pacer.url, '/v1/spend', { campaignId: 'm-1', eventId: 'e1', amountMicros: 7, requestId: 'q0' });
  await post(pacer.url, '/v1/spend', { campaignId: 'm-1', eventId: 'e1', amountMicros: 7, requestId: 'q0' });
  await post(pacer.url, '/v1/decide', '{not json');
  const text = await scrape();
  const sum = (prefix: string): number =>
    text.split('\n').filter((l) => l.startsWith(prefix)).reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  t.equal(sum('pacer_decisions_total{') , 6, 'six decisions across shards');
  const allowed = text.split('\n').filter((l) => l.startsWith('pacer_decisions_total{') && l.includes('reason="OK"'));
  t.equal(allowed.reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0), 5, 'five allowed');
  t.ok(text.includes('reason="UNKNOWN_CAMPAIGN"'));
  t.equal(sum('pacer_spend_events_total{') , 2);
  t.ok(/pacer_spend_events_total\{shard="\d",outcome="duplicate"\} 1/.test(text), 'the resend is counted a duplicate');
  t.equal(sum('pacer_settled_micros_total{'), 7);
  t.equal(value(text, 'pacer_http_requests_total{route="decide"}'), 7);
  t.equal(value(text, 'pacer_http_errors_total{route="decide",code="INVALID_JSON"}'), 1);
  // Sampled one decide request in 8: 16 more make sure at least one more is timed.
  const timedBefore = value(text, 'pacer_decision_duration_seconds_count');
  for (let i = 0; i < 16; i++) await post(pacer.url, '/v1/decide', { campaignId: 'm-1' });
  const timed = value(await scrape(), 'pacer_decision_duration_seconds_count') - timedBefore;
  t.ok(timed >= 2 && timed <= 3, `decision latency is sampled: ${timed} of 16 requests timed`);
  t.equal(value(text, 'pacer_configured_campaigns'), 1);
  t.ok(/pacer_event_loop_utilization_ratio\{thread="shard-0"\}/.test(text), 'every thread reports its event-loop utilisation');
  t.ok(/pacer_event_loop_utilization_ratio\{thread="router"\}/.test(text));
  t.ok(/pacer_event_loop_utilization_ratio\{thread="admin"\}/.test(text));
  t.ok(/pacer_flush_duration_seconds_count\{shard="\d"\} [1-9]/.test(text), 'flushes are timed');
});

t.test('every answer that acknowledges spend is timed in pacer_spend_ack_seconds; refused spends are not', async (t) => {
  await createCampaign(pacer, { id: 'ack-1', dailyBudgetMicros: 1_000_000, strategy: 'ASAP' });
  const count = async (): Promise<number> => value(await scrape(), 'pacer_spend_ack_seconds_count');
  const before = await count();
  t.equal((await post(pacer.url, '/v1/spend', { campaignId: 'ack-1', eventId: 'ack-e1', amountMicros: 5 })).status, 200);
  // A resend is acknowledged too (answered "duplicate" after its check).
  t.equal((await post(pacer.url, '/v1/spend', { campaignId: 'ack-1', eventId: 'ack-e1', amountMicros: 5 })).status, 200);
  t.equal((await post(pacer.url, '/v1/spend/batch', {
    events: [{ campaignId: 'ack-1', eventId: 'ack-e2', amountMicros: 5 }, { campaignId: 'ack-1', eventId: 'ack-e3', amountMicros: 5 }],
  })).status, 200);
  t.equal(await count(), before + 3, 'two single spends and one batch answer');
  // Refused: unknown campaign (404) and invalid input (400).
  t.equal((await post(pacer.url, '/v1/spend', { campaignId: 'nobody', eventId: 'ack-e4', amountMicros: 5 })).status, 404);
  t.equal((await post(pacer.url, '/v1/spend', { campaignId: 'ack-1', eventId: 'ack-e5', amountMicros: -1 })).status, 400);
  // Decisions are not spend.
  await post(pacer.url, '/v1/decide', { campaignId: 'ack-1' });
  t.equal(await count(), before + 3, 'refused spends and decisions are not acknowledgements');
  // A stream frame with spends is one observation; a frame of decisions alone is none.
  const ws = new WebSocket(`ws://127.0.0.1:${pacer.port}/v1/stream`);
  await new Promise((r) => ws.once('open', r));
  const answer = (ops: unknown[]): Promise<unknown[][]> =>
    new Promise((resolve) => {
      ws.once('message', (d: Buffer) => resolve(new Unpackr({ useRecords: false }).unpack(d) as unknown[][]));
      ws.send(new Packr({ useRecords: false }).pack(ops));
    });
  const spent = await answer([[2, 1, 'ack-1', 'ack-s1', 5], [2, 2, 'ack-1', 'ack-s2', 5], [1, 3, 'ack-1']]);
  t.same(spent.map((r) => r[2]), ['applied', 'applied', true]);
  await answer([[1, 4, 'ack-1']]);
  ws.close();
  const text = await scrape();
  t.equal(value(text, 'pacer_spend_ack_seconds_count'), before + 4, 'the frame with spends counts once, the decide frame not');
  t.ok(value(text, 'pacer_spend_ack_seconds_sum') > 0);
});

t.test('the exposition follows Prometheus naming rules', async (t) => {
  const text = await scrape();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) {
      t.notOk(types.has(m[1]!), `${m[1]} is declared once`);
      types.set(m[1]!, m[2]!);
    }
  }
  t.ok(types.size >= 15, `${types.size} metrics`);
  for (const [name, type] of types) {
    t.match(name, /^(pacer|process|nodejs)_[a-z0-9_]+$/, `${name} is namespaced`);
    if (type === 'counter') t.match(name, /_total$/, `counter ${name} ends in _total`);
    else t.notMatch(name, /_total$/, `${type} ${name} does not end in _total`);
    t.ok(text.includes(`# HELP ${name} `), `${name} has help`);
  }
  // promtool (Debian package prometheus; .ci/run installs it) is Prometheus' own linter.
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  t.equal(lint.error, undefined, 'promtool is installed');
  t.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
  // prom-client's _total gauges, which promtool rejects, are removed as prom-client documents
  // (registry.removeSingleMetric), not renamed; their labelled gauges stay.
  t.notOk(types.has('nodejs_active_handles_total'), 'nodejs_active_handles_total is removed');
  t.equal(types.get('nodejs_active_handles'), 'gauge', 'nodejs_active_handles stays');
  const admin = await get(pacer.adminUrl, '/v1/campaigns');
  t.equal(admin.status, 401, 'the rest of the admin API still needs the token');
});

t.test('prom-client default metrics: nodejs_* once per thread, process_* once for the process', async (t) => {
  const text = await scrape();
  const lines = text.split('\n');
  for (const thread of ['router', 'admin', 'shard-0', 'shard-1']) {
    t.ok(lines.some((l) => l.startsWith(`nodejs_heap_size_used_bytes{thread="${thread}"} `)), `${thread} reports its heap`);
    t.ok(lines.some((l) => l.startsWith(`nodejs_eventloop_lag_p99_seconds{thread="${thread}"} `)), `${thread} reports its event-loop lag`);
  }
  t.notOk(lines.some((l) => /^nodejs_[a-z_]+ /.test(l)), 'every nodejs_* series names its thread');
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds']) {
    const series = lines.filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    t.equal(series.length, 1, `${name}: one series`);
    t.match(series[0], new RegExp(`^${name} [0-9.e+]+$`), `${name}: no thread label`);
  }
  const started = value(text, 'process_start_time_seconds');
  t.ok(Math.abs(started - Date.now() / 1000) < 600, 'process_start_time_seconds is this process\'s start');
});

t.test('pacing quality is exported with a fixed number of series per shard', async (t) => {
  await createCampaign(pacer, { id: 'pq-1', dailyBudgetMicros: 1_000_000_000, strategy: 'EVEN' });
  await post(pacer.url, '/v1/decide', { campaignId: 'pq-1', bidMicros: 10 });
  // One pass over the campaigns serves a scrape's gauges; wait until the last one is stale.
  await new Promise((r) => setTimeout(r, limits.metricsSnapshotMaxAgeMs + 50));
  const text = await scrape();
  const buckets = text.split('\n').filter((l) => l.startsWith('pacer_campaigns_by_pacing_index{'));
  t.equal(buckets.length, 2 * 11, 'eleven buckets per shard, whatever the number of campaigns');
  const inf = buckets.filter((l) => l.includes('index_le="+Inf"')).reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  t.ok(inf >= 1, `${inf} active campaigns with a plan are in the distribution`);
  t.ok(/^pacer_campaigns_exhausted_early\{shard="0"\} 0$/m.test(text), 'exhausted-early count per shard');
  t.ok(/^pacer_breakers_open_past_cooldown\{shard="1"\} 0$/m.test(text), 'breakers open past their cooldown per shard');
  t.ok(/^pacer_spool_bytes\{shard="0"\} 0$/m.test(text), 'spool size per shard');
  t.ok(/^pacer_assertion_exits_total\{thread="shard"\} 0$/m.test(text), 'assertion exits, zero until one happens');
  t.ok(/^pacer_assertion_exits_total\{thread="admin"\} 0$/m.test(text), 'for each thread kind');
});

t.test('assertion exits recorded in the data directory by an earlier run are counted after the restart', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pacer-exits-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  writeFileSync(join(dataDir, 'assertion-exits.json'), JSON.stringify({ shard: 2, admin: 1 }));
  const restarted = await startPacer({ dataDir });
  t.teardown(() => restarted.stop());
  const text = await (await fetch(`${restarted.adminUrl}/metrics`)).text();
  t.equal(value(text, 'pacer_assertion_exits_total{thread="shard"}'), 2);
  t.equal(value(text, 'pacer_assertion_exits_total{thread="admin"}'), 1);
});

t.test('a campaign that spends its whole budget early in its day counts as exhausted early', async (t) => {
  // A zone where it is about 2 a.m.: an EVEN plan has reached about a twelfth of the budget.
  const offset = (((2 - new Date().getUTCHours()) % 24) + 24) % 24;
  const hours = offset > 14 ? offset - 24 : offset;
  const timezone = hours === 0 ? 'UTC' : `Etc/GMT${hours > 0 ? '-' : '+'}${Math.abs(hours)}`;
  const before = await scrape();
  const count = (text: string): number =>
    text.split('\n').filter((l) => l.startsWith('pacer_campaigns_exhausted_early{')).reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  await createCampaign(pacer, { id: 'early-1', dailyBudgetMicros: 1_000, strategy: 'EVEN', timezone });
  const spent = await post(pacer.url, '/v1/spend', { campaignId: 'early-1', eventId: 'early-e1', amountMicros: 1_000 });
  t.equal(spent.body.status, 'applied');
  await new Promise((r) => setTimeout(r, limits.metricsSnapshotMaxAgeMs + 50));
  const after = await scrape();
  t.equal(count(after) - count(before), 1, `exhausted at about 2 a.m. in ${timezone}`);
});

t.test('an admin thread that fails stops the process with 70, and the next start counts it', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pacer-exits-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  // The admin port is taken: the admin thread reports a fatal error and the process exits 70.
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const taken = (blocker.address() as AddressInfo).port;
  const failed = await startPacer({ dataDir, env: { PACER_ADMIN_PORT: String(taken) } }).then(
    (p) => p.stop().then(() => 'started'),
    (err: Error) => err.message,
  );
  blocker.close();
  t.match(failed, /exited with 70 before ready/);
  const restarted = await startPacer({ dataDir });
  t.teardown(() => restarted.stop());
  const text = await (await fetch(`${restarted.adminUrl}/metrics`)).text();
  t.equal(value(text, 'pacer_assertion_exits_total{thread="admin"}'), 1, 'counted across the restart');
});
