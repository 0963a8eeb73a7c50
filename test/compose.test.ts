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
