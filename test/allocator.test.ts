import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { allocatorEnv, missingAllocatorEnv } from '../src/allocator.js';
import { root, startPacer } from './helpers/server.js';

/**
 * The C allocator's setting (src/allocator.ts, ARCHITECTURE.md): `npm start` and the image run the
 * pacer with it, and a pacer started without it says so in its log.
 */
t.test('npm start and the image set the allocator setting the code names', async (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
  for (const [k, v] of Object.entries(allocatorEnv)) {
    t.match(pkg.scripts.start!, new RegExp(`(^|\\s)${k}=${v} node dist/src/main\\.js`), `npm start sets ${k}=${v} for the pacer`);
    t.match(dockerfile, new RegExp(`^\\s*(ENV\\s+)?${k}=${v}(\\s|\\\\|$)`, 'm'), `the image sets ${k}=${v}`);
  }
  t.same(missingAllocatorEnv({ ...allocatorEnv }), []);
  t.same(missingAllocatorEnv({}), Object.entries(allocatorEnv).map(([k, v]) => `${k}=${v}`));
  t.same(missingAllocatorEnv({ MALLOC_MMAP_THRESHOLD_: '1' }), ['MALLOC_MMAP_THRESHOLD_=131072'], 'another value counts as missing');
});

const hint = (stderr: string): Record<string, unknown>[] =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.thread === 'main' && typeof l.msg === 'string' && l.msg.includes('allocator setting'));

t.test('a pacer started without the setting logs what is missing; one started with it does not', { skip: process.platform !== 'linux' && 'glibc only' }, async (t) => {
  const without = await startPacer({ allocatorDefaults: true, env: { PACER_LOG_LEVEL: 'info' } });
  const withIt = await startPacer({ env: { PACER_LOG_LEVEL: 'info' } });
  try {
    const lines = hint(without.stderr());
    t.equal(lines.length, 1, 'one line at startup');
    t.same(lines[0]!.missing, ['MALLOC_MMAP_THRESHOLD_=131072']);
    t.equal(lines[0]!.level, 'info');
    t.same(hint(withIt.stderr()), [], 'nothing when it is set');
  } finally {
    await without.stop();
    await withIt.stop();
  }
});
