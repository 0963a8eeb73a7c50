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
type Panel = { type: string; title: string; datasource: { uid: string }; targets: { expr: string }[]; gridPos: { y: number } };
const dashboard = JSON.parse(readFileSync(join(root, 'grafana/dashboards/pacer.json'), 'utf8')) as { uid: string; panels: Panel[] };
/** The panels that query (rows only group them). */
const queryPanels = dashboard.panels.filter((p) => p.type !== 'row');
/** Metric names in a PromQL expression: the pacer's, prom-client's defaults, and Prometheus' own `up`. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:pacer|process|nodejs)_[a-z0-9_]+|up(?=\{))/g)].map((m) => m[1]!);
}

t.test('every dashboard query names metrics the pacer exports', async (t) => {
  const pacer = await startPacer();
  t.teardown(() => pacer.stop());
  await createCampaign(pacer, { id: 'g', dailyBudgetMicros: 1_000_000, strategy: 'ASAP' });
  await post(pacer.url, '/v1/decide', { campaignId: 'g', bidMicros: 5, requestId: 'r' });
  const text = await (await fetch(`${pacer.adminUrl}/metrics`)).text();
  const exported = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) =>
    type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!],
  ));
  exported.add('up');
  t.ok(queryPanels.length >= 8, `${queryPanels.length} panels`);
  for (const panel of queryPanels) {
    t.equal(panel.datasource.uid, 'prometheus', `${panel.title}: the provisioned data source`);
    for (const target of panel.targets) {
      const names = metricNames(target.expr);
      t.ok(names.length > 0, `${panel.title}: the query reads a metric`);
      for (const name of names) t.ok(exported.has(name), `${panel.title}: ${name} is exported`);
    }
  }
});

t.test("a row of panels shows every alert's signal", async (t) => {
  const rules = (parse(readFileSync(join(root, 'prometheus/alerts.yml'), 'utf8')) as { groups: { rules: { alert: string }[] }[] }).groups.flatMap((g) => g.rules);
  const row = dashboard.panels.find((p) => p.type === 'row' && p.title.startsWith("Alerts' signals"));
  t.ok(row, 'the row exists');
  const next = dashboard.panels.find((p) => p.type === 'row' && p.gridPos.y > row!.gridPos.y);
  const inRow = queryPanels.filter((p) => p.gridPos.y > row!.gridPos.y && (next === undefined || p.gridPos.y < next.gridPos.y));
  for (const rule of rules) {
    t.ok(inRow.some((p) => p.title.includes(rule.alert)), `${rule.alert} has a panel in the row`);
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
