/**
 * The pacer's exit codes, for the supervisor (systemd, Kubernetes, a shell loop) and for operators
 * reading why it stopped. Every code but 0 and 78 means "restart me": the restarted process reloads
 * its counters from the store and replays its spool, so no acknowledged spend is lost.
 * (ARCHITECTURE.md, "Process-level failure policy"; docs/api.md, "Exit codes".)
 */
export const exitCodes = {
  /** Stopped on request (SIGTERM, SIGINT) after answering what was in flight and flushing. */
  ok: 0,
  /** Could not listen on its port, or threads did not stop within the shutdown grace period. */
  failed: 1,
  /** A shard, the admin thread or a router thread stopped on a broken invariant or exited on its own (sysexits EX_SOFTWARE). */
  threadStopped: 70,
  /** An exception escaped every handler (uncaughtException or unhandledRejection) in any thread. */
  uncaught: 71,
  /** The configuration is invalid (sysexits EX_CONFIG): fix it, a restart alone will not help. */
  config: 78,
} as const;
