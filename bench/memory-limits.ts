/**
 * Heap cost of what the client-driven memory limits bound (shards/limits.ts): one remembered event
 * ID (a Set entry of campaignId + '\n' + eventId) and one live reservation (its Map entry and its
 * expiry-queue entry). Run: `npx tsc -p . && node --expose-gc dist/bench/memory-limits.js`; prints
 * one JSON line.
 */
const n = 100_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

function heap(): number {
  gc!();
  return process.memoryUsage().heapUsed;
}

let before = heap();
const remembered = new Set<string>();
for (let i = 0; i < n; i++) remembered.add(`campaign-${i % 100}\n` + `imp-${i.toString(36)}-0123456789abcdef0123456789`);
const perEventId = (heap() - before) / n;

before = heap();
const reservations = new Map<string, { amount: number; expiresAtMs: number }>();
const expiries: { campaign: null; requestId: string; expiresAtMs: number }[] = [];
for (let i = 0; i < n; i++) {
  const requestId = `auction-${i.toString(36)}-0123456789abcdef`;
  reservations.set(requestId, { amount: 1_500, expiresAtMs: 1.7e12 + i });
  expiries.push({ campaign: null, requestId, expiresAtMs: 1.7e12 + i });
}
const perReservation = (heap() - before) / n;

process.stdout.write(
  JSON.stringify({ n, bytesPerRememberedEventId: Math.round(perEventId), bytesPerReservation: Math.round(perReservation), kept: remembered.size + reservations.size + expiries.length }) + '\n',
);
