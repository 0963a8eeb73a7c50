/**
 * Writes the example traffic shapes of the simulator into bench/traffic/ (run from the repository
 * root: `npx tsc -p . && node dist/bench/traffic/generate.js`). Every file comes from a formula
 * below and a fixed seed, never from hand edits, so that regenerating reproduces it byte for byte.
 *
 *   diurnal.csv         hourly, the simulator's built-in curve (peak hour 9× the trough hour)
 *   flat.csv            hourly, the same daily volume spread evenly
 *   office.csv          hourly, a working-hours curve: peak 10:00–11:00 (9× the trough), quiet evenings
 *   late-peak.csv       hourly, a late-evening curve: peak 22:00–23:00 (9× the trough at 06:00–07:00)
 *   diurnal-minute.csv  per minute: the built-in curve with a lunchtime dip, a 30-minute ×2 burst at
 *                       18:00 and ±15% minute-to-minute noise (seeded)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sfc32 } from '../../shards/rng.js';
import { builtinDailyRequests, builtinDiurnal, diurnalLevel, nineToOneHourly } from '../../src/sim/traffic.js';

const dir = join(process.cwd(), 'bench', 'traffic');

function write(name: string, slot: 'hour' | 'minute', values: number[]): void {
  const lines = [`${slot},requests`, ...values.map((v, i) => `${i},${Math.round(v)}`)];
  writeFileSync(join(dir, name), `${lines.join('\n')}\n`);
  const peak = Math.max(...values);
  const trough = Math.min(...values);
  const total = values.reduce((s, x) => s + x, 0);
  process.stdout.write(`${name}: ${values.length} ${slot}s, ${Math.round(total)} requests, peak/trough ${(peak / Math.max(trough, 1)).toFixed(2)}\n`);
}

/** Hour means of a smooth shape rescaled so that trough = 1 and peak = 9, then to the daily volume. */
function hourly(level: (hourOfDay: number) => number): number[] {
  const w = nineToOneHourly(level);
  const total = w.reduce((s, x) => s + x, 0);
  return w.map((x) => (builtinDailyRequests * x) / total);
}

/** A rise over `rise` hours from the low at `low` to the high, then a fall back (half-cosines). */
function asymmetric(low: number, rise: number): (h: number) => number {
  return (hourOfDay) => {
    const u = (((hourOfDay - low) % 24) + 24) % 24;
    return u <= rise ? (1 - Math.cos((Math.PI * u) / rise)) / 2 : (1 + Math.cos((Math.PI * (u - rise)) / (24 - rise))) / 2;
  };
}

write('diurnal.csv', 'hour', builtinDiurnal().requests);
write('flat.csv', 'hour', new Array<number>(24).fill(builtinDailyRequests / 24));
// Office: low at 02:30, up to 10:30 in 8 hours, a long 16-hour decline through the evening.
write('office.csv', 'hour', hourly(asymmetric(2.5, 8)));
// Late peak: low at 06:30, a 16-hour rise to 22:30, down through the night.
write('late-peak.csv', 'hour', hourly(asymmetric(6.5, 16)));

const rng = sfc32(20250604);
const minutes: number[] = [];
for (let m = 0; m < 1440; m++) {
  const h = (m + 0.5) / 60;
  let level = 1 + 8 * diurnalLevel(h);
  if (h >= 12 && h < 13.5) level *= 0.8; // the lunchtime dip
  if (h >= 18 && h < 18.5) level *= 2; // a burst: a sale, a news event
  level *= 0.85 + 0.3 * rng();
  minutes.push(level);
}
const minuteTotal = minutes.reduce((s, x) => s + x, 0);
write('diurnal-minute.csv', 'minute', minutes.map((x) => (builtinDailyRequests * x) / minuteTotal));
