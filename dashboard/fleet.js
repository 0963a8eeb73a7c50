// The fleet page: one page of campaigns at a time, fetched from the server with its cursor (so it
// stays as fast with 100,000 campaigns as with ten), worst off plan first by default (the fleet
// report, GET /v1/report), or in id order (the listing, GET /v1/campaigns). The live feed follows
// exactly the campaigns on the page and fills in today's spend, plan, pacing index, throttle and
// breaker, updated about once a second.

import { api, qs } from './api.js';
import { activityBadge, breakerBadge, fill, h, localToday, money, pacingCell, percent, ratio } from './ui.js';

const strategies = ['EVEN', 'ASAP', 'FRONT_LOADED', 'ADAPTIVE', 'AHEAD', 'CUSTOM'];

/** Columns: key, title, the value a click sorts by (within the page), and the cell. */
const columns = [
  { key: 'name', title: 'Campaign', value: (r) => r.name.toLowerCase(), cell: (r) => h('td', {}, h('a', { href: `#/campaign/${encodeURIComponent(r.id)}`, class: 'campaign-link' }, r.name), h('div', { class: 'muted small' }, r.id)) },
  { key: 'activity', title: 'Status', value: (r) => (r.live ? (r.live.active ? 'A' : r.live.inactiveReason) : ''), cell: (r) => h('td', {}, activityBadge(r.live)) },
  { key: 'spent', title: 'Spent today', num: true, value: (r) => spentOf(r), cell: (r) => h('td', { class: 'num' }, money(spentOf(r))) },
  { key: 'plan', title: 'Plan so far', num: true, value: (r) => r.live?.planMicros ?? -1, cell: (r) => h('td', { class: 'num' }, money(r.live?.planMicros)) },
  { key: 'budget', title: 'Budget', num: true, value: (r) => r.live?.budgetMicros ?? r.budgetMicros ?? -1, cell: (r) => h('td', { class: 'num' }, money(r.live?.budgetMicros ?? r.budgetMicros)) },
  { key: 'bar', title: 'Spend vs plan', value: (r) => spentOf(r) / Math.max(1, r.live?.budgetMicros ?? r.budgetMicros ?? 1), cell: (r) => h('td', {}, progress(r)) },
  { key: 'pacingIndex', title: 'Pacing index', num: true, value: (r) => r.live?.pacingIndex ?? -1, cell: (r) => h('td', { class: 'num' }, pacingCell(r.live?.pacingIndex)) },
  { key: 'throttle', title: 'Throttle', num: true, value: (r) => r.live?.throttle ?? -1, cell: (r) => h('td', { class: 'num' }, ratio(r.live?.throttle)) },
  { key: 'breaker', title: 'Breaker', value: (r) => r.live?.breaker.state ?? '', cell: (r) => h('td', {}, breakerBadge(r.live?.breaker.state)) },
  { key: 'slotNrmse', title: 'Off plan (slot NRMSE)', num: true, value: (r) => r.slotNrmse ?? -1, cell: (r) => h('td', { class: 'num' }, ratio(r.slotNrmse)) },
  { key: 'delivery', title: 'Delivered', num: true, value: (r) => r.deliveryRatio ?? -1, cell: (r) => h('td', { class: 'num' }, percent(r.deliveryRatio)) },
];

function spentOf(r) {
  return r.live?.settledMicros ?? r.spentMicros ?? null;
}

/** Spend against the day's budget, with a tick where the plan is now. */
function progress(r) {
  const budget = r.live?.budgetMicros ?? r.budgetMicros;
  const bar = h('div', { class: 'progress', title: 'spent (bar) and plan so far (tick) against the day\'s budget' });
  if (!(budget > 0)) return bar;
  const fillEl = h('div', { class: 'progress-fill' });
  fillEl.style.width = `${Math.min(100, (100 * (spentOf(r) ?? 0)) / budget)}%`;
  bar.append(fillEl);
  if (r.live) {
    const tick = h('div', { class: 'progress-plan' });
    tick.style.left = `${Math.min(100, (100 * r.live.planMicros) / budget)}%`;
    bar.append(tick);
  }
  return bar;
}

export class FleetPage {
  constructor(root, live) {
    this.root = root;
    this.live = live;
    this.state = { order: 'worst', q: '', status: '', strategy: '', day: localToday(), limit: 25 };
    this.cursors = [null];
    this.pageIndex = 0;
    this.nextCursor = null;
    this.rows = [];
    this.sort = null;
    this.loading = 0;
  }

  enter() {
    document.title = 'Fleet · Budget Pacer';
    this.table = h('tbody', { id: 'fleet-rows' });
    this.note = h('p', { class: 'muted small', id: 'fleet-note' });
    this.pager = h('div', { class: 'pager' });
    this.error = h('p', { class: 'field-error', id: 'fleet-error' });
    this.head = h('tr');
    fill(this.root,
      h('section', { class: 'card' },
        h('div', { class: 'title-row' }, h('h1', {}, 'Fleet'), this.filters()),
        this.error,
        h('div', { class: 'table-wrap' }, h('table', { class: 'fleet', id: 'fleet' }, h('thead', {}, this.head), this.table)),
        h('div', { class: 'table-foot' }, this.note, this.pager)));
    this.load();
  }

  leave() {
    this.left = true;
  }

  filters() {
    const set = (key) => (e) => {
      this.state[key] = key === 'limit' ? Number(e.target.value) : e.target.value;
      this.restart();
    };
    let typing = null;
    const search = h('input', { id: 'filter-q', type: 'search', placeholder: 'id or name starts with…', value: this.state.q });
    search.addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => {
        this.state.q = search.value.trim();
        this.restart();
      }, 300);
    });
    const select = (id, key, options) =>
      h('select', { id, onchange: set(key) }, options.map(([value, text]) => h('option', { value, selected: String(this.state[key]) === String(value) }, text)));
    const day = h('input', { id: 'filter-day', type: 'date', value: this.state.day, onchange: set('day') });
    return h('div', { class: 'filters' },
      h('label', {}, 'Order ', select('filter-order', 'order', [['worst', 'Worst off plan first'], ['id', 'Campaign id']])),
      h('label', {}, 'Search ', search),
      h('label', {}, 'Status ', select('filter-status', 'status', [['', 'any'], ['ACTIVE', 'active'], ['PAUSED', 'paused']])),
      h('label', {}, 'Strategy ', select('filter-strategy', 'strategy', [['', 'any'], ...strategies.map((s) => [s, s])])),
      h('label', {}, 'Day ', day),
      h('label', {}, 'Rows ', select('filter-limit', 'limit', [[25, '25'], [50, '50'], [100, '100']])));
  }

  restart() {
    this.cursors = [null];
    this.pageIndex = 0;
    this.load();
  }

  /** One page from the server: the fleet report (worst first) or the listing (id order). */
  async load() {
    const ticket = ++this.loading;
    const s = this.state;
    const cursor = this.cursors[this.pageIndex];
    this.error.textContent = '';
    try {
      let rows;
      let next;
      if (s.order === 'worst') {
        const { body } = await api('GET', `/v1/report${qs({ day: s.day, limit: s.limit, cursor, q: s.q, status: s.status, strategy: s.strategy })}`);
        rows = body.campaigns.map((c) => ({ id: c.campaignId, name: c.name, budgetMicros: c.budgetMicros, spentMicros: c.spentMicros, slotNrmse: c.slotNrmse, deliveryRatio: c.deliveryRatio }));
        next = body.nextCursor;
      } else {
        const { body } = await api('GET', `/v1/campaigns${qs({ limit: s.limit, cursor, q: s.q, status: s.status, strategy: s.strategy })}`);
        rows = body.campaigns.map((c) => ({ id: c.id, name: c.name, budgetMicros: c.dailyBudgetMicros, spentMicros: null, slotNrmse: null, deliveryRatio: null }));
        next = body.nextCursor;
      }
      if (ticket !== this.loading || this.left) return;
      this.rows = rows.map((r) => ({ ...r, live: this.rows.find((o) => o.id === r.id)?.live ?? null }));
      this.nextCursor = next;
      this.sort = null;
      this.live?.watch(this.rows.map((r) => r.id));
      this.render();
    } catch (err) {
      if (ticket === this.loading) this.error.textContent = `${err.code ?? 'ERROR'}: ${err.message}`;
    }
  }

  onStatus(list) {
    let changed = false;
    for (const st of list) {
      const row = this.rows.find((r) => r.id === st.campaignId);
      if (row) {
        row.live = st;
        changed = true;
      }
    }
    if (changed && !this.left) this.renderRows();
  }

  render() {
    fill(this.head, columns.map((c) => {
      const arrow = this.sort?.key === c.key ? (this.sort.dir > 0 ? ' ▲' : ' ▼') : '';
      return h('th', { class: c.num ? 'num sortable' : 'sortable', dataset: { key: c.key }, onclick: () => this.sortBy(c), title: 'sort the rows of this page' }, c.title + arrow);
    }));
    this.renderRows();
    const order = this.state.order === 'worst'
      ? `Ordered worst off plan first (largest hourly pacing error of ${this.state.day}, then lowest delivery), from the fleet report.`
      : 'Ordered by campaign id.';
    this.note.textContent = `${order} A click on a column sorts the rows of this page. Spend, plan, pacing index, throttle and breaker are live.`;
    const prev = h('button', { type: 'button', id: 'page-prev', disabled: this.pageIndex === 0, onclick: () => this.go(-1) }, '‹ Previous');
    const next = h('button', { type: 'button', id: 'page-next', disabled: this.nextCursor === null, onclick: () => this.go(1) }, 'Next ›');
    fill(this.pager, prev, h('span', { class: 'muted' }, ` page ${this.pageIndex + 1} `), next);
  }

  renderRows() {
    const rows = [...this.rows];
    if (this.sort) {
      const { col, dir } = this.sort;
      rows.sort((a, b) => {
        const x = col.value(a);
        const y = col.value(b);
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
    }
    if (rows.length === 0) {
      fill(this.table, h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, 'No campaign matches on this page.')));
      return;
    }
    fill(this.table, rows.map((r) => h('tr', { dataset: { id: r.id } }, columns.map((c) => c.cell(r)))));
  }

  sortBy(col) {
    const dir = this.sort?.key === col.key ? -this.sort.dir : col.num ? -1 : 1;
    this.sort = { key: col.key, col, dir };
    this.render();
  }

  go(step) {
    if (step > 0) {
      if (this.nextCursor === null) return;
      this.cursors[this.pageIndex + 1] = this.nextCursor;
      this.pageIndex++;
    } else if (this.pageIndex > 0) this.pageIndex--;
    this.load();
  }
}
