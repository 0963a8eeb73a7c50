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
  writeFileSync(readme, text);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) writeTable();
