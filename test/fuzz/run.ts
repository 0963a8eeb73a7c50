import type { Test } from 'tap';
import { families } from './families.js';
import { type Failure, runFamily, Target } from './harness.js';

/**
 * What each fuzz test file does: start one pacer for the file, run a fixed number of cases of each
 * named family from a fixed seed, and assert that none failed. A failing case prints its family,
 * seed and index, which replay it (`npm run fuzz -- --family NAME --seed SEED`, or fc.sample).
 */
export interface Plan {
  family: string;
  seed: number;
  cases: number;
  /** Set while a known bug, fixed on another branch, still makes this family fail: its name. */
  todo?: string;
}

export async function fuzzFile(t: Test, plans: Plan[]): Promise<void> {
  const target = new Target();
  await target.start();
  const { all, close } = families(target);
  t.teardown(async () => {
    close();
    await target.stop();
  });
  for (const plan of plans) {
    const family = all[plan.family];
    if (family === undefined) throw new Error(`no fuzz family ${plan.family}`);
    const name = `${plan.cases} ${plan.family} from seed ${plan.seed} are each answered with a code, change nothing when refused and leave the pacer up`;
    await t.test(name, plan.todo === undefined ? {} : { todo: plan.todo }, async (t) => {
      const failures: Failure[] = [];
      const ran = await runFamily(target, family, plan.seed, plan.cases, (f) => failures.push(f));
      t.equal(ran, plan.cases, 'every case ran');
      t.same(failures.map((f) => `#${f.index} ${f.description}: ${f.problem.slice(0, 300)} <- ${f.input.slice(0, 300)}`), [], 'no case failed');
      t.ok(target.rssGrowthMb() <= 300, `resident memory grew ${target.rssGrowthMb().toFixed(0)} MiB`);
    });
  }
}
