import type { CounterStore, ShardPorts } from '../../shards/ports.js';
import { sfc32 } from '../../shards/rng.js';
import { Shard } from '../../shards/shard.js';
import { dayBounds } from '../../shards/time/zone.js';
import type { CampaignConfig } from '../../shards/types.js';
import { OpWriter, ResultReader } from '../../shards/wire.js';
import { MemoryStore } from '../store/memory.js';
import { shadowReport, type ShadowSimReport } from './run.js';

/**
 * The simulator's shard driven by recorded traffic instead of generated traffic: the production
 * shard actor (shards/shard.ts) with a clock set to each batch's instant and the in-memory store,
 * fed exactly the batches a client sent a real pacer. It answers what the shadow of a campaign
 * (shards/pacing/shadow.ts) would have done on that traffic, measured as the day report measures
 * it (test/sim/shadow-report.test.ts compares the two).
 */
export type ReplayOp =
  | { kind: 'decide'; bidMicros: number; requestId: string }
  | { kind: 'spend'; amountMicros: number; eventId: string; requestId: string }
  | { kind: 'release'; requestId: string };

export interface ReplayBatch {
  atMs: number;
  ops: ReplayOp[];
}

export interface ReplayDecision {
  reason: number;
  flags: number;
  wouldReason: number;
}

export interface ReplayResult {
  decisions: ReplayDecision[];
  /** The shadow's figures of the campaign's local day of the first batch. */
  shadow: ShadowSimReport;
}

export async function replayShadow(config: CampaignConfig, createdAtMs: number, batches: readonly ReplayBatch[], reservationTtlMs: number): Promise<ReplayResult> {
  let now = createdAtMs;
  const store: CounterStore = new MemoryStore();
  const ports: ShardPorts = {
    clock: { now: () => now },
    random: sfc32(1),
    timers: { after: () => () => undefined },
    store,
    sendResults: () => undefined,
    emit: () => undefined,
    batchIdPrefix: 'replay',
  };
  const shard = new Shard(ports, { reservationTtlMs, flushIntervalMs: 0 });
  await shard.upsert(config);
  const campaign = shard.campaigns.get(config.id);
  if (campaign === undefined || campaign.shadow === null) throw new Error('replayShadow needs a campaign with a shadow (shadow or mode SHADOW)');
  const day = dayBounds(config.timezone, batches[0]?.atMs ?? createdAtMs);
  const minutes = Math.ceil((day.endMs - day.startMs) / 60_000);
  const spentByMinute = new Float64Array(minutes);
  const counts = { decisions: 0, allowed: 0, estimatedMicros: 0, deniedByReason: {} as Record<string, number> };
  const collect = (atMs: number): void => {
    for (const s of shard.summaries()) {
      const sh = s.shadow;
      const m = Math.floor((atMs - day.startMs) / 60_000);
      if (sh === undefined || m < 0 || m >= minutes) continue;
      spentByMinute[m]! += sh.settledMicros;
      counts.decisions += sh.decisions;
      counts.allowed += sh.allowed;
      counts.estimatedMicros += sh.estimatedMicros;
      for (const [k, v] of Object.entries(sh.deniedByReason)) counts.deniedByReason[k] = (counts.deniedByReason[k] ?? 0) + v;
    }
  };
  const writer = new OpWriter();
  const reader = new ResultReader();
  const decisions: ReplayDecision[] = [];
  let slot = 0;
  for (const b of batches) {
    now = Math.max(now, b.atMs);
    for (const op of b.ops) {
      if (op.kind === 'decide') writer.decide(slot++, config.id, op.bidMicros, op.requestId);
      else if (op.kind === 'spend') writer.spend(slot++, config.id, op.amountMicros, op.eventId, op.requestId);
      else writer.release(slot++, config.id, op.requestId);
    }
    reader.reset(shard.handleOps(writer.take()));
    while (reader.next()) if (reader.kind === 1) decisions.push({ reason: reader.code, flags: reader.flags, wouldReason: reader.wouldReason });
    // The admin thread files summaries under the minute it collects them in.
    collect(now);
  }
  await shard.drain();
  return { decisions, shadow: shadowReport(campaign, day.startMs, day.endMs, spentByMinute, counts) };
}
