import type { Campaign, CampaignHooks, Counters } from '../campaign.js';
import { Campaign as CampaignActor } from '../campaign.js';
import { limits } from '../limits.js';
import { Reason, type ReasonCode } from '../reasons.js';
import { sfc32 } from '../rng.js';
import type { CampaignConfig, Strategy } from '../types.js';
import type { GlobalProfile } from './profile.js';
import { shadowConfigOf } from './shadow-config.js';

export { shadowConfigOf, wantsShadow } from './shadow-config.js';

/**
 * Shadow mode and A/B (docs/pacing.md "Shadow mode and A/B"): a second pacer for one campaign,
 * run in the campaign's own shard actor, that sees every decision and never enforces one.
 *
 * The shadow is a campaign actor of its own (shards/campaign.ts, the same code that paces real
 * campaigns: plan, controller, breaker, hard cap) whose configuration is the campaign's with the
 * shadow's strategy and parameters (`shadow`), or the campaign's own strategy when the campaign is
 * in `mode: "SHADOW"` without a `shadow`. Its money is would-be money: what the campaign would
 * have spent had the shadow decided. How its counters evolve:
 *
 * - it starts from the campaign's settled spend of the day (and earlier flight days) when it is
 *   created (a configuration that adds it, a restart, the shard's first load): what happened
 *   before it existed is taken to be what it would have done;
 * - every decision the real campaign receives is decided by the shadow too, with its own seeded
 *   generator (so that the real campaign's draws are the same with and without a shadow);
 * - a decision the shadow allows while the real campaign holds a reservation for the same
 *   requestId (it allowed it too, or it is in SHADOW mode and allows everything) is reserved by
 *   the shadow under that requestId; the real outcome of the bid then settles the shadow's
 *   reservation as well: the win's price is would-be spend, a loss notice or an expiry releases it.
 *   This is exact: the shadow would have made the same bid and seen the same auction;
 * - a decision the shadow allows that the real campaign did not reserve (it denied it, or the bid
 *   carried no requestId) has no outcome anyone will report. Its spend is estimated when it is
 *   allowed: the real campaign's spend per allowed decision (the controller's smoothed estimate,
 *   which holds the win rate and the price; before it is known, today's settled ÷ allowed; before
 *   any spend, 0), added at once as one would-be spend event, its fraction carried to the next
 *   one so that no micro is lost to rounding. `estimatedMicros` counts what was estimated;
 * - a spend the real campaign receives for a bid the shadow denied is not the shadow's.
 *
 * So in SHADOW mode (the real campaign allows every bid) the shadow's spend is observed, never
 * estimated, whenever bids carry requestIds; with a shadow strategy beside an enforcing campaign,
 * the bids only the shadow would have made are estimated. Not counted: a spend the store finds to
 * be a duplicate after the shard applied it (rare: resends across a restart) stays in the shadow's
 * would-be spend; after a restart the shadow starts again from the real settled spend.
 *
 * Memory: a campaign without a shadow holds one null field; a shadow costs one more campaign
 * actor (its plan is shared with campaigns of the same shape), allocated with the configuration
 * that asks for it and dropped with the one that stops asking.
 */
export class Shadow {
  readonly sim: Campaign;
  /** Would-be spend estimated for decisions whose outcome nobody reports (micros, integer). */
  estimatedMicros = 0;
  estimatedDecisions = 0;
  /** Estimated since the last summary (the minute history). */
  private estimatedSince = 0;
  private carry = 0;
  private readonly random: () => number;
  /** The real campaign is in mode SHADOW: it enforces nothing, and this shadow's answers are its wouldReason. */
  unenforced: boolean;

  constructor(config: CampaignConfig, real: Campaign, nowMs: number, hooks: CampaignHooks) {
    this.unenforced = config.mode === 'SHADOW';
    this.sim = new CampaignActor(shadowConfigOf(config), nowMs, shadowHooks(hooks));
    this.sim.restore(real.settled, real.lifetimeBefore, nowMs);
    this.random = sfc32(seedOf(config.id), 0x5bd1e995, 0x68e31da4, 0xb5297a4d);
  }

  get strategy(): Strategy {
    return this.sim.config.strategy;
  }

  /** The shadow is dropped: its actor's rows go back to the shard's columns. */
  dispose(): void {
    this.sim.dispose();
  }

  reconfigure(config: CampaignConfig, nowMs: number): void {
    this.unenforced = config.mode === 'SHADOW';
    this.sim.reconfigure(shadowConfigOf(config), nowMs);
  }

  /**
   * Decides the real campaign's decision again, as the shadow strategy, after the real campaign
   * decided it (its reservation tells whether the outcome will be observed). Returns the shadow's
   * reason: Reason.OK when it would have allowed.
   */
  decide(real: Campaign, nowMs: number, bidMicros: number, requestId: string, ttlMs: number): ReasonCode {
    const sim = this.sim;
    const observed = requestId !== '' && real.reservations.has(requestId);
    const reason = sim.decide(nowMs, bidMicros, observed ? requestId : '', this.random, ttlMs, true);
    if (reason === Reason.OK && !observed) this.estimate(real, nowMs);
    return reason;
  }

  private estimate(real: Campaign, nowMs: number): void {
    const allowed = real.allowedToday;
    const value = real.controller.valuePerAllowed ?? (allowed > 0 ? real.settledMicrosToday / allowed : 0);
    const exact = value + this.carry;
    const amount = Math.max(0, Math.floor(exact));
    this.carry = exact - amount;
    this.estimatedDecisions++;
    if (amount <= 0 || this.sim.settled + amount > limits.dayTotalMicrosMax) return;
    this.sim.applySpend(nowMs, amount, '');
    this.estimatedMicros += amount;
    this.estimatedSince += amount;
  }

  /** The real campaign applied a spend: the shadow's when it holds the reservation the spend settles. */
  spent(nowMs: number, amountMicros: number, requestId: string): void {
    if (requestId === '' || !this.sim.reservations.has(requestId)) return;
    this.sim.applySpend(nowMs, amountMicros, requestId);
    // The shadow has no store to confirm its events: the hold of an under-bid spend ends at once.
    const s = this.sim.takeLastSettled();
    if (s !== null) this.sim.releaseHold(s.hold);
  }

  released(requestId: string): void {
    this.sim.release(requestId);
  }

  expired(requestId: string, expiresAtMs: number): void {
    this.sim.expire(requestId, expiresAtMs);
  }

  /** Counters since the last summary, and the spend estimated among them. */
  takeSummary(): { counters: Counters | null; estimatedMicros: number } {
    const estimatedMicros = this.estimatedSince;
    this.estimatedSince = 0;
    return { counters: this.sim.takeSummary(), estimatedMicros };
  }

  status(nowMs: number): ShadowStatus {
    const s = this.sim.status(nowMs);
    return {
      strategy: s.strategy,
      settledMicros: s.settledMicros,
      reservedMicros: s.reservedMicros,
      estimatedMicros: this.estimatedMicros,
      estimatedDecisions: this.estimatedDecisions,
      throttle: s.throttle,
      pacingIndex: s.pacingIndex,
      planMicros: s.planMicros,
      breakerState: s.breaker.state,
      decisions: s.counters.decisions,
      allowed: s.counters.allowed,
      deniedByReason: s.counters.deniedByReason,
    };
  }
}

/** The shadow's part of a campaign's status (GET /v1/campaigns/:id/status). */
export interface ShadowStatus {
  strategy: Strategy;
  /** Would-be settled spend today: observed wins of bids the shadow allowed, plus estimates. */
  settledMicros: number;
  reservedMicros: number;
  estimatedMicros: number;
  estimatedDecisions: number;
  throttle: number;
  pacingIndex: number | null;
  planMicros: number;
  breakerState: string;
  decisions: number;
  allowed: number;
  deniedByReason: Record<string, number>;
}

/**
 * Hooks of the shadows of one shard: they plan ADAPTIVE by the shard's profile but never teach it
 * (the real campaign does, from the same traffic), emit no breaker or rollover events (those are
 * the real campaign's), and keep their reservations out of the shard's limit.
 */
const hooksByProfile = new WeakMap<GlobalProfile, CampaignHooks>();
function shadowHooks(real: CampaignHooks): CampaignHooks {
  const global = real.globalProfile;
  let h = hooksByProfile.get(global);
  if (h === undefined) {
    const readOnly = Object.create(global) as GlobalProfile;
    readOnly.add = () => undefined;
    // The shadow's numbers are rows of the real campaign's shard (given back by dispose).
    h = { globalProfile: readOnly, liveReservations: { count: 0 }, onBreaker: () => undefined, onRollover: () => undefined, ...(real.columns === undefined ? {} : { columns: real.columns }) };
    hooksByProfile.set(global, h);
  }
  return h;
}

/** FNV-1a of the campaign ID: the shadow's generator replays the same draws for the same campaign. */
function seedOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
