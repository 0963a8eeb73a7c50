// Small helpers shared by the pages: building DOM without innerHTML (campaign names and API
// messages are user input, so they only ever become text nodes) and formatting figures.

/** h('td', {class: 'num'}, 'text', childNode, …): an element; attributes starting with "on" are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const moneyFormat = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** Micros as currency units, for display only (money never flows through this float). */
export function money(micros) {
  if (micros === null || micros === undefined) return '—';
  return moneyFormat.format(micros / 1e6);
}

/**
 * A currency amount typed by a person ("1250", "12.5", "1,250.75") as integer micros, parsed as a
 * string so no float rounding can creep in; null when it is not a non-negative amount with at most
 * six decimals.
 */
export function parseMicros(text) {
  const m = /^\s*(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,6}))?\s*$/.exec(text);
  if (m === null) return null;
  const micros = Number(m[1].replaceAll(',', '')) * 1e6 + Number((m[2] ?? '').padEnd(6, '0'));
  return Number.isSafeInteger(micros) ? micros : null;
}

/** Micros as the text a person would type back into the budget field. */
export function unitsText(micros) {
  const whole = Math.floor(micros / 1e6);
  const frac = String(micros % 1e6).padStart(6, '0').replace(/0+$/, '');
  return frac === '' ? String(whole) : `${whole}.${frac}`;
}

export function ratio(x, digits = 2) {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

export function percent(x) {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(0)}%`;
}

/** A formatter of instants as local time in a campaign's zone. */
export function timeIn(timeZone, withDate = false) {
  const f = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hourCycle: 'h23',
    hour: '2-digit',
    minute: '2-digit',
    ...(withDate ? { month: 'short', day: 'numeric' } : {}),
  });
  return (ms) => f.format(new Date(ms));
}

/** YYYY-MM-DD plus n days (n may be negative), by calendar, not by 24-hour steps. */
export function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** The browser's own calendar date, YYYY-MM-DD. */
export function localToday() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** A breaker state as a badge. */
export function breakerBadge(state) {
  return h('span', { class: `badge breaker-${(state ?? 'unknown').toLowerCase()}` }, state ?? '—');
}

/** A campaign's activity as a badge: active, paused, outside its schedule… */
export function activityBadge(status) {
  if (!status) return h('span', { class: 'badge' }, '—');
  if (status.active) return h('span', { class: 'badge ok' }, 'ACTIVE');
  const text = { CAMPAIGN_PAUSED: 'PAUSED', OUTSIDE_SCHEDULE: 'OFF SCHEDULE', OUTSIDE_FLIGHT: 'OFF FLIGHT', CAMPAIGN_ARCHIVED: 'ARCHIVED' }[status.inactiveReason];
  return h('span', { class: 'badge warn' }, text ?? status.inactiveReason ?? 'INACTIVE');
}

/** A pacing index (committed ÷ plan so far) with a colour for how far off plan it is. */
export function pacingCell(index) {
  if (index === null || index === undefined || !Number.isFinite(index)) return h('span', {}, '—');
  const off = Math.abs(index - 1);
  return h('span', { class: off <= 0.1 ? 'good' : off <= 0.3 ? 'fair' : 'poor' }, index.toFixed(2));
}
