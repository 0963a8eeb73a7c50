import { Agent, request } from 'node:http';

/**
 * The load generator of bench/soak.ts, in its own process (forked: it shares no event loop and no
 * core's worth of JavaScript with the pacer). Steady mixed load over HTTP for BENCH_DURATION_S:
 * auctions at a rate that makes BENCH_RATE operations a second in all, each a decision with a bid
 * and a requestId (so an allowed one reserves), then for a reservation either a spend settling it
 * (unique eventId; a share resent as duplicates) or a release; a budget change (`add`) on a random
 * campaign a minute; a new campaign created a second (it joins the traffic once created).
 *
 * Spends answered 503 or lost on the network are resent with the same eventId until answered (so
 * every event's fate is known and the totals can be exact); 503s are counted apart from errors.
 * At the end it waits for everything in flight and prints one JSON line: counts, and per campaign
 * the sum of the distinct events answered "applied" and the budget adds that were acknowledged.
 *
 * Input (env): BENCH_URL, BENCH_ADMIN_URL, BENCH_TOKEN, BENCH_RATE, BENCH_DURATION_S,
 * BENCH_CAMPAIGNS (JSON array of IDs), BENCH_BUDGET_MICROS (each campaign's starting daily budget).
 */
const url = new URL(process.env.BENCH_URL!);
const adminUrl = new URL(process.env.BENCH_ADMIN_URL!);
const token = process.env.BENCH_TOKEN!;
const rate = Number(process.env.BENCH_RATE);
const durationMs = Number(process.env.BENCH_DURATION_S) * 1000;
const campaigns = JSON.parse(process.env.BENCH_CAMPAIGNS!) as string[];
const budgetMicros = Number(process.env.BENCH_BUDGET_MICROS);
const run = Date.now().toString(36);

// Operations per auction on average: the decision, plus a spend (70% of reservations) with 5% of
// spends resent, or a release (the other 30%).
const spendShare = 0.7;
const dupShare = 0.05;
const opsPerAuction = 1 + spendShare * (1 + dupShare) + (1 - spendShare);
// A bound on auctions in flight: if the pacer stalls, the generator stops adding work (counted as
// `skipped`) instead of piling up sockets; far above what a healthy pacer holds at these rates.
const auctionsInFlightMax = 2000;

const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const counts = {
  auctions: 0,
  ops: 0,
  decisions: 0,
  reserved: 0,
  spends: 0,
  applied: 0,
  duplicates: 0,
  dupSent: 0,
  dupApplied: 0,
  releases: 0,
  budgetChanges: 0,
  created: 0,
  errors: 0,
  overload503: 0,
  retries: 0,
  skipped: 0,
};
const errorSamples: string[] = [];
const appliedMicros: Record<string, number> = Object.fromEntries(campaigns.map((c) => [c, 0]));
const budgetAddMicros: Record<string, number> = {};
const newCampaigns: string[] = [];
let inFlight = 0;

interface Answer {
  status: number;
  body: any;
}

function send(base: URL, method: string, path: string, body: unknown, admin = false): Promise<Answer> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method,
        path,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(data),
          ...(admin ? { authorization: `Bearer ${token}` } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let parsed: unknown = null;
          try {
            parsed = text === '' ? null : JSON.parse(text);
          } catch {
            parsed = text;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(data);
  });
}

/** Counts an answer: 2xx is fine, a documented 503 is overload, anything else an error. */
function judge(what: string, a: Answer): boolean {
  counts.ops++;
  if (a.status >= 200 && a.status < 300) return true;
  if (a.status === 503) counts.overload503++;
  else {
    counts.errors++;
    if (errorSamples.length < 20) errorSamples.push(`${what} ${a.status} ${JSON.stringify(a.body).slice(0, 200)}`);
  }
  return false;
}

function networkError(what: string, e: unknown): void {
  counts.ops++;
  counts.errors++;
  if (errorSamples.length < 20) errorSamples.push(`${what} ${(e as Error).message}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sends a spend until it is answered 2xx (or a non-503 error): the event's fate must be known. */
async function spend(campaignId: string, eventId: string, amountMicros: number, requestId: string): Promise<string | null> {
  for (let attempt = 0; attempt < 60; attempt++) {
    if (attempt > 0) {
      counts.retries++;
      await sleep(1000);
    }
    let a: Answer;
    try {
      a = await send(url, 'POST', '/v1/spend', { campaignId, eventId, amountMicros, requestId });
    } catch (e) {
      networkError('spend', e);
      continue;
    }
    if (judge('spend', a)) {
      counts.spends++;
      const status = (a.body as { status: string }).status;
      if (status === 'applied') appliedMicros[campaignId] = (appliedMicros[campaignId] ?? 0) + amountMicros;
      return status;
    }
    if (a.status !== 503) return null;
  }
  return null;
}

async function auction(campaignId: string, n: number): Promise<void> {
  const requestId = `${run}-${n}`;
  const bid = 1500;
  let d: Answer;
  try {
    d = await send(url, 'POST', '/v1/decide', { campaignId, bidMicros: bid, requestId });
  } catch (e) {
    return networkError('decide', e);
  }
  if (!judge('decide', d)) return;
  counts.decisions++;
  if ((d.body as { reserved?: boolean }).reserved !== true) return;
  counts.reserved++;
  if (Math.random() < spendShare) {
    const eventId = `${run}-e${n}`;
    const amount = 1 + Math.floor(Math.random() * bid);
    const status = await spend(campaignId, eventId, amount, requestId);
    if (status === 'applied') counts.applied++;
    else if (status === 'duplicate') counts.duplicates++;
    if (status !== null && Math.random() < dupShare) {
      counts.dupSent++;
      const again = await spend(campaignId, eventId, amount, requestId);
      if (again === 'duplicate') counts.duplicates++;
      else if (again === 'applied') counts.dupApplied++; // counted twice by the pacer: the totals will show it
    }
    return;
  }
  try {
    const r = await send(url, 'POST', '/v1/release', { campaignId, requestId });
    if (judge('release', r)) counts.releases++;
  } catch (e) {
    networkError('release', e);
  }
}

async function budgetChange(): Promise<void> {
  const id = campaigns[Math.floor(Math.random() * campaigns.length)]!;
  const add = 1_000_000 * (1 + Math.floor(Math.random() * 10));
  try {
    const a = await send(adminUrl, 'POST', `/v1/campaigns/${id}/budget`, { add, reason: 'soak' }, true);
    if (judge('budget', a)) {
      counts.budgetChanges++;
      budgetAddMicros[id] = (budgetAddMicros[id] ?? 0) + add;
    }
  } catch (e) {
    networkError('budget', e);
  }
}

async function createCampaign(k: number): Promise<void> {
  const id = `soak-new-${run}-${k}`;
  const body = { id, dailyBudgetMicros: budgetMicros, strategy: 'ASAP', breaker: { enabled: false } };
  try {
    const a = await send(adminUrl, 'POST', '/v1/campaigns', body, true);
    if (judge('create', a)) {
      counts.created++;
      appliedMicros[id] = 0;
      newCampaigns.push(id);
      campaigns.push(id);
    }
  } catch (e) {
    networkError('create', e);
  }
}

const pending = new Set<Promise<void>>();
function track(p: Promise<void>): void {
  pending.add(p);
  void p.finally(() => pending.delete(p));
}

const t0 = performance.now();
let started = 0;
// The first budget change half a minute in, so that a one-minute run has one too.
let nextMinute = 30_000;
let nextSecond = 1000;
let created = 0;
while (performance.now() - t0 < durationMs) {
  const elapsed = performance.now() - t0;
  const due = Math.floor(((elapsed / 1000) * rate) / opsPerAuction);
  while (started < due) {
    started++;
    if (inFlight >= auctionsInFlightMax) {
      counts.skipped++;
      continue;
    }
    counts.auctions++;
    inFlight++;
    const id = campaigns[Math.floor(Math.random() * campaigns.length)]!;
    track(auction(id, started).finally(() => inFlight--));
  }
  if (elapsed >= nextSecond) {
    nextSecond += 1000;
    track(createCampaign(created++));
  }
  if (elapsed >= nextMinute) {
    nextMinute += 60_000;
    track(budgetChange());
  }
  await sleep(5);
}
while (pending.size > 0) await Promise.all([...pending]);
agent.destroy();
const measuredS = (performance.now() - t0) / 1000;
process.stdout.write(
  JSON.stringify({ ...counts, opsPerS: Math.round(counts.ops / measuredS), errorSamples, appliedMicros, budgetAddMicros, newCampaigns }) + '\n',
);
