import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { root } from './helpers/server.js';

/**
 * The alert rules, checked by Prometheus' own tools (Debian package `prometheus` brings promtool;
 * `prometheus-alertmanager` brings amtool; .ci/run installs both): the rules parse, their unit
 * tests pass, prometheus.yml loads them, Alertmanager accepts its configuration, and every alert
 * carries what the on-call person needs (a `for`, a severity, a summary, a description and a
 * runbook section that exists in docs/operations.md).
 */
type Rule = { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
const rulesFile = join(root, 'prometheus/alerts.yml');
const rules = (parse(readFileSync(rulesFile, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

function run(tool: string, args: string[]): { status: number | null; output: string; missing: boolean } {
  const r = spawnSync(tool, args, { cwd: root, encoding: 'utf8' });
  const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}`, missing };
}

t.test('promtool accepts the alert rules', async (t) => {
  const r = run('promtool', ['check', 'rules', rulesFile]);
  t.notOk(r.missing, 'promtool is installed (apt-get install prometheus)');
  t.equal(r.status, 0, r.output);
  t.match(r.output, new RegExp(`SUCCESS: ${rules.length} rules found`));
});

t.test('the alert unit tests pass, with a quiet and a firing evaluation for every alert', async (t) => {
  const testsFile = join(root, 'prometheus/alerts.test.yml');
  const spec = parse(readFileSync(testsFile, 'utf8')) as {
    tests: { name: string; alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
  };
  for (const rule of rules) {
    const evals = spec.tests.flatMap((x) => x.alert_rule_test).filter((e) => e.alertname === rule.alert);
    t.ok(evals.some((e) => e.exp_alerts.length === 0), `${rule.alert}: a case where it stays quiet`);
    t.ok(evals.some((e) => e.exp_alerts.length > 0), `${rule.alert}: a case where it fires`);
  }
  const r = run('promtool', ['test', 'rules', testsFile]);
  t.notOk(r.missing, 'promtool is installed');
  t.equal(r.status, 0, r.output);
  t.match(r.output, /SUCCESS/);
});

t.test('every alert waits, has a severity, says what happened and what to do, and has a runbook section', async (t) => {
  const ops = readFileSync(join(root, 'docs/operations.md'), 'utf8');
  const anchors = new Set([...ops.matchAll(/^#+ (.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));
  t.ok(rules.length >= 10, `${rules.length} alerts`);
  for (const rule of rules) {
    t.match(rule.for, /^\d+[smh]$/, `${rule.alert} has a for`);
    t.match(rule.labels?.severity, /^(critical|warning)$/, `${rule.alert} has a severity`);
    t.ok((rule.annotations?.summary ?? '').length > 10, `${rule.alert} has a summary`);
    t.ok((rule.annotations?.description ?? '').length > 80, `${rule.alert} has a description that says what to do`);
    const runbook = rule.annotations?.runbook ?? '';
    t.equal(runbook, `docs/operations.md#${rule.alert.toLowerCase()}`, `${rule.alert} links its runbook`);
    t.ok(anchors.has(rule.alert.toLowerCase()), `docs/operations.md has a section ${rule.alert}`);
  }
});

t.test('prometheus.yml loads the alert rules and sends alerts to the Alertmanager of docker-compose.yml', async (t) => {
  const file = join(root, 'prometheus/prometheus.yml');
  const config = parse(readFileSync(file, 'utf8')) as {
    rule_files: string[];
    alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
  };
  t.same(config.rule_files, ['alerts.yml'], 'the rules file, next to prometheus.yml');
  t.ok(existsSync(join(root, 'prometheus', config.rule_files[0]!)), 'the rules path resolves');
  t.same(config.alerting.alertmanagers[0]!.static_configs[0]!.targets, ['alertmanager:9093']);
  const r = run('promtool', ['check', 'config', file]);
  t.notOk(r.missing, 'promtool is installed');
  t.equal(r.status, 0, r.output);
  t.match(r.output, /SUCCESS: 1 rule files found/);
  t.match(r.output, new RegExp(`SUCCESS: ${rules.length} rules found`), 'promtool found the rules through prometheus.yml');
});

t.test('amtool accepts the Alertmanager configuration', async (t) => {
  const r = run('amtool', ['check-config', join(root, 'prometheus/alertmanager.yml')]);
  if (r.missing && process.env.CI !== 'true') {
    t.comment('amtool is not installed (apt-get install prometheus-alertmanager); .ci/run installs it');
    t.pass('skipped outside CI');
    return;
  }
  t.notOk(r.missing, 'amtool is installed (CI=true)');
  t.equal(r.status, 0, r.output);
  t.match(r.output, /SUCCESS/);
});
