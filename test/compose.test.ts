import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse } from 'yaml';
import { root } from './helpers/server.js';

/**
 * docker-compose.yml, checked as data (no Docker engine runs here), and with `docker-compose config
 * -q` when the Debian docker-compose package is installed.
 */
type Service = {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
};
const file = join(root, 'docker-compose.yml');
const compose = parse(readFileSync(file, 'utf8')) as { services: Record<string, Service> };

t.test('redis keeps an append-only file synced every second, and reports its health', async (t) => {
  const redis = compose.services.redis!;
  t.match(redis.image, /^redis:7/);
  const cmd = redis.command!.join(' ');
  t.match(cmd, /--appendonly yes/);
  t.match(cmd, /--appendfsync everysec/);
  t.ok(redis.healthcheck?.test.includes('redis-cli'), 'health check pings Redis');
});

t.test('postgres is version 15 with a health check', async (t) => {
  const pg = compose.services.postgres!;
  t.match(pg.image, /^postgres:15/);
  t.match(pg.healthcheck?.test.join(' '), /pg_isready/);
});

t.test('the pacer is built here, waits for healthy stores and is configured for them', async (t) => {
  const pacer = compose.services.pacer!;
  t.ok(pacer.build !== undefined && existsSync(join(root, 'Dockerfile')), 'built from the Dockerfile');
  t.same(pacer.depends_on, { redis: { condition: 'service_healthy' }, postgres: { condition: 'service_healthy' } });
  const env = pacer.environment!;
  t.match(env.PACER_REDIS_URL, /^redis:\/\/redis:6379/);
  const pg = compose.services.postgres!;
  const db = pg.environment as Record<string, string>;
  t.equal(env.PACER_DATABASE_URL, `postgres://${db.POSTGRES_USER}:${db.POSTGRES_PASSWORD}@postgres:5432/${db.POSTGRES_DB}`);
  t.ok(env.PACER_DATA_DIR, 'the spool has a volume');
  t.match(pacer.healthcheck?.test.join(' '), /readyz/);
});

const dockerCompose = ['/usr/bin/docker-compose', '/usr/local/bin/docker-compose'].find((p) => existsSync(p));
t.test('docker-compose accepts the file', async (t) => {
  if (dockerCompose === undefined) {
    // .ci/run installs Debian's docker-compose, so under CI its absence is a failure.
    t.not(process.env.CI, 'true', 'docker-compose is installed under CI=true (apt-get install -y docker-compose)');
    t.comment('docker-compose is not installed (apt-get install -y docker-compose); checked as data only');
    t.ok(Object.keys(compose.services).length >= 3, 'the file parses and has its services');
    return;
  }
  const { stderr } = await promisify(execFile)(dockerCompose, ['-f', file, 'config', '-q'], { cwd: root });
  t.equal(stderr.trim(), '', 'docker-compose config -q passes without a warning');
});

t.test('Prometheus mounts its rules next to its configuration, and Alertmanager gets its own', async (t) => {
  const prometheus = compose.services.prometheus as Service & { volumes: string[]; depends_on: string[] };
  t.ok(prometheus.volumes.includes('./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro'), 'alerts.yml beside prometheus.yml');
  t.ok(prometheus.depends_on.includes('alertmanager'));
  const am = compose.services.alertmanager as Service & { volumes: string[]; ports: string[] };
  t.match(am.image, /^prom\/alertmanager:/);
  t.ok(am.volumes.includes('./prometheus/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro'));
  t.match(am.command?.join(' '), /--config\.file=\/etc\/alertmanager\/alertmanager\.yml/);
  t.same(am.ports, ['9093:9093']);
});

t.test('profile scale: three pacer instances on the shared stores, behind HAProxy checking /readyz', async (t) => {
  const svc = compose.services as Record<string, Service & { profiles?: string[]; volumes?: string[]; ports?: string[] }>;
  const names = ['pacer-1', 'pacer-2', 'pacer-3'];
  for (const name of names) {
    const p = svc[name]!;
    t.same(p.profiles, ['scale'], `${name} runs only with --profile scale`);
    t.same(p.depends_on, { redis: { condition: 'service_healthy' }, postgres: { condition: 'service_healthy' } });
    t.equal(p.environment!.PACER_REDIS_URL, svc.pacer!.environment!.PACER_REDIS_URL, `${name} shares the Redis`);
    t.equal(p.environment!.PACER_DATABASE_URL, svc.pacer!.environment!.PACER_DATABASE_URL, `${name} shares the PostgreSQL`);
    t.match(p.environment!.PACER_ADMIN_TOKEN, /PACER_ADMIN_TOKEN/, `${name} takes the shared admin token from the environment`);
    t.match(p.healthcheck?.test.join(' '), /readyz/);
    t.equal(p.volumes?.length, 1, `${name} has its own data volume (its spool)`);
  }
  t.equal(new Set(names.map((n) => svc[n]!.volumes![0])).size, 3, 'three different spool volumes');
  const lb = svc.haproxy!;
  t.same(lb.profiles, ['scale']);
  t.match(lb.image, /^haproxy:2\.6/);
  t.ok(lb.volumes?.includes('./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro'));
  const cfg = readFileSync(join(root, 'deploy/haproxy.cfg'), 'utf8');
  t.match(cfg, /option httpchk GET \/readyz/, 'HAProxy checks /readyz');
  for (const name of names) t.match(cfg, new RegExp(`server ${name} ${name}:8080`), `${name} is behind the hot-path frontend`);
  t.match(cfg, /balance hash req\.body,json_query\('\$\.campaignId'\)/, 'a campaign stays on one instance (leases are not wired)');
});

const haproxy = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy'].find((p) => existsSync(p));
t.test('haproxy accepts deploy/haproxy.cfg', async (t) => {
  if (haproxy === undefined) {
    t.not(process.env.CI, 'true', 'haproxy is installed under CI=true (apt-get install -y haproxy)');
    t.comment('haproxy is not installed (apt-get install -y haproxy); checked as text only');
    return;
  }
  const out = await promisify(execFile)(haproxy, ['-c', '-f', join(root, 'deploy/haproxy.cfg')]).catch((err: { stdout: string; stderr: string }) => {
    t.fail(`haproxy -c failed:\n${err.stderr}`);
    return err;
  });
  t.match(out.stdout, /Configuration file is valid/);
  // Outside Docker the pacers' names do not resolve; that is the only warning allowed.
  const warnings = out.stderr.split('\n').filter((l) => l.includes('[WARNING]'));
  t.ok(warnings.every((l) => /could not resolve address 'pacer-\d'/.test(l)), warnings.join('\n') || 'no warnings');
});
