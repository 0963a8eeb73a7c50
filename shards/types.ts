import type { Micros } from './money.js';

/**
 * The campaign model as the data plane sees it: already validated, every default resolved
 * (src/admin/campaign-schema.ts turns API input into this). Shards receive it as a message.
 */
export const strategies = ['EVEN', 'ASAP', 'FRONT_LOADED', 'ADAPTIVE', 'AHEAD', 'CUSTOM'] as const;
export type Strategy = (typeof strategies)[number];

export const weekdays = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as const;
export type Weekday = (typeof weekdays)[number];

/** A weekly window in the campaign's local time. end ≤ start means it runs past midnight. */
export interface ScheduleWindow {
  days: Weekday[];
  /** 'HH:MM', local time. */
  start: string;
  /** 'HH:MM' or '24:00', local time. */
  end: string;
}

export interface BreakerConfig {
  enabled: boolean;
  /** Committed spend (settled + reserved) ÷ the day's budget at which CLOSED trips to OPEN. */
  tripAtFraction: number;
  /** How long OPEN denies before HALF_OPEN starts admitting again. */
  cooldownMs: number;
  /** Shares of the paced traffic HALF_OPEN admits, one per step; the last is 1. */
  halfOpenSteps: number[];
  /** Duration of each HALF_OPEN step. */
  halfOpenStepMs: number;
  /** Trip when spend over velocityWindowMs exceeds this multiple of the planned rate. */
  velocityMultiple: number;
  velocityWindowMs: number;
}

/**
 * A second strategy computed for every decision in the campaign's own shard actor, against counters
 * of its own (its would-be spend), and never enforced (shards/pacing/shadow.ts, docs/pacing.md
 * "Shadow mode and A/B"). The parameters default to the campaign's own.
 */
export interface ShadowConfig {
  strategy: Strategy;
  frontLoadedShare: number;
  aheadPercent: number;
  hourlyWeights: number[] | null;
}

/** ENFORCE: the pacer's answers are the decisions. SHADOW: every decision is allowed, the answer it would have given is recorded. */
export const campaignModes = ['ENFORCE', 'SHADOW'] as const;
export type CampaignMode = (typeof campaignModes)[number];

export interface CampaignConfig {
  id: string;
  name: string;
  status: 'ACTIVE' | 'PAUSED';
  /** The day's budget; with a lifetime budget and an end date, the cap on the daily allowance. */
  dailyBudgetMicros: Micros;
  /** IANA time zone of the campaign's day, schedule and flight dates. */
  timezone: string;
  strategy: Strategy;
  /** FRONT_LOADED: share of the budget planned for the first half of the active window. */
  frontLoadedShare: number;
  /** AHEAD: how far ahead of EVEN the plan runs, in percent. */
  aheadPercent: number;
  /** CUSTOM: 24 non-negative weights, one per local hour. */
  hourlyWeights: number[] | null;
  /** Weekly dayparting windows; null means active all day. */
  schedule: ScheduleWindow[] | null;
  /** Flight start and end as epoch ms (the API takes ISO 8601); null when open. */
  startAtMs: number | null;
  endAtMs: number | null;
  /** Total budget of the flight; null when only a daily budget applies. */
  lifetimeBudgetMicros: Micros | null;
  /** A lifetime campaign's daily allowance never exceeds this multiple of its even share. */
  catchUpMaxRatio: number;
  /** The controller never targets a spend rate above this multiple of the even rate. */
  velocityCapMultiple: number;
  breaker: BreakerConfig;
  /** Incremented by the admin on every change; shards ignore older versions. */
  version: number;
  /**
   * DELETE archived it: decisions answer CAMPAIGN_ARCHIVED, spend and releases still count (a win
   * for a bid made before the archive is real money). Absent in configurations stored before it.
   */
  archived?: boolean;
  /** ENFORCE when absent (configurations stored before shadow mode). */
  mode?: CampaignMode;
  /** The shadow strategy, or null/absent for none. */
  shadow?: ShadowConfig | null;
}

export const breakerDefaults: BreakerConfig = {
  enabled: true,
  tripAtFraction: 0.95,
  cooldownMs: 300_000,
  halfOpenSteps: [0.1, 0.25, 0.5, 1],
  halfOpenStepMs: 60_000,
  velocityMultiple: 10,
  velocityWindowMs: 60_000,
};

export const campaignDefaults = {
  status: 'ACTIVE',
  timezone: 'UTC',
  strategy: 'EVEN',
  frontLoadedShare: 0.7,
  aheadPercent: 10,
  catchUpMaxRatio: 1.5,
  velocityCapMultiple: 24,
} as const;

export type BreakerState = 'CLOSED' | 'OPEN' | 'HALF_OPEN' | 'EXHAUSTED';

/** A campaign's state as the admin API shows it. Money in micros. */
export interface CampaignStatus {
  campaignId: string;
  version: number;
  day: string;
  timezone: string;
  budgetMicros: number;
  settledMicros: number;
  reservedMicros: number;
  remainingMicros: number;
  reservations: number;
  strategy: Strategy;
  throttle: number;
  pacingIndex: number;
  planMicros: number;
  active: boolean;
  inactiveReason: 'OUTSIDE_SCHEDULE' | 'OUTSIDE_FLIGHT' | 'CAMPAIGN_PAUSED' | 'COUNTERS_OUT_OF_RANGE' | 'CAMPAIGN_ARCHIVED' | null;
  /**
   * Why the counters loaded from the store were refused (a value outside the money bounds), or
   * null. While set the campaign stays paused (inactiveReason COUNTERS_OUT_OF_RANGE).
   */
  countersFault: string | null;
  breaker: {
    state: BreakerState;
    since: string | null;
    halfOpenShare: number;
    /** Whether the fraction trip can still fire today (it fires once per day and budget). */
    tripArmed: boolean;
    trips: number;
    events: BreakerEvent[];
  };
  counters: {
    decisions: number;
    allowed: number;
    deniedByReason: Record<string, number>;
    spendEvents: number;
    duplicateEvents: number;
    unmatchedEvents: number;
    overBidEvents: number;
    expiredReservations: number;
  };
}

export interface BreakerEvent {
  at: string;
  from: BreakerState;
  to: BreakerState;
  reason: string;
}
