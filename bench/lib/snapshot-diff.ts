import { readFileSync } from 'node:fs';
import { type HeapSnapshot, topBySelfSize } from './inspector.js';

/**
 * Where a thread's heap grows per campaign: the self sizes of two heap snapshots of the same thread
 * (bench:memory --snapshots, for example at 0 and at 10,000 campaigns) grouped as in
 * topBySelfSize, and the difference of each group divided by the campaigns between them.
 *
 *   node dist/bench/lib/snapshot-diff.js BEFORE.heapsnapshot AFTER.heapsnapshot CAMPAIGNS
 */
const [beforePath, afterPath, campaignsArg] = process.argv.slice(2);
const campaigns = Number(campaignsArg);
const groups = (p: string): Map<string, { count: number; mb: number }> =>
  new Map(topBySelfSize(JSON.parse(readFileSync(p, 'utf8')) as HeapSnapshot, 100_000).map((g) => [g.group, g]));
const before = groups(beforePath!);
const after = groups(afterPath!);
const rows = [...after].map(([group, a]) => {
  const b = before.get(group) ?? { count: 0, mb: 0 };
  return { group, objectsPerCampaign: (a.count - b.count) / campaigns, bytesPerCampaign: ((a.mb - b.mb) * 1048576) / campaigns };
});
rows.sort((x, y) => y.bytesPerCampaign - x.bytesPerCampaign);
const total = rows.reduce((s, r) => s + r.bytesPerCampaign, 0);
process.stdout.write(`total ${Math.round(total)} bytes per campaign (self sizes)\n`);
for (const r of rows.slice(0, 15)) {
  process.stdout.write(`${String(Math.round(r.bytesPerCampaign)).padStart(6)} B  ${r.objectsPerCampaign.toFixed(2).padStart(6)} objects  ${r.group}\n`);
}
