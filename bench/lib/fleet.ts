import type { RedisClient } from '../../src/store/redis.js';
import { rng } from '../../test/helpers/load.js';

/**
 * Traffic for several pacer instances that share budgets (test/cluster/, bench/cluster.ts): bid
 * requests split between the instances by share (as a load balancer weighted 70/20/10 would),
 * win notices after a short auction delay, mostly to the instance that decided and a share of them
 * to any live instance, loss notices as releases. A spend that gets no answer (its instance was
 * killed) is resent to another live instance under the same event ID until one answers, so every
 * win is acknowledged once; `ackedMicros` is what the instances acknowledged, per campaign.
 */
export interface FleetTraffic {
  urls: string[];
  /** Share of the bid requests each instance receives (summing to 1). */
  shares: number[];
  campaigns: string[];
  bidMicros: number;
  /** Concurrent bid requests, and decisions per request (POST /v1/decide/batch). */
  concurrency: number;
  batch: number;
  durationMs: number;
  /** Share of allowed bids that win (the rest are released), and of wins reported elsewhere. */
  winShare: number;
  elsewhereShare: number;
  seed: number;
  /** Instances to leave out from now on (killed): their share goes to the next live one. */
  dead?: Set<number>;
  /** Stop early, e.g. once every budget is spent. */
  stop?: () => boolean;
}

export interface FleetResult {
  decisions: number;
  allowed: number;
  reasons: Record<string, number>;
  ackedMicros: Map<string, number>;
  /** Wins never acknowledged by any instance (should be none). */
  unresolved: number;
  elapsedMs: number;
}


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function postJson(url: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text) };
}

export async function runFleet(o: FleetTraffic): Promise<FleetResult> {
  const r = rng(o.seed);
  const dead = o.dead ?? new Set<number>();
  const result: FleetResult = { decisions: 0, allowed: 0, reasons: {}, ackedMicros: new Map(), unresolved: 0, elapsedMs: 0 };
  const live = (i: number): number => {
    for (let k = 0; k < o.urls.length; k++) {
      const j = (i + k) % o.urls.length;
      if (!dead.has(j)) return j;
    }
    throw new Error('no live instance');
  };
  const byShare = (): number => {
    const u = r();
    let acc = 0;
    for (let i = 0; i < o.shares.length; i++) {
      acc += o.shares[i]!;
      if (u < acc) return live(i);
    }
    return live(o.shares.length - 1);
  };
  let seq = 0;
  const notices: Promise<void>[] = [];
  const spend = async (first: number, campaignId: string, eventId: string, requestId: string, amountMicros: number): Promise<void> => {
    let to = first;
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        const a = await postJson(`${o.urls[to]}/v1/spend`, { campaignId, eventId, amountMicros, requestId });
        if (a.status === 200 && (a.body.status === 'applied' || a.body.status === 'duplicate')) {
          result.ackedMicros.set(campaignId, (result.ackedMicros.get(campaignId) ?? 0) + amountMicros);
          return;
        }
      } catch {
        // No answer: the instance may have died with the event stored or not; a resend decides.
      }
      await sleep(20 + attempt * 20);
      to = live(dead.has(to) ? to + 1 : to);
    }
    result.unresolved++;
  };
  const notice = async (at: number, campaignId: string, requestId: string, bid: number): Promise<void> => {
    await sleep(5 + Math.floor(r() * 25));
    const to = r() < o.elsewhereShare ? byShare() : live(at);
    if (r() < o.winShare) {
      const amount = Math.max(1, Math.round(bid * (0.5 + r() * 0.5)));
      await spend(to, campaignId, `ev-${requestId}`, requestId, amount);
    } else {
      await postJson(`${o.urls[to]}/v1/release`, { campaignId, requestId }).catch(() => undefined);
    }
  };
  const started = Date.now();
  const worker = async (): Promise<void> => {
    while (Date.now() - started < o.durationMs && !(o.stop?.() ?? false)) {
      const at = byShare();
      const requests = [];
      for (let i = 0; i < o.batch; i++) {
        const campaignId = o.campaigns[Math.floor(r() * o.campaigns.length)]!;
        requests.push({ campaignId, bidMicros: o.bidMicros, requestId: `rq-${o.seed}-${++seq}` });
      }
      let answer: { status: number; body: any };
      try {
        answer = await postJson(`${o.urls[at]}/v1/decide/batch`, { requests });
      } catch {
        await sleep(10);
        continue;
      }
      if (answer.status !== 200) {
        await sleep(10);
        continue;
      }
      const decisions = answer.body.decisions as { allow: boolean; reason: string; reserved: boolean }[];
      for (let i = 0; i < decisions.length; i++) {
        const d = decisions[i]!;
        result.decisions++;
        result.reasons[d.reason] = (result.reasons[d.reason] ?? 0) + 1;
        if (!d.allow) continue;
        result.allowed++;
        if (d.reserved) notices.push(notice(at, requests[i]!.campaignId, requests[i]!.requestId, o.bidMicros));
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  await Promise.all(notices);
  result.elapsedMs = Date.now() - started;
  return result;
}

/** Settled plus every live (unexpired) stored reservation of a campaign-day, read in one atomic script run. */
const committedScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local settled = tonumber(redis.call('GET', KEYS[1]) or '0')
local total = settled
local res = redis.call('HVALS', KEYS[2])
for i = 1, #res do
  local a, e = string.match(res[i], '^(%d+):(%d+)')
  if tonumber(e) > now then total = total + tonumber(a) end
end
return { total, settled }
`;

/** [settled + reserved, settled] of a campaign-day in the store, at one instant. */
export async function committedInStore(redis: RedisClient, prefix: string, campaignId: string, day: string): Promise<[number, number]> {
  const tag = `${prefix}:{${campaignId}}:`;
  const r = (await redis.eval(committedScript, 2, `${tag}d:${day}`, `${tag}res`)) as [number, number];
  return [Number(r[0]), Number(r[1])];
}
