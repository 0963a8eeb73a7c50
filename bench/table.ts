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
      results('http-').map((r) => ({ ...r, date: String(r.date).slice(0, 16).replace('T', ' ') })),
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
  writeFileSync(readme, text);
}

const shortDate = (r: Row): string => String(r.date).slice(0, 16).replace('T', ' ');

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

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) writeTable();
