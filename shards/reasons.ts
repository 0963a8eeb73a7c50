/**
 * Why a decision allowed or denied, as a small integer on the wire and a name in the API.
 * The numbering is part of the router-to-shard wire format: append, never renumber.
 */
export const Reason = {
  OK: 0,
  PACED: 1,
  BREAKER_OPEN: 2,
  BUDGET_EXHAUSTED: 3,
  OUTSIDE_SCHEDULE: 4,
  OUTSIDE_FLIGHT: 5,
  CAMPAIGN_PAUSED: 6,
  UNKNOWN_CAMPAIGN: 7,
  /** The shard has not loaded this campaign's counters yet (startup, counter store down). */
  NOT_READY: 8,
  /** The campaign or its shard holds as many live reservations as its limit allows. */
  RESERVATIONS_FULL: 9,
  /** The store held counters out of the money bounds at load: the campaign is kept paused. */
  COUNTERS_OUT_OF_RANGE: 10,
  /** The campaign was archived (DELETE); its late spend still counts. */
  CAMPAIGN_ARCHIVED: 11,
  /**
   * Several instances share the budget and this instance's lease of it is used up, expired or not
   * granted yet (a renewal follows in the background); other instances may still allow.
   */
  LEASE_EMPTY: 12,
} as const;

export type ReasonCode = (typeof Reason)[keyof typeof Reason];
export type ReasonName = keyof typeof Reason;

export const reasonNames: readonly ReasonName[] = Object.keys(Reason) as ReasonName[];

export function reasonName(code: number): ReasonName {
  const name = reasonNames[code];
  if (name === undefined) throw new RangeError(`unknown reason code ${code}`);
  return name;
}

/** Outcome of a spend or release as it travels back from the shard. Append, never renumber. */
export const OpStatus = {
  APPLIED: 0,
  DUPLICATE: 1,
  RELEASED: 2,
  NOT_FOUND: 3,
  UNKNOWN_CAMPAIGN: 4,
  /** The shard holds too much unflushed spend (store down and spool full): retry later. */
  OVERLOADED: 5,
  /** The store refused the batch and no spool could take it: the event was not recorded. */
  STORE_FAILED: 6,
  /** The shard has not loaded this campaign's counters yet: retry after Retry-After. */
  NOT_READY: 7,
  /** The spend would take a total the shard keeps past its ceiling (limits.dayTotalMicrosMax). */
  AMOUNT_REFUSED: 8,
} as const;

export type OpStatusCode = (typeof OpStatus)[keyof typeof OpStatus];
