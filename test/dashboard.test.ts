import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { chromium, type Browser, type Page } from 'playwright-core';
import { rawRequest } from './helpers/admin-client.js';
import { checkResponse } from './helpers/openapi.js';
import { adminToken, auth, createCampaign, get, type Pacer, post, root, startPacer, status } from './helpers/server.js';

/**
 * The dashboard (README.md, "Dashboard") in a real browser: Debian's chromium, headless, driven by
 * playwright-core, against a real pacer started by the test. It signs in, reads the fleet table,
 * opens a campaign, sees hot-path spend arrive on the chart and the figures without a reload,
 * changes the budget from the page and finds it in the audit trail, and gets the API's validation
 * errors next to the fields. It saves screenshots; `UPDATE_SCREENSHOTS=1` writes them to
 * docs/screenshots/ (the ones README.md shows), otherwise to dist/screenshots/.
 */

// The callbacks given to page.evaluate and waitForFunction run in the browser, where these exist;
// the project compiles without the DOM library, so they are declared for the type-checker only.
declare const document: any;
declare const sessionStorage: any;
declare const localStorage: any;
declare const window: any;
type HTMLElement = any;

// A browser, two pacers and a few hundred requests: more than .taprc's 180 s on a loaded machine.
t.setTimeout(400_000);

const chromiumPath = process.env.PACER_TEST_CHROMIUM ?? '/usr/bin/chromium';
const shotDir = process.env.UPDATE_SCREENSHOTS === '1' ? join(root, 'docs', 'screenshots') : join(root, 'dist', 'screenshots');

/** One pacer for the subtests that need no browser; the browser's has a fleet of its own. */
let plain: Pacer | null = null;
async function plainPacer(_t: unknown): Promise<Pacer> {
  plain ??= await startPacer();
  return plain;
}
t.teardown(() => plain?.stop());

t.test('the static routes answer without a token, with their types and a strict CSP', async (t) => {
  const pacer = await plainPacer(t);
  for (const [path, type] of [
    ['/', /^text\/html/],
    ['/dashboard/app.js', /^text\/javascript/],
    ['/dashboard/style.css', /^text\/css/],
    ['/dashboard/chart.umd.js', /^text\/javascript/],
  ] as const) {
    const r = await fetch(pacer.adminUrl + path);
    const body = await r.text();
    t.equal(r.status, 200, `${path} answers 200 without a token`);
    t.match(r.headers.get('content-type'), type, `${path} content-type`);
    t.match(r.headers.get('content-security-policy'), /^default-src 'self'/, `${path} CSP`);
    t.equal(r.headers.get('cache-control'), 'no-cache', `${path} cache-control`);
    t.ok(body.length > 100, `${path} has a body`);
    checkResponse('GET', path, r.status, body);
    const again = await fetch(pacer.adminUrl + path, { headers: { 'if-none-match': r.headers.get('etag')! } });
    t.equal(again.status, 304, `${path} revalidates with its ETag`);
    checkResponse('GET', path, again.status, null);
  }
  const chart = await (await fetch(`${pacer.adminUrl}/dashboard/chart.umd.js`)).text();
  t.match(chart, /Chart\.js v4\./, 'Chart.js 4 is served from node_modules');
  const page = await (await fetch(`${pacer.adminUrl}/`)).text();
  t.notMatch(page, /https?:\/\//, 'the page loads nothing from another host');
  t.notMatch(page, /<script>|<style>|style="/, 'no inline script or style (the CSP forbids them)');
});

t.test('unknown static paths answer the JSON 404, and no path reads a file outside the shipped ones', async (t) => {
  const pacer = await plainPacer(t);
  const missing = await get(pacer.adminUrl, '/dashboard/missing.js');
  t.equal(missing.status, 404);
  t.equal(missing.body.error.code, 'NOT_FOUND');
  const wrongMethod = await post(pacer.adminUrl, '/dashboard/app.js', {});
  t.equal(wrongMethod.status, 405, 'a served path with another method is 405');
  // Sent raw, so no client normalises the path first.
  for (const target of [
    '/dashboard/../package.json',
    '/dashboard/%2e%2e/package.json',
    '/dashboard/..%2fpackage.json',
    '/dashboard/%2e%2e%2fpackage.json',
    '/dashboard/..%5cpackage.json',
    '/dashboard/app.js/../../package.json',
    '/dashboard//../../package.json',
    '/../package.json',
    '/%2e%2e/package.json',
    '/dashboard/../dashboard/../../package.json',
    '/dashboard/..;/package.json',
    '/dashboard/%252e%252e/package.json',
    '/dashboard/../node_modules/chart.js/package.json',
    '/dashboard/../src/admin/dashboard.ts',
    '/dashboard/index.html/..',
    '/dashboard/.%2e/data/admin-token',
  ]) {
    const { text } = await rawRequest(pacer.adminPort, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
    t.match(text, /^HTTP\/1\.1 404 /, `${target} is 404`);
    t.match(text, /"code":"NOT_FOUND"/, `${target} answers the JSON error`);
    t.notMatch(text, /"name":\s*"budget-pacer"|"version":|import |test-admin-token/, `${target} reads no file`);
  }
});

t.test('the fleet report takes the listing\'s filters (the fleet page uses them)', async (t) => {
  const pacer = await plainPacer(t);
  await createCampaign(pacer, { id: 'eu-shoes', name: 'Shoes EU', dailyBudgetMicros: 5_000_000, strategy: 'EVEN' });
  await createCampaign(pacer, { id: 'us-shoes', name: 'Shoes US', dailyBudgetMicros: 5_000_000, strategy: 'ASAP', status: 'PAUSED' });
  await createCampaign(pacer, { id: 'us-hats', name: 'Hats US', dailyBudgetMicros: 5_000_000, strategy: 'EVEN' });
  const day = new Date().toISOString().slice(0, 10);
  const ids = async (query: string) => {
    const r = await get(pacer.adminUrl, `/v1/report?day=${day}${query}`, auth);
    t.equal(r.status, 200, query);
    return r.body.campaigns.map((c: { campaignId: string }) => c.campaignId).sort();
  };
  t.same(await ids(''), ['eu-shoes', 'us-hats', 'us-shoes']);
  t.same(await ids('&q=us-'), ['us-hats', 'us-shoes'], 'q: an id prefix');
  t.same(await ids('&q=Shoes'), ['eu-shoes', 'us-shoes'], 'q: a name prefix');
  t.same(await ids('&status=PAUSED'), ['us-shoes']);
  t.same(await ids('&strategy=EVEN&status=ACTIVE'), ['eu-shoes', 'us-hats']);
  for (const bad of ['&status=paused', '&strategy=SLOW', `&q=${'x'.repeat(201)}`]) {
    const r = await get(pacer.adminUrl, `/v1/report?day=${day}${bad}`, auth);
    t.equal(r.status, 400, bad.slice(0, 30));
    t.equal(r.body.error.code, 'INVALID_FIELD');
  }
  // The fleet row's figures are the day report's (src/sim/metrics.ts), also for a campaign with spend.
  await post(pacer.url, '/v1/spend', { campaignId: 'eu-shoes', eventId: 'fleet-1', amountMicros: 1_234_567 });
  await post(pacer.url, '/v1/spend', { campaignId: 'us-hats', eventId: 'fleet-2', amountMicros: 4_000_000 });
  const row = async (id: string) => (await get(pacer.adminUrl, `/v1/report?day=${day}&q=${id}`, auth)).body.campaigns[0];
  for (let i = 0; i < 100 && ((await row('eu-shoes')).spentMicros === 0 || (await row('us-hats')).spentMicros === 0); i++) await new Promise((r) => setTimeout(r, 100));
  for (const id of ['eu-shoes', 'us-hats', 'us-shoes']) {
    const fleetRow = await row(id);
    const dayReport = (await get(pacer.adminUrl, `/v1/campaigns/${id}/report?day=${day}`, auth)).body;
    t.match(fleetRow, { budgetMicros: dayReport.budgetMicros, spentMicros: dayReport.spentMicros, deliveryRatio: dayReport.deliveryRatio, slotNrmse: dayReport.slotNrmse }, `${id}: the fleet row has the day report's figures`);
  }
  t.equal((await row('us-hats')).spentMicros, 4_000_000);
  // Paging a filtered report: the cursor continues the filtered order.
  const first = await get(pacer.adminUrl, `/v1/report?day=${day}&q=us-&limit=1`, auth);
  const second = await get(pacer.adminUrl, `/v1/report?day=${day}&q=us-&limit=1&cursor=${first.body.nextCursor}`, auth);
  t.equal(second.body.nextCursor, null);
  t.same([first.body.campaigns[0].campaignId, second.body.campaigns[0].campaignId].sort(), ['us-hats', 'us-shoes']);
});

/** Realistic campaigns for the fleet table and the screenshots: [id, name, budget units, share spent, extra]. */
const fleet: [string, string, number, number, Record<string, unknown>][] = [
  ['acme-winter-sale', 'Acme Shoes · Winter Sale', 1_200, 0.42, {}],
  ['northwind-retarget', 'Northwind · Retargeting EU', 800, 0.6, { timezone: 'Europe/Berlin' }],
  ['globex-brand-us', 'Globex · Brand Awareness US', 2_500, 0.18, { timezone: 'America/New_York', strategy: 'FRONT_LOADED' }],
  ['initech-app-installs', 'Initech · App Installs', 600, 0.965, {}],
  ['umbrella-launch', 'Umbrella · Product Launch', 5_000, 0.55, { strategy: 'ASAP' }],
  ['hooli-search', 'Hooli · Search Prospecting', 1_500, 0.6, {}],
  ['stark-holiday', 'Stark Outdoor · Holiday Push', 3_000, 0.31, { strategy: 'AHEAD', aheadPercent: 15 }],
  ['wayne-video', 'Wayne Media · Video Views', 950, 0.64, { timezone: 'America/Los_Angeles' }],
  ['soylent-promo', 'Soylent · Spring Promo', 400, 0.05, { status: 'PAUSED' }],
  ['vandelay-imports', 'Vandelay · Imports B2B', 700, 0.6, {}],
];

async function spend(pacer: Pacer, campaignId: string, amountMicros: number, eventId: string): Promise<void> {
  const r = await post(pacer.url, '/v1/spend', { campaignId, eventId, amountMicros });
  if (r.status !== 200) throw new Error(`spend failed: ${r.status} ${JSON.stringify(r.body)}`);
}

/**
 * The seed spends each campaign's share at once, which the breaker's velocity trip (default: 10×
 * the plan's rate over a minute) would take for a runaway; a higher multiple keeps the table
 * realistic. Initech spends 96.5% and trips on the 95% fraction, as it should.
 */
const breaker = { velocityMultiple: 1_000 };

/** Decisions on the hot path until stopped, so the header's decisions per second has something to show. */
function traffic(pacer: Pacer): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) await post(pacer.url, '/v1/decide', { campaignId: fleet[i % fleet.length]![0] });
  })();
  return async () => {
    running = false;
    await loop;
  };
}

async function seed(pacer: Pacer): Promise<void> {
  for (const [id, name, units, share, extra] of fleet) {
    await createCampaign(pacer, { id, name, dailyBudgetMicros: units * 1_000_000, strategy: 'EVEN', breaker, ...extra });
    // A few wins and decisions each, so spend, pacing index and the decisions chart have figures.
    const total = Math.round(units * share * 1_000_000);
    for (let i = 0; i < 4; i++) await spend(pacer, id, Math.floor(total / 4), `${id}-seed-${i}`);
    for (let i = 0; i < 20; i++) await post(pacer.url, '/v1/decide', { campaignId: id, bidMicros: 2_000_000, requestId: `${id}-req-${i}` });
  }
  // More than one page of 25: paging has something to page through.
  for (let i = 1; i <= 20; i++) {
    const id = `longtail-${String(i).padStart(2, '0')}`;
    await createCampaign(pacer, { id, name: `Long Tail Network ${i}`, dailyBudgetMicros: (100 + 10 * i) * 1_000_000, strategy: 'EVEN', breaker });
    await spend(pacer, id, (20 + i) * 1_000_000, `${id}-seed`);
  }
}

t.test('the dashboard in Debian chromium: sign in, fleet, live campaign page, actions', async (t) => {
  if (!existsSync(chromiumPath)) {
    t.fail(`no browser at ${chromiumPath}: install Debian's package chromium (.ci/run does), or set PACER_TEST_CHROMIUM`);
    return;
  }
  const pacer = await startPacer({ env: { PACER_HISTORY_FLUSH_MS: '200' } });
  t.teardown(() => pacer.stop());
  await seed(pacer);

  const browser: Browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const page: Page = await browser.newPage({ viewport: { width: 1440, height: 1000 }, deviceScaleFactor: 1 });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // The API's refusals this test provokes (a wrong token, validation errors, a stale If-Match)
    // are logged by the browser as failed loads; anything else, CSP violations included, is a problem.
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of (400|403|412) /.test(m.text())) {
      problems.push(`console error: ${m.text()}`);
    }
  });
  mkdirSync(shotDir, { recursive: true });
  const base = pacer.adminUrl;

  await t.test('it asks for the token, refuses a wrong one, and keeps the right one in sessionStorage', async (t) => {
    await page.goto(`${base}/`);
    await page.waitForSelector('#login');
    await page.fill('#token', 'not-the-token-0000000000');
    await page.click('#login button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#login-error')?.textContent !== '');
    t.match(await page.textContent('#login-error'), /not the admin token/);
    await page.fill('#token', adminToken);
    await page.fill('#actor', 'dana');
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#fleet-rows tr[data-id]');
    t.equal(await page.evaluate(() => sessionStorage.getItem('pacer.adminToken')), adminToken);
    t.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
  });

  await t.test('the fleet table: worst off plan first, as the fleet report orders it, with live figures', async (t) => {
    const day = await page.inputValue('#filter-day');
    const report = await get(base, `/v1/report?day=${day}&limit=25`, auth);
    t.equal(report.status, 200);
    const ids = await page.$$eval('#fleet-rows tr[data-id]', (rows) => rows.map((r) => (r as HTMLElement).dataset.id));
    t.same(ids, report.body.campaigns.map((c: { campaignId: string }) => c.campaignId), 'the page shows the report\'s first page in its order');
    t.equal(ids.length, 25, 'one page of 25');
    // The live feed fills in each row's status: the spent figure is the shard's settled spend.
    const st = await status(pacer, 'acme-winter-sale');
    await page.waitForFunction(() => document.querySelector('tr[data-id="acme-winter-sale"] td:nth-child(7)')?.textContent !== '—');
    const cells = await page.$$eval('tr[data-id="acme-winter-sale"] td', (tds) => tds.map((td) => td.textContent));
    t.match(cells[0], /Acme Shoes · Winter Sale/);
    t.equal(cells[2], (st.settledMicros / 1e6).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }), 'spent today');
    t.match(cells[8], /CLOSED|OPEN|HALF_OPEN|EXHAUSTED/, 'breaker state');
    t.match(await page.textContent('tr[data-id="soylent-promo"] td:nth-child(2)').catch(() => 'PAUSED (on another page)'), /PAUSED/);
    // The header: store health from the live feed, decisions per second from /metrics.
    await page.waitForFunction(() => /Stores healthy/.test(document.querySelector('#store-health')?.textContent ?? ''));
    await page.waitForFunction(() => /Decisions\/s: \d/.test(document.querySelector('#decision-rate')?.textContent ?? ''));
    t.pass('store health and decisions per second are shown');
  });

  await t.test('paging follows the server\'s cursor; filters and sorting work', async (t) => {
    const first = await page.$$eval('#fleet-rows tr[data-id]', (rows) => rows.map((r) => (r as HTMLElement).dataset.id));
    await page.click('#page-next');
    await page.waitForFunction((f) => document.querySelector('#fleet-rows tr[data-id]')?.getAttribute('data-id') !== f, first[0]);
    const second = await page.$$eval('#fleet-rows tr[data-id]', (rows) => rows.map((r) => (r as HTMLElement).dataset.id));
    t.equal(second.length, 5, 'the second page holds the other 5 of 30');
    t.same(second.filter((id) => first.includes(id)), [], 'no campaign on both pages');
    t.ok(await page.isDisabled('#page-next'), 'no page after the last');
    await page.click('#page-prev');
    await page.waitForFunction((f) => document.querySelector('#fleet-rows tr[data-id]')?.getAttribute('data-id') === f, first[0]);

    await page.fill('#filter-q', 'longtail-1');
    // longtail-10 … longtail-19.
    await page.waitForFunction(() => document.querySelectorAll('#fleet-rows tr[data-id]').length === 10);
    const filtered = await page.$$eval('#fleet-rows tr[data-id]', (rows) => rows.map((r) => (r as HTMLElement).dataset.id));
    t.ok(filtered.every((id) => id!.startsWith('longtail-1')), 'the search filters by prefix on the server');
    await page.fill('#filter-q', '');
    await page.selectOption('#filter-status', 'PAUSED');
    await page.waitForFunction(() => document.querySelectorAll('#fleet-rows tr[data-id]').length === 1);
    t.equal(await page.getAttribute('#fleet-rows tr[data-id]', 'data-id'), 'soylent-promo', 'status filter');
    await page.selectOption('#filter-status', '');
    await page.waitForFunction(() => document.querySelectorAll('#fleet-rows tr[data-id]').length === 25);

    await page.selectOption('#filter-order', 'id');
    await page.waitForFunction(() => document.querySelector('#fleet-rows tr[data-id]')?.getAttribute('data-id') === 'acme-winter-sale');
    const byId = await page.$$eval('#fleet-rows tr[data-id]', (rows) => rows.map((r) => (r as HTMLElement).dataset.id!));
    t.same(byId, [...byId].sort(), 'id order');
    await page.click('th[data-key="spent"]');
    await page.waitForFunction(() => document.querySelector('th[data-key="spent"]')?.textContent?.includes('▼'));
    const spent = await page.$$eval('#fleet-rows tr[data-id] td:nth-child(3)', (tds) => tds.map((td) => Number(td.textContent!.replace(/,/g, ''))));
    t.same(spent, [...spent].sort((a, b) => b - a), 'a click on Spent today sorts the page, largest first');
    await page.selectOption('#filter-order', 'worst');
    const stop = traffic(pacer);
    await page.waitForFunction(() => document.querySelectorAll('#fleet-rows tr[data-id] td:nth-child(7)').length === 25 &&
      [...document.querySelectorAll('#fleet-rows tr[data-id] td:nth-child(7)')].every((td) => td.textContent !== '—'));
    await page.waitForFunction(() => /Decisions\/s: [1-9]/.test(document.querySelector('#decision-rate')?.textContent ?? ''), undefined, { timeout: 15_000 });
    await stop();
    t.pass('decisions per second rise with hot-path traffic');
    await page.screenshot({ path: join(shotDir, 'fleet.png'), fullPage: false });
  });

  const id = 'acme-winter-sale';
  const spentFigure = () => page.textContent('#fig-spent .figure-value');
  const lastSpentPoint = () => page.evaluate(() => {
    const chart = window.Chart.getChart(document.getElementById('spend-chart'));
    const data = chart.data.datasets[0].data;
    return data[data.length - 1].y as number;
  });

  await t.test('the campaign page shows the day, and hot-path spend arrives without a reload', async (t) => {
    await page.click(`a[href="#/campaign/${id}"]`);
    await page.waitForSelector('#budget-form');
    await page.waitForFunction(() => window.Chart?.getChart(document.getElementById('week-chart')) !== undefined);
    t.match(await page.textContent('#campaign-title'), 'Acme Shoes · Winter Sale');
    const before = await status(pacer, id);
    t.equal(await spentFigure(), (before.settledMicros / 1e6).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
    t.equal(await lastSpentPoint(), before.settledMicros / 1e6, 'the chart ends at the settled spend');
    const reasons = await page.evaluate(() => window.Chart.getChart(document.getElementById('reasons-chart')).data);
    t.equal(reasons.datasets[0].data[0], before.counters.allowed, 'decisions by reason: allowed');
    t.ok(reasons.labels.length >= 1);
    t.ok(await page.$('#week-days tbody tr'), 'the seven-day table');
    t.equal((await page.$$('#week-days tbody tr')).length, 7, 'seven days');
    // The forecast figure (GET …/forecast): the API's expected spend by the end of the day, and its basis.
    await page.waitForSelector('#fig-forecast');
    const forecast = (await get(base, `/v1/campaigns/${id}/forecast`, auth)).body;
    const shown = Number((await page.textContent('#fig-forecast .figure-value'))!.replace(/[^0-9.]/g, '')) * 1e6;
    t.ok(Math.abs(shown - forecast.expectedSpendMicros) <= 0.01 * forecast.budgetMicros, `forecast shown ${shown}, the API's ${forecast.expectedSpendMicros}`);
    t.match(await page.textContent('#fig-forecast'), new RegExp(`by the ${forecast.basis}`));

    // Marks this document: a reload would lose the mark.
    await page.evaluate(() => (window.__sameDocument = true));
    await spend(pacer, id, 12_340_000, 'live-spend-1');
    const expected = before.settledMicros + 12_340_000;
    await page.waitForFunction((y) => {
      const chart = window.Chart.getChart(document.getElementById('spend-chart'));
      const data = chart.data.datasets[0].data;
      return data[data.length - 1].y === y;
    }, expected / 1e6, { timeout: 10_000 });
    t.equal(await lastSpentPoint(), expected / 1e6, 'the chart\'s last point moved by the spend');
    await page.waitForFunction((text) => document.querySelector('#fig-spent .figure-value')?.textContent === text,
      (expected / 1e6).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
    t.pass('the spent figure moved by the spend');
    t.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload happened');
  });

  await t.test('a budget change from the page is audited, shown, and a refused one is shown next to its field', async (t) => {
    const v0 = (await get(base, `/v1/campaigns/${id}`, auth)).body.campaign.version;
    await page.fill('#budget-amount', '0');
    await page.fill('#budget-reason', 'testing a refusal');
    await page.click('#budget-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#budget-amount-error')?.textContent !== '');
    t.match(await page.textContent('#budget-amount-error'), /INVALID_AMOUNT: dailyBudgetMicros must be a positive integer/);
    t.equal(await page.getAttribute('#budget-amount', 'aria-invalid'), 'true');
    t.equal((await get(base, `/v1/campaigns/${id}`, auth)).body.campaign.version, v0, 'the refused change changed nothing');

    await page.fill('#budget-amount', '1,500.50');
    await page.fill('#budget-reason', 'advertiser raised the cap for the weekend');
    await page.click('#budget-form button[type=submit]');
    await page.waitForFunction(() => /changed from/.test(document.querySelector('#action-message')?.textContent ?? ''));
    const changes = (await get(base, `/v1/campaigns/${id}/budget-changes`, auth)).body.changes;
    const last = changes[changes.length - 1];
    t.match(last, { budget: 'daily', oldMicros: 1_200_000_000, newMicros: 1_500_500_000, actor: 'dana', reason: 'advertiser raised the cap for the weekend', version: v0 + 1 });
    await page.waitForFunction(() => /advertiser raised the cap/.test(document.querySelector('#budget-changes-table')?.textContent ?? ''));
    const firstRow = await page.$$eval('#budget-changes-table tbody tr:first-child td', (tds) => tds.map((td) => td.textContent));
    t.match(firstRow, [/\d\d:\d\d/, 'daily', '1,200.00', '1,500.50', 'dana', 'advertiser raised the cap for the weekend'], 'newest first on the page');
    await page.waitForFunction(() => /1,500\.50/.test(document.querySelector('#fig-spent')?.textContent ?? ''));
    t.pass('the figures show the new budget');
  });

  await t.test('a strategy edit: a validation error next to its field, then a valid edit', async (t) => {
    const v0 = (await get(base, `/v1/campaigns/${id}`, auth)).body.campaign.version;
    await page.selectOption('#strategy', 'AHEAD');
    await page.fill('#ahead-percent', '500');
    await page.click('#strategy-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#ahead-percent-error')?.textContent !== '');
    t.match(await page.textContent('#ahead-percent-error'), /^INVALID_FIELD: aheadPercent/);
    const unchanged = (await get(base, `/v1/campaigns/${id}`, auth)).body.campaign;
    t.match(unchanged, { version: v0, strategy: 'EVEN' }, 'nothing changed');
    await page.fill('#ahead-percent', '20');
    await page.click('#strategy-form button[type=submit]');
    await page.waitForFunction(() => /Strategy saved: AHEAD/.test(document.querySelector('#action-message')?.textContent ?? ''));
    t.match((await get(base, `/v1/campaigns/${id}`, auth)).body.campaign, { version: v0 + 1, strategy: 'AHEAD', aheadPercent: 20 });
  });

  await t.test('pause and resume go with If-Match: a change made meanwhile is refused, then reapplied', async (t) => {
    await page.click('#action-pause');
    await page.waitForFunction(() => /Paused/.test(document.querySelector('#action-message')?.textContent ?? ''));
    const paused = (await get(base, `/v1/campaigns/${id}`, auth)).body.campaign;
    t.equal(paused.status, 'PAUSED');
    // Someone else renames the campaign; the page still holds the older version.
    const r = await fetch(`${base}/v1/campaigns/${id}`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ name: 'Acme Shoes · Winter Sale (EU+US)' }),
    });
    t.equal(r.status, 200);
    // The page may learn the new version from the live feed first; either way it must not undo the rename.
    await page.click('#action-resume');
    await page.waitForFunction(() => /changed meanwhile|Resumed/.test(document.querySelector('#action-message')?.textContent ?? ''));
    if (/changed meanwhile/.test((await page.textContent('#action-message'))!)) {
      t.equal((await get(base, `/v1/campaigns/${id}`, auth)).body.campaign.status, 'PAUSED', 'the stale resume changed nothing');
      await page.click('#action-resume');
      await page.waitForFunction(() => /Resumed/.test(document.querySelector('#action-message')?.textContent ?? ''));
    }
    const resumed = (await get(base, `/v1/campaigns/${id}`, auth)).body.campaign;
    t.match(resumed, { status: 'ACTIVE', name: 'Acme Shoes · Winter Sale (EU+US)' }, 'resumed, and the rename kept');
    await page.click('#action-reset-breaker');
    await page.waitForFunction(() => /Breaker reset/.test(document.querySelector('#action-message')?.textContent ?? ''));
    t.equal((await status(pacer, id)).breaker.state, 'CLOSED');
  });

  await t.test('a campaign page with a tripped breaker, for the screenshot', async (t) => {
    const topUp = await post(base, '/v1/campaigns/initech-app-installs/budget', { add: 150_000_000, reason: 'advertiser topped up after the morning burst' }, { ...auth, 'x-pacer-actor': 'sam' });
    t.equal(topUp.status, 200);
    await page.goto(`${base}/#/campaign/initech-app-installs`);
    await page.waitForFunction(() => window.Chart?.getChart(document.getElementById('week-chart')) !== undefined);
    await page.waitForSelector('#breaker-timeline .segment');
    t.match(await page.textContent('#breaker-timeline'), /TRIP_FRACTION/, 'the breaker tripped at 95%, on the timeline');
    t.match(await page.textContent('#budget-changes-table'), /advertiser topped up/);
    await page.screenshot({ path: join(shotDir, 'campaign.png'), fullPage: true });
  });

  await t.test('a token the API refuses sends the page back to the login form', async (t) => {
    await page.evaluate(() => sessionStorage.setItem('pacer.adminToken', 'revoked-token-0000000000'));
    await page.reload();
    await page.waitForSelector('#login');
    t.match(await page.textContent('#login-error'), /Signed out|refused/);
    t.equal(await page.evaluate(() => sessionStorage.getItem('pacer.adminToken')), null, 'the token is forgotten');
  });

  t.same(problems, [], 'no script error and no CSP violation in the page');
});
