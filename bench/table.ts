import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from './lib/process.js';

/**
 * Regenerates the results tables in bench/README.md from the JSON files in bench/results/, so that
 * every published figure is one a benchmark run wrote. Each table lives between marker comments.
 */
const resultsDir = join(root, 'bench/results');
const readme = join(root, 'bench/README.md');

type Row = Record<string, unknown>;

function results(prefix: string): Row[] {
  return readdirSync(resultsDir)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.json'))
    .sort()
    .map((f) => ({ file: f, ...(JSON.parse(readFileSync(join(resultsDir, f), 'utf8')) as Row) }));
}

function table(rows: Row[], columns: [string, string][]): string {
  const head = `| ${columns.map(([, h]) => h).join(' | ')} |`;
  const rule = `| ${columns.map(() => '---').join(' | ')} |`;
  const body = rows.map((r) => `| ${columns.map(([k]) => (r[k] === undefined ? '' : String(r[k]))).join(' | ')} |`);
  return [head, rule, ...body].join('\n');
}

function replace(text: string, name: string, content: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < 0) return text;
  return `${text.slice(0, i + begin.length)}\n${content}\n${text.slice(j)}`;
}

export function writeTable(): void {
  let text = readFileSync(readme, 'utf8');
  text = replace(
    text,
    'http',
    table(
      results('http-').map((r) => ({
        ...r,
        date: String(r.date).slice(0, 16).replace('T', ' '),
        cpu: r.pacerCpuUsPerRequest === undefined ? '' : `${String(r.baselineCpuUsPerRequest)} / ${String(r.pacerCpuUsPerRequest)} / ${String(r.routerCpuUsPerRequest)}`,
        profiled: r.cpuProfiled === true ? 'yes' : '',
        load: r.loadAvg1mBefore === undefined ? '' : `${String(r.loadAvg1mBefore)} / ${String(r.loadAvg1mAfter)}`,
      })),
      [
        ['date', 'date (UTC)'],
        ['tool', 'tool'],
        ['durationS', 's'],
        ['shards', 'shards'],
        ['campaigns', 'campaigns'],
        ['store', 'store'],
        ['baselineRps', 'baseline req/s'],
        ['pacerRps', 'pacer req/s'],
        ['ratio', 'ratio'],
        ['halfRate', 'half rate'],
        ['pacerP50Ms', 'pacer p50 ms'],
        ['pacerP99Ms', 'pacer p99 ms'],
        ['pacerServerP99MsAtMost', 'pacer server p99 ≤ ms'],
        ['baselineP99MsAtHalfRate', 'baseline p99 ms'],
        ['uwsNative', 'uWS native'],
        ['commit', 'commit'],
        ['cpu', 'CPU µs/req baseline / pacer / router'],
        ['profiled', 'profiled'],
        ['load', 'load avg before/after'],
      ],
    ),
  );
  const messaging = results('messaging-').map((r) => {
    const row: Row = { date: String(r.date).slice(0, 16).replace('T', ' '), ops: r.ops };
    for (const mode of ['binary+transfer', 'binary+copy', 'msgpackr', 'clone']) {
      const m = r[mode] as Record<string, number> | undefined;
      for (const b of [1, 8, 64, 512]) row[`${mode} ${b}`] = m?.[`routerUsBatch${b}`];
    }
    return row;
  });
  const columns: [string, string][] = [['date', 'date (UTC)'], ['ops', 'ops']];
  for (const mode of ['binary+transfer', 'binary+copy', 'msgpackr', 'clone']) {
    for (const b of [1, 8, 64, 512]) columns.push([`${mode} ${b}`, `${mode} ×${b}`]);
  }
  text = replace(text, 'messaging', table(messaging, columns));
  text = replace(text, 'memory', memoryTable());
  text = replace(text, 'stream', streamTable());
  text = replace(text, 'soak', soakTable());
  text = replace(text, 'latency', latencyTable());
  text = replace(text, 'results', resultsTable());
  writeFileSync(readme, text);
}

const shortDate = (r: Row): string => String(r.date).slice(0, 16).replace('T', ' ');

function observedText(r: Row): string {
  const o = r.observed as { rssMbAfterTraffic: number; rssMbAt30s: number | null; rssMbAtEnd: number; seconds: number } | null | undefined;
  if (o === null || o === undefined) return '—';
  return `${o.rssMbAfterTraffic} / ${o.rssMbAt30s ?? '—'} / ${o.rssMbAtEnd} (${o.seconds})`;
}

/** bench:memory results (bench/memory.ts), by store and campaign count. */
function memoryTable(): string {
  const rows = results('memory-').map((r) => {
    const heaps = (r.heapMbByThread ?? {}) as Record<string, number>;
    return {
      ...r,
      date: shortDate(r),
      heaps: Object.entries(heaps).map(([t, mb]) => `${t} ${mb}`).join(', '),
      load: `${String(r.loadAvgBefore)} / ${String(r.loadAvgAfter)}`,
      // The memory store keeps nothing across a restart, so it has no restart figure.
      readyMsRestart: r.readyMsRestart ?? '—',
      // Runs before bench:memory read memory between creation and traffic have no such figure.
      perCampaignBytesConfigured: r.perCampaignBytesConfigured ?? '—',
      // --observe: the same run again without the inspector, no collection asked for.
      observed: observedText(r),
    };
  });
  return table(rows, [
    ['date', 'date (UTC)'],
    ['commit', 'commit'],
    ['store', 'store'],
    ['campaigns', 'campaigns'],
    ['rssMbIdle', 'idle RSS MB'],
    ['rssMb', 'RSS MB'],
    ['perCampaignBytes', 'bytes/campaign'],
    ['perCampaignBytesConfigured', 'bytes/campaign, configured, no traffic'],
    ['rssMbIdleBeforeGc', 'idle RSS MB before GC'],
    ['rssMbBeforeGc', 'RSS MB before GC'],
    ['hwmMb', 'peak MB'],
    ['observed', 'without the inspector (--observe): MB right after / at 30 s / at the end (s)'],
    ['heaps', 'V8 heap used MB by thread'],
    ['readyMs', 'ready ms (empty)'],
    ['createRoute', 'created'],
    ['createMs', 'create ms'],
    ['readyMsRestart', 'ready ms (restart, N stored)'],
    ['load', 'load avg before/after'],
  ]);
}

/** bench:stream results (bench/stream.ts). */
function streamTable(): string {
  const rows = results('stream-').map((r) => {
    const d = (r.decisionsPerS ?? {}) as Record<string, number>;
    return { ...r, date: shortDate(r), s1: d['1'], s10: d['10'], s100: d['100'], s500: d['500'], load: `${String(r.loadAvgBefore)} / ${String(r.loadAvgAfter)}` };
  });
  return table(rows, [
    ['date', 'date (UTC)'],
    ['commit', 'commit'],
    ['store', 'store'],
    ['durationS', 's'],
    ['rounds', 'rounds'],
    ['httpTool', 'HTTP tool'],
    ['httpDecisionsPerS', 'HTTP decisions/s'],
    ['s1', 'stream ×1'],
    ['s10', 'stream ×10'],
    ['s100', 'stream ×100'],
    ['s500', 'stream ×500'],
    ['ratio100', 'ratio ×100 / HTTP'],
    ['streamErrors', 'stream errors'],
    ['load', 'load avg before/after'],
  ]);
}

/** npm run soak results (bench/soak.ts). */
function soakTable(): string {
  const rows = results('soak-').map((r) => {
    const h = (r.healthzRttMs ?? {}) as Record<string, number>;
    return { ...r, date: shortDate(r), healthzP99: h.p99, totalsExact: r.totalsExact === true ? 'yes' : 'NO' };
  });
  return table(rows, [
    ['date', 'date (UTC)'],
    ['commit', 'commit'],
    ['store', 'store'],
    ['minutes', 'minutes'],
    ['opsPerS', 'ops/s'],
    ['ops', 'ops'],
    ['campaignsChecked', 'campaigns checked'],
    ['rssMbStart', 'RSS MB start'],
    ['rssMbAfter5Min', 'RSS MB after 5 min'],
    ['rssMbEnd', 'RSS MB end'],
    ['rssMbMax', 'RSS MB max'],
    ['rssGrowthAfter5MinPct', 'growth after 5 min %'],
    ['eventLoopDelayP99Ms', 'event-loop p99 ms (worst 10 s)'],
    ['healthzP99', '/healthz p99 ms'],
    ['errors', 'errors'],
    ['overload503', '503s'],
    ['totalsExact', 'totals exact'],
    ['loadAverage1m', 'load avg 1m (end)'],
  ]);
}

/** The machine's 1-minute load average around a run, under whichever name its bench recorded it. */
function loadOf(r: Row): string {
  const pairs: [string, string][] = [['loadAvg1mBefore', 'loadAvg1mAfter'], ['loadAvgBefore', 'loadAvgAfter']];
  for (const [a, b] of pairs) if (r[a] !== undefined) return `${String(r[a])} / ${String(r[b] ?? '')}`;
  if (r.loadAverage1m !== undefined) return `— / ${String(r.loadAverage1m)}`;
  return '(not recorded)';
}

/** bench:latency results (bench/latency.ts): one row per transport and rate. */
function latencyTable(): string {
  const rows = results('latency-').flatMap((r) =>
    ((r.rows ?? []) as Row[]).map((x) => ({
      ...x,
      date: shortDate(r),
      commit: r.commit,
      share: `${Math.round(Number(x.fraction) * 100)}%`,
      transport: x.transport === 'stream' ? `stream ×${String(x.batch)}` : 'HTTP',
      load: x.loadAvg1m ?? '',
    })),
  );
  return table(rows, [
    ['date', 'date (UTC)'],
    ['commit', 'commit'],
    ['transport', 'transport'],
    ['peak', 'peak decisions/s'],
    ['share', 'of peak'],
    ['rate', 'rate/s'],
    ['achievedRate', 'answered/s'],
    ['p50Ms', 'p50 ms'],
    ['p99Ms', 'p99 ms'],
    ['p999Ms', 'p99.9 ms'],
    ['maxMs', 'max ms'],
    ['errors', 'errors'],
    ['unanswered', 'unanswered'],
    ['sendLagP99Ms', 'generator lag p99 ms'],
    ['generatorCpuPct', 'generator CPU %'],
    ['load', 'load avg 1m'],
  ]);
}

/**
 * The issue's targets in one table, each from the newest result file that measures it, with the
 * commit it was measured on. Profiled bench:http runs are skipped (the sampler slows the pacer).
 */
function resultsTable(): string {
  const out: Row[] = [];
  const add = (what: string, target: string, r: Row | undefined, value: (r: Row) => unknown, where: string): void => {
    out.push(
      r === undefined
        ? { what, target, value: '(not measured)', commit: '', date: '', where }
        : {
            what,
            target,
            value: String(value(r)),
            commit: r.commit ?? '(not recorded)',
            date: shortDate(r),
            load: loadOf(r),
            where: `${where} (${String(r.file)})`,
          },
    );
  };
  const http = results('http-').filter((r) => r.tool === 'wrk' && r.cpuProfiled !== true && r.store === 'memory').at(-1);
  add('HTTP decisions ÷ bare uWS (wrk, median of rounds)', '≥ 0.75', http, (r) => r.ratio, '`npm run bench:http -- --tool wrk`');
  const p99Ratio = (a: unknown, b: unknown): string =>
    typeof a === 'number' && typeof b === 'number' ? `${Math.round((a / b) * 100) / 100} (${a} / ${b} ms)` : '(not measured)';
  add('HTTP client p99 at half the peak ÷ bare uWS p99 same rate, autocannon -R', '≤ 1.3', http, (r) =>
    p99Ratio(r.pacerP99Ms, r.baselineP99MsAtHalfRate), '`npm run bench:http -- --tool wrk`');
  add('the same, open loop (bench/lib/open-loop.ts)', '≤ 1.3', http, (r) =>
    p99Ratio(r.pacerOpenLoopP99MsAtHalfRate, r.baselineOpenLoopP99MsAtHalfRate), '`npm run bench:http -- --tool wrk`');
  const stream = results('stream-').at(-1);
  add('stream ×100 per frame ÷ HTTP, same run', '≥ 5', stream, (r) => r.ratio100, '`npm run bench:stream`');
  const spend = results('spend-redis-').filter((r) => r.outage === null && r.rate === 10_000).at(-1);
  add('spend ack p99 with Redis at 10,000 events/s (client side)', '≤ 5 ms', spend, (r) => `${String(r.ackP99Ms)} ms`, '`npm run bench:spend`');
  const latency = results('latency-').at(-1);
  for (const x of (latency?.rows ?? []) as Row[]) {
    const t = x.transport === 'stream' ? `stream ×${String(x.batch)}` : 'HTTP';
    add(`${t} decisions at ${Math.round(Number(x.fraction) * 100)}% of peak (${String(x.rate)}/s), open loop: p50 / p99 / p99.9`, '—', latency, () =>
      `${String(x.p50Ms)} / ${String(x.p99Ms)} / ${String(x.p999Ms)} ms`, '`npm run bench:latency`');
  }
  const memory = results('memory-');
  const newest = new Map<string, Row>();
  for (const r of memory) newest.set(`${String(r.store)} ${String(r.campaigns)}`, r);
  for (const [key, r] of [...newest].sort()) {
    const [store, n] = key.split(' ');
    const target =
      Number(n) === 1_000_000
        ? '≤ 1,024 B/campaign'
        : Number(n) === 1000
          ? store === 'embedded' ? 'well below 520–924 MB' : '≤ 100 MB'
          : '—';
    add(`memory, ${String(store)}, ${String(n)} campaigns: RSS MB, bytes/campaign`, target, r, (x) =>
      `${String(x.rssMb)} MB, ${String(x.perCampaignBytes)} B${observedText(x) === '—' ? '' : `; without the inspector ${observedText(x)}`}`, '`npm run bench:memory`');
  }
  return table(out, [
    ['what', 'what'],
    ['target', 'target'],
    ['value', 'measured'],
    ['commit', 'commit'],
    ['date', 'date (UTC)'],
    ['load', 'load avg 1m before / after'],
    ['where', 'command (result file)'],
  ]);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) writeTable();
