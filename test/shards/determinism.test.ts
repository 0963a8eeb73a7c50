import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

/**
 * The data plane takes its clock and its randomness from ports, so a simulated day replays from
 * its seed (STYLE.md habit 3). This test reads every TypeScript file under shards/ and fails on
 * any call that reads the wall clock or an unseeded generator.
 */
const root = fileURLToPath(new URL('../../shards', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

const banned: [RegExp, string][] = [
  [/\bDate\.now\s*\(/, 'Date.now()'],
  [/\bperformance\.now\s*\(/, 'performance.now()'],
  [/\bMath\.random\s*\(/, 'Math.random()'],
  [/\bnew\s+Date\s*\(\s*\)/, 'new Date() without an argument'],
  [/\bprocess\.hrtime\b/, 'process.hrtime'],
  [/\bcrypto\.(randomBytes|randomUUID|getRandomValues)\b/, 'crypto randomness'],
];

t.test('no file in shards/ reads the wall clock or an unseeded random generator', async (t) => {
  const all = files(root);
  t.ok(all.length >= 15, `found the shard sources (${all.length} files)`);
  t.ok(all.some((f) => f.endsWith(join('pacing', 'controller.ts'))), 'the scan reaches shards/pacing/');
  const found: string[] = [];
  for (const file of all) {
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, '');
      if (/^\s*\*/.test(code)) return; // comment blocks may name the banned calls
      for (const [re, what] of banned) if (re.test(code)) found.push(`${file}:${i + 1}: ${what}`);
    });
  }
  t.same(found, [], 'banned calls in shards/');
});

t.test('the scan itself recognises each banned call', async (t) => {
  for (const sample of ['const t = Date.now();', 'performance.now()', 'x = Math.random() * 2', 'new Date()']) {
    t.ok(banned.some(([re]) => re.test(sample)), sample);
  }
  t.notOk(banned.some(([re]) => re.test('new Date(atMs).toISOString()')), 'formatting a given instant is allowed');
});
