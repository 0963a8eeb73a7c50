import { parseArgs } from 'node:util';
import { ConfigInterner } from '../shards/intern.js';
import { strategies } from '../shards/types.js';
import { listPage, type ListQuery, type ListSource, SortedIds } from '../src/admin/catalogue.js';
import { type CampaignRecord, parseCampaign } from '../src/model/campaign.js';
import { CampaignTable } from '../src/model/table.js';
import { gitCommit } from './lib/process.js';
import { loadavg } from 'node:os';

/**
 * node --expose-gc dist/bench/catalogue.js [--campaigns N]
 *
 * The admin catalogue's two representations side by side, in one process: records as objects in a
 * Map (their configurations shared through ConfigInterner: the catalogue before issue 10's
 * columns) and CampaignTable (src/model/table.ts). N campaigns of four strategies (EVEN, ASAP,
 * FRONT_LOADED, ADAPTIVE), a third of them named, a tenth archived. Heap bytes per campaign
 * (process.memoryUsage after gc: heap used plus array buffers, which hold the columns) and CPU
 * time per operation (process.cpuUsage, not wall clock: the machine is shared): one get, one
 * listing page of 25 with no filter, one with strategy CUSTOM (none has it: the page scans
 * listScanMax campaigns, here all of them), one pass over every record (the fleet report's first
 * step: all(), archived and status filtered), one replace. One JSON line.
 */
const { values } = parseArgs({ options: { campaigns: { type: 'string', default: '100000' } } });
const n = Number(values.campaigns);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

const weights = Array.from({ length: 24 }, (_, h) => 1 + (h % 4));
function recordOf(i: number, version = 1): CampaignRecord {
  const strategy = strategies[i % 4]!;
  const config = parseCampaign({
    id: `cat-${String(i).padStart(7, '0')}`,
    ...(i % 3 === 0 ? { name: `Campaign number ${i}` } : {}),
    dailyBudgetMicros: 1_000_000 + i * 17,
    strategy,
    ...(strategy === 'CUSTOM' ? { hourlyWeights: weights } : {}),
    timezone: ['UTC', 'Europe/Paris', 'America/New_York'][i % 3],
  }, version);
  const at = new Date(Date.UTC(2026, 11, 1) + i * 1_000).toISOString();
  return { config: { ...config, archived: i % 10 === 0 }, createdAt: at, updatedAt: at, archivedAt: i % 10 === 0 ? at : null };
}

function heapBytes(): number {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function cpuUs(times: number, f: (i: number) => void): number {
  const a = process.cpuUsage();
  for (let i = 0; i < times; i++) f(i);
  const b = process.cpuUsage(a);
  return +((b.user + b.system) / times).toFixed(3);
}

const query = (over: Partial<ListQuery> = {}): ListQuery => ({ limit: 25, afterId: null, status: null, strategy: null, archived: 'false', q: null, ...over });
let sink = 0;

interface Side {
  get(id: string): CampaignRecord | undefined;
  all(): Iterable<CampaignRecord>;
  set(r: CampaignRecord): void;
  list: ListSource;
}

function measure(make: () => Side): Record<string, number> {
  const ids = new SortedIds();
  const before = heapBytes();
  const side = make();
  for (let i = 0; i < n; i++) side.set(recordOf(i));
  ids.addMany(Array.from({ length: n }, (_, i) => `cat-${String(i).padStart(7, '0')}`));
  const bytes = (heapBytes() - before) / n;
  const probe = (i: number): string => `cat-${String((i * 7_919) % n).padStart(7, '0')}`;
  return {
    bytesPerCampaign: Math.round(bytes),
    getUs: cpuUs(20_000, (i) => (sink += side.get(probe(i))!.config.version)),
    listPageUs: cpuUs(2_000, (i) => (sink += listPage(ids, side.list, query({ afterId: probe(i) })).records.length)),
    listCustomUs: cpuUs(2_000, (i) => (sink += listPage(ids, side.list, query({ afterId: probe(i), strategy: 'CUSTOM' })).records.length)),
    allPassMs: +(cpuUs(5, () => {
      for (const r of side.all()) if (r.archivedAt === null && r.config.status === 'ACTIVE') sink++;
    }) / 1000).toFixed(1),
    replaceUs: cpuUs(20_000, (i) => side.set(recordOf((i * 7_919) % n, 2))),
  };
}

const objects = measure(() => {
  const interner = new ConfigInterner();
  const map = new Map<string, CampaignRecord>();
  return {
    get: (id) => map.get(id),
    all: () => map.values(),
    set: (r) => void map.set(r.config.id, { ...r, config: interner.config(r.config), updatedAt: r.updatedAt === r.createdAt ? r.createdAt : r.updatedAt }),
    list: {
      get: (id) => map.get(id),
      peek: (id) => {
        const r = map.get(id);
        return r === undefined ? undefined : { name: r.config.name, status: r.config.status, strategy: r.config.strategy, archived: r.archivedAt !== null };
      },
    },
  };
});
const table = measure(() => {
  const t = new CampaignTable();
  return { get: (id) => t.get(id), all: () => t.values(), set: (r) => t.set(r), list: t };
});
process.stdout.write(`${JSON.stringify({ campaigns: n, objects, table, commit: gitCommit(), loadAverage1m: +loadavg()[0]!.toFixed(2), sink: sink > 0 })}\n`);
