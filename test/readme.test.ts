import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { root, startPacer } from './helpers/server.js';

/**
 * The README's curl example, run as printed against a real pacer: only the host ports and the data
 * directory are swapped for the test's own. Each command whose next line is a `# {…}` comment must
 * print JSON that matches it.
 */
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const block = /## Run it[\s\S]*?```sh\n[\s\S]*?```[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme);

t.test('the README example creates a campaign, gets a decision and reports spend as printed', async (t) => {
  t.ok(block, 'README has the example block');
  // The default configuration, as `npm start` runs it: the embedded store, a generated token.
  const pacer = await startPacer({ env: { PACER_ADMIN_TOKEN: '', PACER_STORE: '' } });
  t.teardown(() => pacer.stop());
  t.match(pacer.stdout(), /Admin token \(generated on first start/, 'the first start prints the token');
  const lines = block![1]!.split('\n');
  // Join continued lines, keep comments with the command before them.
  const steps: { cmd: string; expect: string | null }[] = [];
  let current = '';
  for (const line of lines) {
    if (line.startsWith('# {')) {
      const last = steps[steps.length - 1];
      if (last !== undefined) last.expect = line.slice(2);
      continue;
    }
    if (line.startsWith('#') || line.trim() === '') continue;
    current += line.endsWith('\\') ? line.slice(0, -1) : line;
    if (!line.endsWith('\\')) {
      steps.push({ cmd: current, expect: null });
      current = '';
    }
  }
  t.ok(steps.length >= 4, 'the example has its commands');
  const env = { ...process.env };
  let script = '';
  for (const step of steps) {
    const cmd = step.cmd
      .replaceAll('localhost:8080', `127.0.0.1:${pacer.port}`)
      .replaceAll('localhost:9090', `127.0.0.1:${pacer.adminPort}`)
      .replaceAll('data/admin-token', join(pacer.dataDir, 'admin-token'));
    script += `${cmd}\n`;
    if (!cmd.startsWith('curl')) continue;
    const out = execFileSync('bash', ['-c', `set -e\n${script.split('\n').filter((l) => !l.startsWith('curl')).join('\n')}\n${cmd}`], {
      env,
      encoding: 'utf8',
    });
    const got = JSON.parse(out) as Record<string, unknown>;
    t.notOk('error' in got, `${step.cmd.slice(0, 60)}… succeeded`);
    if (step.expect !== null) t.same(got, JSON.parse(step.expect), `${step.cmd.slice(0, 60)}… prints what the README shows`);
  }
});
