/**
 * Control-plane messages between threads (structured clone). The hot path does not use these: it
 * travels as binary batches (shards/wire.ts) between the router and the shards.
 *
 * One union per receiver, one handler per kind, each switch exhaustive.
 */
import type { FittedProfile } from '../shards/pacing/profile.js';
import type { CampaignSnapshot, FlushBatch, FlushOutcome, ShardEvent } from '../shards/ports.js';
import type { BudgetFloor, CampaignSummary } from '../shards/shard.js';
import type { CampaignConfig, CampaignStatus } from '../shards/types.js';
import type { JsonMetrics } from './metrics.js';

/** Admin thread → shard, over the admin's MessagePort to that shard. */
export type AdminToShard =
  | { type: 'upsert'; corr: number; config: CampaignConfig }
  // Startup: many campaigns at once (limits.adminLoadBatchCampaigns), each loaded as upsert would;
  // answered with the IDs whose counters could not be loaded (the admin sends those again).
  | { type: 'load'; corr: number; configs: CampaignConfig[] }
  | { type: 'status'; corr: number; campaignId: string }
  | { type: 'resetBreaker'; corr: number; campaignId: string }
  // A budget operation: applied unless the budget named by floor would end below committed money.
  | { type: 'budget'; corr: number; config: CampaignConfig; floor: BudgetFloor }
  | { type: 'summaries'; corr: number }
  | { type: 'metrics'; corr: number }
  // Fitted traffic profiles (src/profile/service.ts): each campaign's replaces what it learned;
  // global, when not null, replaces the shard's fallback. Answered with how many were loaded.
  | { type: 'profiles'; corr: number; profiles: { campaignId: string; profile: FittedProfile }[]; global: FittedProfile | null }
  // The admin has sent every campaign of its catalogue (startup): unknown now means unknown.
  | { type: 'catalogueLoaded'; corr: number }
  // Answers to the shard's own store requests (embedded store), correlated by the shard's corr.
  | { type: 'storeReply'; corr: number; ok: true; value: FlushOutcome | CampaignSnapshot }
  | { type: 'storeReply'; corr: number; ok: false; error: string };

/** Shard → admin thread. */
export type ShardToAdmin =
  | { type: 'reply'; corr: number; ok: true; value: unknown }
  | { type: 'reply'; corr: number; ok: false; error: string }
  | { type: 'event'; shard: number; event: ShardEvent }
  // Embedded store: the shard's CounterStore calls, served by the admin thread's database.
  | { type: 'storeApply'; corr: number; batch: FlushBatch }
  | { type: 'storeLoad'; corr: number; campaignId: string; day: string; flightStartDay: string | null }
  // Sent once by a stopping shard after its last flush: the history of its last seconds.
  | { type: 'finalSummaries'; shard: number; summaries: CampaignSummary[] };

export type ShardReplyValue = CampaignStatus | CampaignStatus[] | CampaignSummary[] | null | undefined;

/** Main → shard (besides binary op batches). */
export type MainToShard = { type: 'shutdown' };

/** Shard → main (besides binary result batches). */
export type ShardToMain =
  | { type: 'ready' }
  | { type: 'degraded'; degraded: boolean; reason: string }
  | { type: 'drained' }
  | { type: 'fatal'; message: string };

/** Main → admin thread. */
export type MainToAdmin =
  | { type: 'shutdown' }
  // One part per thread main answers for: itself, or itself and every router thread.
  | { type: 'metrics'; corr: number; metrics: JsonMetrics[] }
  // The pacer's store health changed (any shard's counter store, or the configuration database): for /v1/live.
  | { type: 'health'; degraded: boolean; reason: string | null };

/** Admin thread → main. */
export type AdminToMain =
  | { type: 'listening'; port: number }
  // startupMs: how long each startup step took (spool replay, reading the catalogue, loading the
  // campaigns on their shards, the stored profiles), logged with 'campaign configuration loaded'.
  | { type: 'ready'; campaigns: number; startupMs: Record<string, number> }
  | { type: 'degraded'; degraded: boolean; reason: string }
  // The instance registry (Redis store; src/store/instances.ts, run by the admin thread): the
  // conflict that keeps this instance from serving, or null once there is none; giveWay: serving
  // already, this instance registered after a live one it conflicts with and must stop (exit 78).
  | { type: 'instance'; conflict: string | null; giveWay: boolean }
  | { type: 'metricsRequest'; corr: number }
  | { type: 'stopped' }
  /** uncaught: an exception escaped every handler of the admin thread (src/thread-guard.ts; exit 71). */
  | { type: 'fatal'; message: string; uncaught?: boolean };

/**
 * Main → router thread (PACER_ROUTERS > 1; src/router/worker.ts). With one router it runs on the
 * main thread and reads the same state directly.
 */
export type MainToRouter =
  // Listen on this port (every router thread on the same one: the kernel spreads connections).
  | { type: 'listen'; port: number }
  // What /readyz and /healthz answer; acknowledged, so main announces ready only once every
  // router answers ready.
  | { type: 'state'; seq: number; notReady: string | null; degraded: string | null }
  | { type: 'metrics'; corr: number }
  // A shard thread is gone: fail what waits on it.
  | { type: 'shardExited'; shard: number }
  // Stop accepting, answer what is in flight (until deadlineMs, wall clock), close every connection.
  | { type: 'stop'; deadlineMs: number };

/** Router thread → main. */
export type RouterToMain =
  | { type: 'listening'; port: number }
  | { type: 'listenFailed' }
  | { type: 'stateApplied'; seq: number }
  | { type: 'metrics'; corr: number; metrics: JsonMetrics }
  // Stopped: nothing in flight (or the deadline passed with `pending` unanswered), connections closed.
  | { type: 'drained'; pending: number }
  /** uncaught: an exception escaped every handler of the router thread (src/thread-guard.ts; exit 71). */
  | { type: 'fatal'; message: string; uncaught?: boolean };
