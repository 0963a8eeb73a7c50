/**
 * Prints a seeded weekly traffic shape (`hourOfWeek,requests`, 168 rows) for `npm run simulate --
 * --traffic`: `npx tsc -p . && node dist/bench/traffic/weekly.js [--seed N] [--daily N] > week.csv`.
 * The shape is drawn from the seed (src/sim/traffic.ts, seededWeeklyCsv), so measurements can run
 * on weekly patterns that no file in the repository holds.
 */
import { seededWeeklyCsv } from '../../src/sim/traffic.js';

let seed = 1;
let daily = 400_000;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const v = Number(argv[i + 1]);
  if (argv[i] === '--seed' && Number.isSafeInteger(v) && v >= 0) seed = v;
  else if (argv[i] === '--daily' && Number.isSafeInteger(v) && v > 0) daily = v;
  else {
    process.stderr.write('usage: node dist/bench/traffic/weekly.js [--seed N (integer ≥ 0)] [--daily N (requests a weekday, integer > 0)]\n');
    process.exit(2);
  }
  i++;
}
process.stdout.write(seededWeeklyCsv(seed, daily));
