// The campaign page: today's cumulative spend against the plan (updated live), the throttle over
// the day, decisions by reason, the breaker's transitions, the last budget changes, the hourly
// report of the last seven days, and the actions (pause, resume, reset the breaker, change the
// budget, edit the strategy). Every write goes through the management API with If-Match: the
// version the page last read, so a change made meanwhile by someone else is refused, not undone.

import { api, ApiError, qs } from './api.js';
import { activityBadge, addDays, breakerBadge, fill, h, money, pacingCell, parseMicros, percent, ratio, timeIn, unitsText } from './ui.js';

const statusEveryMs = 5_000;
const budgetChangesShown = 10;
/** Pages of the audit trail read to find its end (1,000 changes each). */
const budgetChangePagesMax = 20;
/** Live points kept per line before older ones are thinned out. */
const livePointsMax = 2_000;

const colours = { spent: '#2563eb', plan: '#9ca3af', budget: '#dc2626', throttle: '#7c3aed', bars: '#60a5fa', shadow: '#059669' };

/** Keeps a live series bounded: past the limit, every other point of its older half goes. */
function thin(points) {
  if (points.length <= livePointsMax) return;
  const half = Math.floor(points.length / 2);
  const kept = points.slice(0, half).filter((_, i) => i % 2 === 0);
  points.splice(0, half, ...kept);
}

export class CampaignPage {
  constructor(root, live, id) {
    this.root = root;
    this.live = live;
    this.id = id;
    this.charts = [];
    this.timers = [];
    this.breakerEvents = [];
    this.changes = [];
  }

  enter() {
    document.title = `${this.id} · Budget Pacer`;
    this.el = {
      title: h('h1', { id: 'campaign-title' }, this.id),
      subtitle: h('p', { class: 'muted', id: 'campaign-subtitle' }),
      figures: h('div', { class: 'figures', id: 'figures' }),
      message: h('p', { class: 'message', id: 'action-message', role: 'status' }),
      actions: h('div', { class: 'actions', id: 'actions' }),
      timeline: h('div', { id: 'breaker-timeline' }),
      changes: h('div', { id: 'budget-changes' }),
      week: h('div', { id: 'week-table' }),
      error: h('p', { class: 'field-error', id: 'campaign-error' }),
    };
    const canvas = (id) => h('div', { class: 'chart-box' }, h('canvas', { id }));
    fill(this.root,
      h('p', {}, h('a', { href: '#/' }, '← Fleet')),
      h('section', { class: 'card' }, h('div', { class: 'title-row' }, h('div', {}, this.el.title, this.el.subtitle)), this.el.error, this.el.figures),
      h('div', { class: 'grid' },
        h('section', { class: 'card wide' }, h('h2', {}, 'Spend today against the plan'), canvas('spend-chart')),
        h('section', { class: 'card' }, h('h2', {}, 'Actions'), this.el.message, this.el.actions),
        h('section', { class: 'card' }, h('h2', {}, 'Throttle over the day'), canvas('throttle-chart')),
        h('section', { class: 'card' }, h('h2', {}, 'Decisions today by reason'), canvas('reasons-chart')),
        h('section', { class: 'card' }, h('h2', {}, 'Breaker transitions today'), this.el.timeline),
        h('section', { class: 'card' }, h('h2', {}, 'Last budget changes'), this.el.changes),
        h('section', { class: 'card wide' }, h('h2', {}, 'Hourly report, last seven days'), canvas('week-chart'), this.el.week)));
    void this.load();
  }

  leave() {
    this.left = true;
    for (const t of this.timers) clearInterval(t);
    for (const c of this.charts) c.destroy();
    this.live?.watch([]);
  }

  async load() {
    try {
      await this.loadCampaign();
      const { body: status } = await api('GET', `/v1/campaigns/${encodeURIComponent(this.id)}/status`);
      this.status = status;
      const [{ body: report }] = await Promise.all([
        api('GET', `/v1/campaigns/${encodeURIComponent(this.id)}/report`),
        this.loadChanges(),
      ]);
      if (this.left) return;
      this.report = report;
      this.fmt = timeIn(this.campaign.timezone);
      this.drawSpend(report);
      await this.loadForecast();
      this.renderFigures();
      this.renderActions();
      await this.loadDay();
      this.drawReasons();
      this.renderTimeline();
      this.renderChanges();
      this.live?.watch([this.id]);
      this.timers.push(setInterval(() => void this.refreshStatus(), statusEveryMs));
      await this.loadWeek();
    } catch (err) {
      if (!this.left) this.el.error.textContent = `${err.code ?? 'ERROR'}: ${err.message}`;
    }
  }

  /** The configuration and its ETag: the version every action names in If-Match. */
  async loadCampaign() {
    const { body, etag } = await api('GET', `/v1/campaigns/${encodeURIComponent(this.id)}`);
    this.campaign = body.campaign;
    this.etag = etag;
    this.el.title.textContent = this.campaign.name;
    this.el.subtitle.textContent = `${this.campaign.id} · ${this.campaign.strategy} · ${this.campaign.timezone} · version ${this.campaign.version}${this.campaign.archived ? ' · ARCHIVED' : ''}`;
  }

  async refreshStatus() {
    try {
      const { body } = await api('GET', `/v1/campaigns/${encodeURIComponent(this.id)}/status`);
      if (this.left) return;
      this.status = body;
      for (const e of body.breaker.events) this.addBreakerEvent(e);
      await this.loadForecast();
      this.renderFigures();
      this.drawReasons();
      this.renderTimeline();
    } catch {
      // The next tick tries again; a 401 has already sent the page to the login form.
    }
  }

  // ---- live -------------------------------------------------------------------------------------

  onStatus(list) {
    const s = list.find((x) => x.campaignId === this.id);
    if (!s || !this.status || this.left) return;
    Object.assign(this.status, s, { breaker: { ...this.status.breaker, ...s.breaker } });
    const now = Date.now();
    if (this.spendChart) {
      const spent = this.spendChart.data.datasets[0].data;
      const last = spent[spent.length - 1];
      const y = s.settledMicros / 1e6;
      // A flat stretch moves its last point instead of adding one, so the line stays light.
      if (last && last.live && last.y === y && spent[spent.length - 2]?.y === y) last.x = now;
      else spent.push({ x: now, y, live: true });
      thin(spent);
      this.spendChart.update('none');
    }
    if (this.throttleChart) {
      const points = this.throttleChart.data.datasets[0].data;
      points.push({ x: now, y: s.throttle });
      thin(points);
      this.throttleChart.update('none');
    }
    this.renderFigures();
    // Someone changed the campaign (another tab, the API): read it again, so If-Match stays right.
    // (Only a newer version: a frame sent just before this page's own write still names the older one.)
    if (s.version > this.campaign.version) void this.loadCampaign().then(() => this.renderActions());
  }

  onBreaker(f) {
    if (f.campaignId !== this.id) return;
    this.addBreakerEvent({ at: f.at, from: f.from, to: f.to, reason: f.reason });
    if (this.status) this.status.breaker.state = f.to;
    this.renderTimeline();
    this.renderFigures();
  }

  onBudget(f) {
    if (f.campaignId !== this.id) return;
    if (!this.changes.some((c) => c.version === f.version && c.budget === f.budget)) {
      this.changes.push({ at: f.at, budget: f.budget, oldMicros: f.oldMicros, newMicros: f.newMicros, actor: f.actor, reason: f.reason, version: f.version });
      this.renderChanges();
    }
  }

  onArchive(f) {
    if (f.campaignId === this.id) void this.loadCampaign().then(() => this.renderActions());
  }

  // ---- figures ----------------------------------------------------------------------------------

  renderFigures() {
    const s = this.status;
    if (!s) return;
    const figure = (id, label, value, extra) => h('div', { class: 'figure', id }, h('div', { class: 'figure-label' }, label), h('div', { class: 'figure-value' }, value), extra ? h('div', { class: 'muted small' }, extra) : null);
    fill(this.el.figures,
      figure('fig-spent', 'Spent today', money(s.settledMicros), `of ${money(s.budgetMicros)} budget`),
      figure('fig-plan', 'Plan so far', money(s.planMicros)),
      figure('fig-reserved', 'Reserved (bids in flight)', money(s.reservedMicros)),
      figure('fig-remaining', 'Remaining', money(s.remainingMicros)),
      figure('fig-pacing', 'Pacing index', pacingCell(s.pacingIndex), 'committed ÷ plan'),
      figure('fig-throttle', 'Throttle', ratio(s.throttle), 'share of requests allowed'),
      figure('fig-breaker', 'Breaker', breakerBadge(s.breaker.state)),
      figure('fig-status', 'Status', activityBadge(s), s.day),
      this.forecast ? figure('fig-forecast', 'Forecast by end of day', money(this.forecast.expectedSpendMicros), this.forecastText(this.forecast)) : null);
  }

  /** GET …/forecast (docs/api.md): expected spend by the end of the local day, and exhaustion. */
  async loadForecast() {
    try {
      const { body } = await api('GET', `/v1/campaigns/${encodeURIComponent(this.id)}/forecast`);
      if (!this.left) this.forecast = body;
    } catch {
      // Shown again on the next refresh; the figure keeps its last value.
    }
  }

  forecastText(f) {
    const when = f.expectedExhaustionAt === null ? 'not expected to run out today' : `runs out at ${this.fmt ? this.fmt(Date.parse(f.expectedExhaustionAt)) : f.expectedExhaustionAt}`;
    return `${when} · by the ${f.basis}`;
  }

  // ---- charts -----------------------------------------------------------------------------------

  timeAxis(startMs, endMs) {
    return {
      type: 'linear',
      min: startMs,
      max: endMs,
      ticks: { stepSize: 3 * 3_600_000, callback: (v) => this.fmt(v) },
    };
  }

  chart(id, config) {
    const c = new window.Chart(document.getElementById(id), {
      ...config,
      options: { animation: false, maintainAspectRatio: false, responsive: true, ...config.options },
    });
    this.charts.push(c);
    return c;
  }

  /** Cumulative plan and spend by hour from the day report, then the live spend from here on. */
  drawSpend(report) {
    const startMs = Date.parse(report.start);
    const endMs = Date.parse(report.end);
    const now = Date.now();
    const plan = [{ x: startMs, y: 0 }];
    const spent = [{ x: startMs, y: 0 }];
    let p = 0;
    let sp = 0;
    for (const hour of report.hours) {
      const end = Date.parse(hour.end);
      p += hour.planMicros;
      plan.push({ x: end, y: p / 1e6 });
      if (end <= now) {
        sp += hour.spentMicros;
        spent.push({ x: end, y: sp / 1e6 });
      }
    }
    spent.push({ x: now, y: this.status.settledMicros / 1e6, live: true });
    const budget = this.status.budgetMicros / 1e6;
    // A shadow strategy or SHADOW mode: its would-be spend beside the real one (docs/api.md, "Shadow mode and A/B").
    const extra = [];
    if (report.shadow) {
      const wouldBe = [{ x: startMs, y: 0 }];
      let w = 0;
      report.shadow.hours.forEach((hour, k) => {
        const end = Date.parse(report.hours[k].end);
        if (end > now) return;
        w += hour.spentMicros;
        wouldBe.push({ x: end, y: w / 1e6 });
      });
      extra.push({ label: `Would-be (${report.shadow.strategy} shadow)`, data: wouldBe, borderColor: colours.shadow, backgroundColor: colours.shadow, pointRadius: 0, borderDash: [2, 3], borderWidth: 2 });
    }
    this.spendChart = this.chart('spend-chart', {
      type: 'line',
      data: {
        datasets: [
          { label: 'Spent', data: spent, borderColor: colours.spent, backgroundColor: colours.spent, pointRadius: 0, borderWidth: 2, stepped: false },
          { label: 'Plan', data: plan, borderColor: colours.plan, backgroundColor: colours.plan, pointRadius: 0, borderDash: [6, 4], borderWidth: 2 },
          { label: 'Budget', data: [{ x: startMs, y: budget }, { x: endMs, y: budget }], borderColor: colours.budget, backgroundColor: colours.budget, pointRadius: 0, borderWidth: 1 },
          ...extra,
        ],
      },
      options: {
        parsing: false,
        scales: { x: this.timeAxis(startMs, endMs), y: { beginAtZero: true, title: { display: true, text: 'currency units' } } },
        plugins: { tooltip: { callbacks: { title: (items) => this.fmt(items[0].parsed.x) } } },
      },
    });
  }

  /** The throttle per minute today (history) and today's breaker transitions. */
  async loadDay() {
    const startMs = Date.parse(this.report.start);
    const endMs = Date.parse(this.report.end);
    const to = new Date(Math.min(Date.now() + 60_000, endMs)).toISOString();
    const { body } = await api('GET', `/v1/campaigns/${encodeURIComponent(this.id)}/history${qs({ from: this.report.start, to, step: 'minute' })}`);
    if (this.left) return;
    for (const e of body.breakerEvents) this.addBreakerEvent(e);
    for (const e of this.status.breaker.events) this.addBreakerEvent(e);
    const points = body.buckets.filter((b) => b.throttle !== null).map((b) => ({ x: Date.parse(b.start), y: b.throttle }));
    points.push({ x: Date.now(), y: this.status.throttle });
    this.throttleChart = this.chart('throttle-chart', {
      type: 'line',
      data: { datasets: [{ label: 'Throttle', data: points, borderColor: colours.throttle, backgroundColor: colours.throttle, pointRadius: 2, borderWidth: 2, stepped: true }] },
      options: {
        parsing: false,
        scales: { x: this.timeAxis(startMs, endMs), y: { min: 0, max: 1 } },
        plugins: { legend: { display: false } },
      },
    });
  }

  drawReasons() {
    const c = this.status.counters;
    const labels = ['OK (allowed)', ...Object.keys(c.deniedByReason)];
    const data = [c.allowed, ...Object.values(c.deniedByReason)];
    if (this.reasonsChart) {
      this.reasonsChart.data.labels = labels;
      this.reasonsChart.data.datasets[0].data = data;
      this.reasonsChart.update('none');
      return;
    }
    this.reasonsChart = this.chart('reasons-chart', {
      type: 'bar',
      data: { labels, datasets: [{ label: 'Decisions', data, backgroundColor: labels.map((l, i) => (i === 0 ? '#16a34a' : '#f59e0b')) }] },
      options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } },
    });
  }

  // ---- breaker timeline -------------------------------------------------------------------------

  addBreakerEvent(e) {
    if (this.breakerEvents.some((x) => x.at === e.at && x.to === e.to)) return;
    this.breakerEvents.push(e);
    this.breakerEvents.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  }

  /** A bar over the local day coloured by breaker state, then the transitions as a list. */
  renderTimeline() {
    if (!this.report) return;
    const startMs = Date.parse(this.report.start);
    const endMs = Date.parse(this.report.end);
    const now = Math.min(Date.now(), endMs);
    const today = this.breakerEvents.filter((e) => Date.parse(e.at) >= startMs && Date.parse(e.at) < endMs);
    const bar = h('div', { class: 'timeline' });
    let state = today.length > 0 ? today[0].from : (this.status?.breaker.state ?? 'CLOSED');
    let from = startMs;
    const segment = (s, a, b) => {
      const seg = h('div', { class: `segment breaker-${s.toLowerCase()}`, title: `${s} ${this.fmt(a)}–${this.fmt(b)}` });
      seg.style.left = `${(100 * (a - startMs)) / (endMs - startMs)}%`;
      seg.style.width = `${Math.max(0.3, (100 * (b - a)) / (endMs - startMs))}%`;
      bar.append(seg);
    };
    for (const e of today) {
      const at = Date.parse(e.at);
      segment(state, from, at);
      state = e.to;
      from = at;
    }
    segment(state, from, now);
    const axis = h('div', { class: 'timeline-axis muted small' }, [0, 6, 12, 18, 24].map((hr) => h('span', {}, `${String(hr).padStart(2, '0')}:00`)));
    const list = today.length === 0
      ? h('p', { class: 'muted' }, 'No transition today.')
      : h('table', { class: 'compact' }, h('tbody', {}, today.slice(-12).reverse().map((e) =>
        h('tr', {}, h('td', {}, this.fmt(Date.parse(e.at))), h('td', {}, breakerBadge(e.from), ' → ', breakerBadge(e.to)), h('td', { class: 'muted' }, e.reason)))));
    fill(this.el.timeline, bar, axis, list);
  }

  // ---- budget changes ---------------------------------------------------------------------------

  /** The audit trail is oldest first: read its pages to the end (bounded), keep the newest. */
  async loadChanges() {
    let cursor = null;
    let all = [];
    for (let i = 0; i < budgetChangePagesMax; i++) {
      const { body } = await api('GET', `/v1/campaigns/${encodeURIComponent(this.id)}/budget-changes${qs({ limit: 1000, cursor })}`);
      all = all.concat(body.changes).slice(-budgetChangesShown);
      cursor = body.nextCursor;
      if (cursor === null) break;
    }
    this.changes = all;
  }

  renderChanges() {
    const fmt = timeIn(this.campaign.timezone, true);
    const rows = [...this.changes].sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, budgetChangesShown);
    if (rows.length === 0) return fill(this.el.changes, h('p', { class: 'muted' }, 'No budget change.'));
    fill(this.el.changes, h('table', { class: 'compact', id: 'budget-changes-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'Budget'), h('th', { class: 'num' }, 'From'), h('th', { class: 'num' }, 'To'), h('th', {}, 'Who'), h('th', {}, 'Reason'))),
      h('tbody', {}, rows.map((c) => h('tr', {},
        h('td', {}, fmt(Date.parse(c.at))), h('td', {}, c.budget), h('td', { class: 'num' }, money(c.oldMicros)), h('td', { class: 'num' }, money(c.newMicros)),
        h('td', {}, c.actor), h('td', { class: 'reason' }, c.reason ?? (c.oldMicros === null ? 'created' : 'edit')))))));
  }

  // ---- the last seven days ----------------------------------------------------------------------

  async loadWeek() {
    const days = [0, 1, 2, 3, 4, 5, 6].map((n) => addDays(this.status.day, -n)).reverse();
    const reports = await Promise.all(days.map((day) => api('GET', `/v1/campaigns/${encodeURIComponent(this.id)}/report${qs({ day })}`).then((r) => r.body)));
    if (this.left) return;
    const fmt = timeIn(this.campaign.timezone, true);
    const labels = [];
    const spent = [];
    const plan = [];
    for (const r of reports) {
      for (const hour of r.hours) {
        labels.push(fmt(Date.parse(hour.start)));
        spent.push(hour.spentMicros / 1e6);
        plan.push(hour.planMicros / 1e6);
      }
    }
    this.chart('week-chart', {
      type: 'bar',
      data: {
        labels,
        datasets: [
          { type: 'bar', label: 'Spent per hour', data: spent, backgroundColor: colours.bars },
          { type: 'line', label: 'Plan per hour', data: plan, borderColor: colours.plan, pointRadius: 0, borderWidth: 1.5, stepped: 'middle' },
        ],
      },
      options: { scales: { x: { ticks: { maxTicksLimit: 14, autoSkip: true } }, y: { beginAtZero: true } } },
    });
    fill(this.el.week, h('table', { class: 'compact', id: 'week-days' },
      h('thead', {}, h('tr', {}, ['Day', 'Budget', 'Spent', 'Delivered', 'Slot NRMSE', 'Breaker trips', '99% spent at'].map((t, i) => h('th', { class: i > 0 && i < 6 ? 'num' : '' }, t)))),
      h('tbody', {}, [...reports].reverse().map((r) => h('tr', {},
        h('td', {}, r.day), h('td', { class: 'num' }, money(r.budgetMicros)), h('td', { class: 'num' }, money(r.spentMicros)),
        h('td', { class: 'num' }, percent(r.deliveryRatio)), h('td', { class: 'num' }, ratio(r.slotNrmse)), h('td', { class: 'num' }, r.breakerTrips),
        h('td', {}, r.exhaustedAt === null ? '—' : fmt(Date.parse(r.exhaustedAt))))))));
  }

  // ---- actions ----------------------------------------------------------------------------------

  renderActions() {
    const c = this.campaign;
    const paused = c.status === 'PAUSED';
    const buttons = h('div', { class: 'button-row' },
      h('button', { type: 'button', id: paused ? 'action-resume' : 'action-pause', onclick: () => this.setStatus(paused ? 'ACTIVE' : 'PAUSED') }, paused ? 'Resume' : 'Pause'),
      h('button', { type: 'button', id: 'action-reset-breaker', class: 'secondary', onclick: () => this.resetBreaker() }, 'Reset breaker'));
    fill(this.el.actions, buttons, this.budgetForm(), this.strategyForm());
  }

  say(text, kind = 'ok') {
    this.el.message.textContent = text;
    this.el.message.className = `message ${kind}`;
  }

  /** The answer of a write carries the new version: keep its ETag for the next write. */
  written({ body, etag }) {
    this.campaign = body.campaign;
    this.etag = etag;
    this.el.subtitle.textContent = `${this.campaign.id} · ${this.campaign.strategy} · ${this.campaign.timezone} · version ${this.campaign.version}`;
    if (body.status) Object.assign(this.status, body.status);
    this.renderFigures();
    this.renderActions();
  }

  /** 412: someone else changed the campaign since the page read it; read it again, do not retry blindly. */
  async stale(err) {
    if (err instanceof ApiError && err.code === 'VERSION_MISMATCH') {
      await this.loadCampaign();
      this.renderActions();
      this.say(`The campaign changed meanwhile (now version ${err.detail.currentVersion}); it was read again: check it and apply your change again.`, 'bad');
      return true;
    }
    return false;
  }

  async setStatus(status) {
    try {
      this.written(await api('PATCH', `/v1/campaigns/${encodeURIComponent(this.id)}`, { body: { status }, etag: this.etag, contentType: 'application/merge-patch+json' }));
      this.say(status === 'PAUSED' ? 'Paused: decisions now answer CAMPAIGN_PAUSED.' : 'Resumed.');
    } catch (err) {
      if (!(await this.stale(err))) this.say(`${err.code}: ${err.message}`, 'bad');
    }
  }

  async resetBreaker() {
    // The breaker is runtime state, not configuration: it has no version, so no If-Match.
    try {
      const { body } = await api('POST', `/v1/campaigns/${encodeURIComponent(this.id)}/breaker/reset`);
      Object.assign(this.status, body);
      this.renderFigures();
      this.say('Breaker reset to CLOSED.');
    } catch (err) {
      this.say(`${err.code}: ${err.message}`, 'bad');
    }
  }

  budgetForm() {
    const amount = h('input', { id: 'budget-amount', name: 'amount', inputmode: 'decimal', value: unitsText(this.campaign.dailyBudgetMicros ?? 0), dataset: { apiFields: 'set add dailyBudgetMicros lifetimeBudgetMicros' } });
    const reason = h('input', { id: 'budget-reason', name: 'reason', maxlength: 200, placeholder: 'why (kept in the audit trail)', dataset: { apiFields: 'reason' } });
    const form = h('form', { class: 'action-form', id: 'budget-form', novalidate: true },
      h('h3', {}, 'Daily budget'),
      field('Budget (currency units)', amount),
      field('Reason', reason),
      h('p', { class: 'field-error form-error' }),
      h('button', { type: 'submit' }, 'Change budget'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      const micros = parseMicros(amount.value);
      if (micros === null) return showFieldError(form, amount, 'Enter an amount like 1250 or 1250.50 (at most six decimals).');
      if (reason.value.trim() === '') return showFieldError(form, reason, 'Say why: the reason is kept in the audit trail.');
      try {
        const r = await api('POST', `/v1/campaigns/${encodeURIComponent(this.id)}/budget`, { body: { set: micros, reason: reason.value.trim() }, etag: this.etag });
        this.written(r);
        this.onBudget({ campaignId: this.id, at: new Date().toISOString(), ...r.body.change, version: r.body.campaign.version });
        this.say(`Daily budget changed from ${money(r.body.change.oldMicros)} to ${money(r.body.change.newMicros)}.`);
        this.redrawBudgetLine();
      } catch (err) {
        if (!(await this.stale(err))) showApiError(form, err, err.code === 'BUDGET_BELOW_COMMITTED' ? amount : null);
      }
    });
    return form;
  }

  redrawBudgetLine() {
    if (!this.spendChart) return;
    const line = this.spendChart.data.datasets[2].data;
    for (const p of line) p.y = this.status.budgetMicros / 1e6;
    this.spendChart.update('none');
  }

  strategyForm() {
    const c = this.campaign;
    const strategy = h('select', { id: 'strategy', name: 'strategy', dataset: { apiFields: 'strategy' } },
      ['EVEN', 'ASAP', 'FRONT_LOADED', 'ADAPTIVE', 'AHEAD', 'CUSTOM'].map((s) => h('option', { value: s, selected: s === c.strategy }, s)));
    const share = h('input', { id: 'front-loaded-share', name: 'frontLoadedShare', inputmode: 'decimal', value: c.frontLoadedShare, dataset: { apiFields: 'frontLoadedShare' } });
    const ahead = h('input', { id: 'ahead-percent', name: 'aheadPercent', inputmode: 'decimal', value: c.aheadPercent, dataset: { apiFields: 'aheadPercent' } });
    const weights = h('input', { id: 'hourly-weights', name: 'hourlyWeights', value: (c.hourlyWeights ?? []).join(', '), placeholder: '24 numbers, comma-separated', dataset: { apiFields: 'hourlyWeights' } });
    const rows = { FRONT_LOADED: field('Share in the first half (0.5–0.95)', share), AHEAD: field('Percent ahead of EVEN (1–100)', ahead), CUSTOM: field('Hourly weights', weights) };
    const extra = h('div');
    const showExtra = () => fill(extra, rows[strategy.value] ?? null);
    strategy.addEventListener('change', showExtra);
    showExtra();
    const form = h('form', { class: 'action-form', id: 'strategy-form', novalidate: true },
      h('h3', {}, 'Strategy'), field('Strategy', strategy), extra,
      h('p', { class: 'field-error form-error' }),
      h('button', { type: 'submit' }, 'Save strategy'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      // Numbers go as typed (a non-number as the text itself), so the API's own rules judge them.
      const num = (input) => (input.value.trim() !== '' && Number.isFinite(Number(input.value)) ? Number(input.value) : input.value);
      const patch = { strategy: strategy.value };
      if (strategy.value === 'FRONT_LOADED') patch.frontLoadedShare = num(share);
      if (strategy.value === 'AHEAD') patch.aheadPercent = num(ahead);
      if (strategy.value === 'CUSTOM') patch.hourlyWeights = weights.value.split(',').filter((w) => w.trim() !== '').map((w) => num({ value: w.trim() }));
      try {
        this.written(await api('PATCH', `/v1/campaigns/${encodeURIComponent(this.id)}`, { body: patch, etag: this.etag, contentType: 'application/merge-patch+json' }));
        this.say(`Strategy saved: ${this.campaign.strategy} (version ${this.campaign.version}).`);
      } catch (err) {
        if (!(await this.stale(err))) showApiError(form, err, null);
      }
    });
    return form;
  }
}

function field(label, input) {
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, h('p', { class: 'field-error', id: `${input.id}-error` }));
}

function clearErrors(form) {
  for (const p of form.querySelectorAll('.field-error')) p.textContent = '';
  for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
}

function showFieldError(form, input, text) {
  input.setAttribute('aria-invalid', 'true');
  form.querySelector(`#${input.id}-error`).textContent = text;
  input.focus();
}

/**
 * An API refusal next to the field it is about. Validation messages start with the field's name
 * (docs/api.md, Errors: "the message names the field"), so the input whose data-api-fields lists
 * that name gets it; anything else is shown under the form.
 */
function showApiError(form, err, input) {
  const name = /^([A-Za-z][A-Za-z0-9]*)\b/.exec(err.message ?? '')?.[1];
  const target = input ?? [...form.querySelectorAll('[data-api-fields]')].find((i) => name !== undefined && i.dataset.apiFields.split(' ').includes(name));
  const text = `${err.code}: ${err.message}`;
  if (target && form.contains(target)) showFieldError(form, target, text);
  else form.querySelector('.form-error').textContent = text;
}
