/**
 * Every limit of the pacer in one place, each with its unit last in the name and the reason for
 * its value. Configuration (src/config.ts) may override the ones marked "default"; the rest are
 * fixed because the wire format or the memory budget depends on them.
 */
export const limits = {
  /** Campaign IDs become Redis keys and travel in a u8-length field of the shard wire format. */
  campaignIdLengthMax: 64,
  /** Request and event IDs (auction or impression IDs) also travel in a u8-length field. */
  eventIdLengthMax: 128,
  /** A decide or spend body is ~100 bytes; 1 MiB admits a full batch with room and stops abuse. */
  bodyBytesMax: 1024 * 1024,
  /** Largest /v1/decide/batch, /v1/spend/batch or WebSocket frame, in operations. */
  batchOpsMax: 1000,
  /** default: requests a shard may have in flight before the router answers 503. */
  shardInFlightMax: 16_384,
  /** Seconds a client is told to wait in Retry-After when a shard is saturated. */
  retryAfterSeconds: 1,
  /** default: a reservation expires this long after its decision if no win or loss arrives. */
  reservationTtlMs: 60_000,
  /** How often a shard sweeps expired reservations; expiry is late by at most this (conservative). */
  reservationSweepMs: 250,
  /** How often a shard runs the pacing controller of its campaigns. */
  controlTickMs: 1_000,
  /** default: a shard writes its coalesced deltas at least this often (group commit window). */
  flushIntervalMs: 2,
  /** A shard writes as soon as this many spend events wait, without waiting for the timer. */
  flushEventsMax: 1_000,
  /** Unflushed spend events a shard holds before answering 503 (store slow or down, spool full). */
  pendingEventsMax: 100_000,
  /** WebSocket: largest frame accepted; larger frames close the connection (uWS enforces it). */
  wsFrameBytesMax: 1024 * 1024,
  /** WebSocket: bytes buffered for a slow reader before uWS drops and closes it. */
  wsBackpressureBytesMax: 4 * 1024 * 1024,
  /** WebSocket: operations one connection may have in flight; past it frames are refused. */
  wsInFlightOpsMax: 8_192,
  /** WebSocket: seconds without traffic before uWS closes the connection (pings keep it alive). */
  wsIdleTimeoutSeconds: 120,
  /** Control-plane request (admin to shard) deadline before the admin answers 503. */
  controlRequestTimeoutMs: 5_000,
  /** Graceful shutdown: the longest we wait for in-flight answers and the final flush. */
  shutdownGraceMs: 10_000,
  /** Campaigns per process; 1e6 keeps the per-campaign state (~1 KiB) well inside memory. */
  campaignsMax: 1_000_000,
  /** Campaign name length, for display only. */
  campaignNameLengthMax: 200,
} as const;

export type Limits = typeof limits;
