import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { createCampaign, post, root, startPacer } from './helpers/server.js';

/**
 * No Grafana runs here: the dashboard is checked as data. Every query must name only metrics the
 * running pacer exports, and the provisioning must point at the dashboard and the data source that
 * docker-compose.yml sets up.
 */
const dashboard = JSON.parse(readFileSync(join(root, 'grafana/dashboards/pacer.json'), 'utf8')) as {
  uid: string;
  panels: { title: string; datasource: { uid: string }; targets: { expr: string }[] }[];
};

t.test('every dashboard query names metrics the pacer exports', async (t) => {
  const pacer = await startPacer();
  t.teardown(() => pacer.stop());
  await createCampaign(pacer, { id: 'g', dailyBudgetMicros: 1_000_000, strategy: 'ASAP' });
  await post(pacer.url, '/v1/decide', { campaignId: 'g', bidMicros: 5, requestId: 'r' });
  const text = await (await fetch(`${pacer.adminUrl}/metrics`)).text();
  const exported = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) =>
    type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!],
  ));
  t.ok(dashboard.panels.length >= 8, `${dashboard.panels.length} panels`);
  for (const panel of dashboard.panels) {
    t.equal(panel.datasource.uid, 'prometheus', `${panel.title}: the provisioned data source`);
    for (const target of panel.targets) {
      const names = [...target.expr.matchAll(/\b(pacer_[a-z0-9_]+)/g)].map((m) => m[1]!);
      t.ok(names.length > 0, `${panel.title}: the query reads a pacer metric`);
      for (const name of names) t.ok(exported.has(name), `${panel.title}: ${name} is exported`);
    }
  }
});

t.test('provisioning and docker-compose wire Prometheus, Grafana and the dashboard together', async (t) => {
  const ds = parse(readFileSync(join(root, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
    datasources: { uid: string; url: string }[];
  };
  t.equal(ds.datasources[0]!.uid, 'prometheus');
  t.equal(ds.datasources[0]!.url, 'http://prometheus:9090');
  const prov = parse(readFileSync(join(root, 'grafana/provisioning/dashboards/pacer.yml'), 'utf8')) as {
    providers: { options: { path: string } }[];
  };
  const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as {
    services: Record<string, { volumes?: string[] }>;
  };
  const grafanaVolumes = compose.services.grafana!.volumes!.join(' ');
  t.ok(grafanaVolumes.includes(`./grafana/dashboards:${prov.providers[0]!.options.path}`), 'the dashboards folder is mounted where provisioning looks');
  const scrape = parse(readFileSync(join(root, 'prometheus/prometheus.yml'), 'utf8')) as {
    scrape_configs: { metrics_path: string; static_configs: { targets: string[] }[] }[];
  };
  t.equal(scrape.scrape_configs[0]!.metrics_path, '/metrics');
  t.same(scrape.scrape_configs[0]!.static_configs[0]!.targets, ['pacer:9090'], 'Prometheus scrapes the admin port');
  t.ok(compose.services.prometheus!.volumes!.join(' ').includes('./prometheus/prometheus.yml'));
});
