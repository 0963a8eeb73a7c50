import t from 'tap';
import { Reason, reasonNames } from '../../shards/reasons.js';
import { sfc32 } from '../../shards/rng.js';
import { parseCampaign } from '../../src/model/campaign.js';
import { type ReplayBatch, type ReplayOp, replayShadow } from '../../src/sim/replay.js';
import { auth, createCampaign, get, post, startPacer, status } from '../helpers/server.js';

/**
 * How issue 12 judges shadow mode: "Shadow mode never denies a decision, and its report's would-be
 * figures match a simulation of the shadow strategy on the same traffic."
 *
 * A real pacer (child process, HTTP) runs a campaign in mode SHADOW whose EVEN plan spans a
 * 36-second flight, so that a whole plan fits in a test. Seeded traffic goes through the hot path
 * in batches (POST /v1/decide/batch), every won bid's spend follows (POST /v1/spend/batch) and
 * every lost one is released, as an exchange would. Every batch sent is recorded with the instant
 * it was sent, and the simulator's shard (src/sim/replay.ts: the production shard actor on a
 * simulated clock) replays the same batches at those instants. The day report's shadow side must
 * then match the replay.
 *
 * The match is within a tolerance, not exact: the real shard reads its own clock when a batch
 * arrives, some milliseconds after the test recorded it, and the controller's rate estimates use
 * those instants. The tolerances below are what those milliseconds can move (measured: the
 * figures the test prints); a shadow counted from the wrong counters (the real spend, or no spend)
 * misses them by far (the real side spends several times the budget here).
 */
const tickMs = 130;
const flightMs = 36_000;
const trafficMs = 33_000;
const perTick = 24;
const budget = 300_000;
const bid = 1_000;
const price = 700;
const winRate = 0.4;
const ttlMs = 600_000;

t.test('SHADOW mode never denies, and the report shows would-be figures that match a simulation of the same traffic', async (t) => {
  const pacer = await startPacer({ env: { PACER_HISTORY_FLUSH_MS: '200', PACER_RESERVATION_TTL_MS: String(ttlMs), PACER_SHARDS: '1' } });
  t.teardown(() => pacer.stop());
  const id = 'shadow-judge';
  const startMs = Math.ceil(Date.now() / 1000) * 1000 + 1000;
  const body = {
    id,
    dailyBudgetMicros: budget,
    strategy: 'EVEN',
    mode: 'SHADOW',
    timezone: 'UTC',
    startAt: new Date(startMs).toISOString(),
    endAt: new Date(startMs + flightMs).toISOString(),
    breaker: { enabled: false },
  };
  const createdAtMs = Date.now();
  const created = await createCampaign(pacer, body);
  t.equal(created.body.campaign.mode, 'SHADOW');
  const version = created.body.campaign.version as number;
  while (Date.now() < startMs) await sleep(20);

  const rng = sfc32(12);
  const batches: ReplayBatch[] = [];
  let seq = 0;
  let denied = 0;
  let wouldAllow = 0;
  let wouldPaced = 0;
  let answers = 0;
  let failed = 0;
  const sendAt = (ms: number): number => Math.max(ms, Date.now());
  for (let tick = 0; startMs + tick * tickMs < startMs + trafficMs; tick++) {
    const due = startMs + tick * tickMs;
    while (Date.now() < due) await sleep(Math.min(10, due - Date.now()));
    const requests = Array.from({ length: perTick }, () => ({ campaignId: id, bidMicros: bid, requestId: `q${seq++}` }));
    batches.push({ atMs: sendAt(due), ops: requests.map((r): ReplayOp => ({ kind: 'decide', bidMicros: r.bidMicros, requestId: r.requestId })) });
    const answered = await post(pacer.url, '/v1/decide/batch', { requests });
    if (answered.status !== 200) failed++;
    const wins: { campaignId: string; eventId: string; amountMicros: number; requestId: string }[] = [];
    const losses: string[] = [];
    (answered.body.decisions as any[]).forEach((a, i) => {
      answers++;
      if (a.allow !== true) denied++;
      if (a.wouldAllow === true) wouldAllow++;
      if (a.wouldReason === 'PACED') wouldPaced++;
      if (rng() < winRate) wins.push({ campaignId: id, eventId: `e-${requests[i]!.requestId}`, amountMicros: price, requestId: requests[i]!.requestId });
      else losses.push(requests[i]!.requestId);
    });
    const ops: ReplayOp[] = [
      ...wins.map((w): ReplayOp => ({ kind: 'spend', amountMicros: w.amountMicros, eventId: w.eventId, requestId: w.requestId })),
      ...losses.map((requestId): ReplayOp => ({ kind: 'release', requestId })),
    ];
    batches.push({ atMs: sendAt(due), ops });
    await Promise.all([
      wins.length > 0 ? post(pacer.url, '/v1/spend/batch', { events: wins }) : Promise.resolve(null),
      ...losses.map((requestId) => post(pacer.url, '/v1/release', { campaignId: id, requestId })),
    ]);
  }
  t.equal(failed, 0, 'every decide batch answered 200');
  t.equal(denied, 0, `SHADOW mode denied none of ${answers} decisions`);
  t.ok(wouldAllow > 0 && wouldPaced > 0, `it would have allowed ${wouldAllow} and paced ${wouldPaced}`);

  // The history reaches the report within a few flushes.
  let report: any = null;
  for (let i = 0; i < 100; i++) {
    const r = await get(pacer.adminUrl, `/v1/campaigns/${id}/report`, auth);
    report = r.body;
    if (report.shadow !== null && report.shadow.decisions === answers) break;
    await sleep(200);
  }
  const live = await status(pacer, id);
  t.ok(report.shadow, 'the report has a shadow side');
  t.equal(report.mode, 'SHADOW');
  t.equal(report.shadow.decisions, answers, 'the shadow decided every decision');
  t.equal(report.shadow.strategy, 'EVEN');
  t.equal(report.shadow.allowed, wouldAllow, 'the report counts the answers that said wouldAllow');
  t.equal(live.shadow.allowed, wouldAllow, 'so does the status');
  t.ok(report.spentMicros > 2 * budget, `the real side, unpaced, spent ${report.spentMicros} of ${budget}`);
  t.equal(report.shadow.estimatedMicros, 0, 'every bid carried a requestId: nothing was estimated');

  const config = parseCampaign(body, version);
  const sim = await replayShadow(config, createdAtMs, batches, ttlMs);
  t.equal(sim.decisions.length, answers);
  t.ok(sim.decisions.every((d) => d.reason === Reason.OK), 'the replay never denies either');
  const s = sim.shadow;
  t.comment(`report: allowed ${report.shadow.allowed}, would-be spend ${report.shadow.spentMicros}, slot nRMSE ${report.shadow.slotNrmse}, delivery ${report.shadow.deliveryRatio}, exhausted ${report.shadow.exhaustedAt}`);
  t.comment(`replay: allowed ${s.allowed}, would-be spend ${s.spentMicros}, slot nRMSE ${s.slotNrmse}, delivery ${s.deliveryRatio}, exhausted ${s.exhaustedAtMs === null ? null : new Date(s.exhaustedAtMs).toISOString()}`);
  t.equal(s.decisions, report.shadow.decisions);
  t.ok(Math.abs(s.allowed - report.shadow.allowed) <= 0.05 * s.allowed, `would-be allowed: report ${report.shadow.allowed}, simulation ${s.allowed}`);
  t.ok(Math.abs(s.spentMicros - report.shadow.spentMicros) <= 0.05 * budget, `would-be spend: report ${report.shadow.spentMicros}, simulation ${s.spentMicros}`);
  t.ok(Math.abs(s.deliveryRatio - report.shadow.deliveryRatio) <= 0.05, 'delivery ratio');
  t.ok(Math.abs(s.slotNrmse - report.shadow.slotNrmse) <= 0.05 * Math.max(1, s.slotNrmse), 'slot pacing error');
  t.ok(report.shadow.spentMicros <= budget, 'the shadow, which enforces its own plan and cap, stays within the budget');
  // Exhaustion is would-be spend reaching 99% of the budget, in the report as in the simulation; two
  // spends within the tolerance may still fall either side of that line, so each is checked by it.
  t.equal(report.shadow.exhaustedAt !== null, report.shadow.spentMicros >= 0.99 * budget, 'the report exhausted by its would-be spend');
  t.equal(s.exhaustedAtMs !== null, s.spentMicros >= 0.99 * budget, 'the simulation too');
  if (s.exhaustedAtMs !== null && report.shadow.exhaustedAt !== null) {
    t.ok(Math.abs(Date.parse(report.shadow.exhaustedAt) - s.exhaustedAtMs) <= 60_000, 'exhaustion time, to the minute');
  }
  // The same reasons, in about the same numbers.
  for (const name of Object.keys(s.deniedByReason)) t.ok(reasonNames.includes(name as never) && name in report.shadow.deniedByReason, `${name} in both`);
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
