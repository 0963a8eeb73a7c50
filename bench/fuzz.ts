import fc from 'fast-check';
import { families } from '../test/fuzz/families.js';
import { type Failure, type Family, runCase, runFamily, showInput, Target } from '../test/fuzz/harness.js';

/**
 * `npm run fuzz -- --duration S [--seed N] [--family NAME]`: the fuzz suite's generators
 * (test/fuzz/generators.ts) against a freshly started pacer for S seconds. Each failure is printed
 * as one JSON line with its family, seed and index (fc.sample(arbitrary, { seed, numRuns }) with
 * that seed yields the case again at that index), then one summary line `{cases, failures, seed}`.
 * Exits 1 when anything failed. `--family NAME --seed SEED --index I` replays one case.
 */
function arg(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

/** Cases of one family per round before the next family's turn, and the most time a round takes
 * (a family whose cases time out must not starve the others). */
const roundCases = 50;
const roundMsMax = 5_000;

async function main(): Promise<void> {
  const durationS = Number(arg('duration') ?? 60);
  const seed = Number(arg('seed') ?? Date.now() % 2 ** 31);
  const only = arg('family');
  if (!Number.isFinite(durationS) || durationS <= 0 || !Number.isSafeInteger(seed)) {
    throw new Error('usage: npm run fuzz -- --duration SECONDS [--seed INTEGER] [--family NAME]');
  }
  const target = new Target();
  await target.start();
  const { all, close } = families(target);
  const chosen = Object.values(all).filter((f) => only === undefined || f.name === only);
  if (chosen.length === 0) throw new Error(`no family ${only}; families: ${Object.keys(all).join(', ')}`);
  const index = arg('index');
  if (index !== undefined) return replay(target, chosen, seed, Number(index), close);
  const deadline = Date.now() + durationS * 1000;
  const failures: Failure[] = [];
  let cases = 0;
  for (let round = 0; Date.now() < deadline; round++) {
    for (const family of chosen) {
      const roundEnd = Math.min(deadline, Date.now() + roundMsMax);
      // Each round of a family has its own seed, derived from the run's, so every case replays alone.
      cases += await runFamily(target, family, seed + round, roundCases, (f) => {
        failures.push(f);
        console.log(JSON.stringify(f));
      }, () => Date.now() < roundEnd);
    }
  }
  close();
  await target.stop();
  console.log(JSON.stringify({ cases, failures: failures.length, seed, restarts: target.restarts }));
  process.exitCode = failures.length > 0 ? 1 : 0;
}

/** `--family NAME --seed SEED --index I`: runs that one case again and prints what it found. */
async function replay(target: Target, chosen: Family<unknown>[], seed: number, index: number, close: () => void): Promise<void> {
  const family = chosen.length === 1 ? chosen[0]! : undefined;
  if (family === undefined || !Number.isSafeInteger(index) || index < 0) throw new Error('--index needs --family NAME and --seed SEED');
  const c = fc.sample(family.arbitrary, { seed, numRuns: index + 1 })[index];
  const problem = await runCase(target, family, c, { snap: await target.snapshot(family.campaign) });
  close();
  await target.stop();
  console.log(JSON.stringify({ family: family.name, seed, index, description: family.describe(c), input: showInput(c), problem }));
  process.exitCode = problem === null ? 0 : 1;
}

await main();
