// The dashboard's entry: the login form, the header (store health, decisions per second), and the
// two pages, chosen by the URL's hash: #/ is the fleet, #/campaign/<id> one campaign.

import { api, ApiError, fleetMetrics, onUnauthorized, session } from './api.js';
import { CampaignPage } from './campaign.js';
import { FleetPage } from './fleet.js';
import { Live } from './live.js';
import { fill, h } from './ui.js';

const view = document.getElementById('view');
const healthBar = document.getElementById('health');
const logout = document.getElementById('logout');

const metricsEveryMs = 5_000;

let live = null;
let page = null;
let metricsTimer = null;
const header = { feed: 'offline', health: null, rate: null, breakersOpen: null, campaigns: null };

function renderHeader() {
  const degraded = header.health?.degraded === true;
  fill(
    healthBar,
    h('span', { class: `pill ${header.health === null ? '' : degraded ? 'pill-bad' : 'pill-good'}`, id: 'store-health' },
      header.health === null ? 'Stores: …' : degraded ? `Stores degraded: ${header.health.reason ?? 'unknown'}` : 'Stores healthy'),
    h('span', { class: 'pill', id: 'decision-rate' }, `Decisions/s: ${header.rate === null ? '…' : Math.round(header.rate).toLocaleString('en-US')}`),
    h('span', { class: `pill ${header.breakersOpen > 0 ? 'pill-warn' : ''}` }, `Breakers open: ${header.breakersOpen ?? '…'}`),
    h('span', { class: 'pill' }, `Campaigns: ${header.campaigns === null ? '…' : header.campaigns.toLocaleString('en-US')}`),
    h('span', { class: `pill ${header.feed === 'live' ? 'pill-good' : 'pill-warn'}`, id: 'feed-state' }, `Live feed: ${header.feed}`),
  );
}

/** Decisions per second from two readings of /metrics, a few seconds apart. */
function startMetrics() {
  let previous = null;
  const read = async () => {
    try {
      const m = await fleetMetrics();
      if (previous !== null && m.atMs > previous.atMs) header.rate = Math.max(0, (m.decisions - previous.decisions) / ((m.atMs - previous.atMs) / 1000));
      previous = m;
      header.breakersOpen = m.breakersOpen;
      header.campaigns = m.campaigns;
    } catch {
      header.rate = null;
    }
    renderHeader();
  };
  void read();
  metricsTimer = setInterval(read, metricsEveryMs);
}

function signOut(message) {
  session.end();
  live?.stop();
  live = null;
  page?.leave();
  page = null;
  clearInterval(metricsTimer);
  logout.hidden = true;
  fill(healthBar);
  showLogin(message);
}

function showLogin(message) {
  const error = h('p', { class: 'field-error', id: 'login-error' }, message ?? '');
  const token = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true });
  const actor = h('input', { id: 'actor', name: 'actor', type: 'text', maxlength: 200, placeholder: 'e.g. dana' });
  const form = h('form', { class: 'card login', id: 'login' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'The admin token: PACER_ADMIN_TOKEN, or the file admin-token in the pacer\'s data directory. It is kept in this tab only (sessionStorage).'),
    h('label', { for: 'token' }, 'Admin token'), token,
    h('label', { for: 'actor' }, 'Your name (optional, recorded in the audit trail)'), actor,
    error,
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    try {
      await api('GET', '/v1/campaigns?limit=1', { token: token.value });
      session.start(token.value, actor.value.trim());
      start();
    } catch (err) {
      error.textContent = err instanceof ApiError && (err.status === 401 || err.status === 403) ? 'That token is not the admin token.' : err.message;
    }
  });
  fill(view, form);
  token.focus();
}

/** Opens the page the hash names. */
function route() {
  page?.leave();
  const m = /^#\/campaign\/(.+)$/.exec(location.hash);
  page = m !== null ? new CampaignPage(view, live, decodeURIComponent(m[1])) : new FleetPage(view, live);
  page.enter();
}

function start() {
  logout.hidden = false;
  live = new Live(session.token(), {
    status: (list) => page?.onStatus(list),
    breaker: (f) => page?.onBreaker?.(f),
    budget: (f) => page?.onBudget?.(f),
    archive: (f) => page?.onArchive?.(f),
    health: (health) => {
      header.health = health;
      renderHeader();
    },
    state: (s) => {
      header.feed = s;
      renderHeader();
    },
    refused: () => signOut('The live feed refused the token; sign in again.'),
  });
  renderHeader();
  startMetrics();
  route();
}

onUnauthorized((message) => signOut(`Signed out: ${message}`));
logout.addEventListener('click', () => signOut());
window.addEventListener('hashchange', () => session.token() !== null && live !== null && route());

if (session.token() === null) showLogin();
else start();
