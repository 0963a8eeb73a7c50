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
  /**
   * default: a shard writes its coalesced deltas this long after the first one (group commit
   * window); 0 means at the end of the event-loop turn that brought it. Spend is acknowledged after
   * its write, so this adds to every acknowledgement; with flushInFlightMax batches at the store,
   * what arrives meanwhile waits and batches grow with load anyway. bench:spend at 10,000
   * events/s with Redis: p50 0.6-0.7 ms at 0, 1.6 ms at 1 (bench/README.md).
   */
  flushIntervalMs: 0,
  /**
   * Flush batches a shard has at the store at once. Several let a spend skip the previous batch's
   * round trip (the store's connection keeps them in order); the bound keeps a slow store from
   * collecting an unbounded pipeline.
   */
  flushInFlightMax: 4,
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
  /**
   * WebSocket: nesting of a frame's MessagePack containers. A frame needs 2 (an array of operation
   * arrays); 4 leaves room for a misplaced array or map to get its field's own error.
   */
  wsFrameDepthMax: 4,
  /**
   * default: open stream connections per process. Each holds uWS buffers (up to
   * wsBackpressureBytesMax) and its in-flight operations; 10,000 keep that within a few GiB even
   * when every client is slow, far more than the bidders of one exchange need.
   */
  streamConnectionsMax: 10_000,
  /** Admin live feed (/v1/live): open connections; each polls statuses, so the admin thread stays light. */
  liveConnectionsMax: 16,
  /** /v1/live: campaigns one connection may name in its subscriptions; a tick polls at most 16 × 1,000 of them. */
  liveSubscriptionCampaignsMax: 1_000,
  /** /v1/live: a client must authenticate within this time, or an idle unauthenticated socket lingers. */
  liveAuthTimeoutMs: 5_000,
  /** /v1/live: how often changed statuses are pushed ("about once a second"). */
  liveTickMs: 1_000,
  /** /v1/live `all` subscriptions: statuses polled per tick, round-robin over the catalogue, so a million campaigns cost the same as a thousand. */
  liveAllPollPerTickMax: 1_000,
  /** /v1/live: bytes buffered for one slow reader before it is disconnected (close code 4008). */
  liveBufferedBytesMax: 1_048_576,
  /** /v1/live: the largest client message; a subscribe naming liveSubscriptionCampaignsMax IDs of 64 characters fits. */
  liveMessageBytesMax: 262_144,
  /** /v1/live: seconds without traffic before uWS closes a connection (it pings automatically). */
  liveIdleTimeoutSeconds: 120,
  /**
   * An unexpected exception caught by a router handler is logged at most this often per route (with
   * the count since the last line), so a client repeating a bad input cannot flood the log.
   */
  internalErrorLogIntervalMs: 10_000,
  /** Control-plane request (admin to shard) deadline before the admin answers 503. */
  controlRequestTimeoutMs: 5_000,
  /** Graceful shutdown: the longest we wait for in-flight answers and the final flush. */
  shutdownGraceMs: 10_000,
  /** Campaigns per process; 1e6 keeps the per-campaign state (~1 KiB) well inside memory. */
  campaignsMax: 1_000_000,
  /** Campaign name length, for display only. */
  campaignNameLengthMax: 200,
  /**
   * Young generation of each worker thread (shards, admin), in MB (V8's default lets it grow to
   * 48 MB per thread and keeps it grown). Their short-lived garbage (batches, bodies, replies)
   * dies young in far less; at 6 MB the process held about 6 MB less after traffic
   * (bench/README.md "Memory").
   */
  workerYoungGenerationMb: 6,
  /**
   * Distinct day shapes (zone, day, strategy, schedule, weights) a thread keeps to share between
   * campaigns (shards/pacing/day.ts); about 1.5 KB each. Campaigns keep the shape they hold when
   * it is evicted; only sharing with later plans is lost.
   */
  dayShapesKept: 10_000,

  // ---- admin API (src/admin; docs/api.md, admin section) ---------------------------------------
  /** Admin request body: a bulk call of 1,000 full campaigns (about 1.5 KB each) with room. */
  adminBodyBytesMax: 4 * 1024 * 1024,
  /** Nesting of an admin body: a campaign in a bulk call needs 6 levels; deeper is refused, not walked. */
  adminBodyDepthMax: 32,
  /**
   * Campaigns the admin pushes to the shards at once (startup, bulk): each new one loads its
   * counters first, and more in flight would only queue past controlRequestTimeoutMs.
   */
  adminPushConcurrency: 64,
  /**
   * Campaigns per startup load message to a shard (Campaigns.start): one message and one short
   * answer per batch, the batch's counter reads pipelined on the store's connection.
   */
  adminLoadBatchCampaigns: 500,
  /** Startup load messages in flight per shard: the next batch is on its way while one loads. */
  adminLoadBatchesInFlight: 2,
  /** How long the admin waits for one startup load batch before it sends the batch again. */
  adminLoadBatchTimeoutMs: 60_000,
  /** Campaigns in one POST /v1/campaigns/bulk: one store transaction, answered in well under a second. */
  bulkCampaignsMax: 1_000,
  /** Default page of GET /v1/campaigns and of the budget audit trail. */
  listLimitDefault: 100,
  /** Largest page a client may ask for. */
  listLimitMax: 1_000,
  /**
   * Campaigns one listing request looks at: filters on names or status may match few, and a
   * request must not walk a million campaigns; the page then ends early with a nextCursor.
   */
  listScanMax: 100_000,
  /** X-Pacer-Actor and a budget operation's reason: display text kept in the audit trail. */
  auditTextLengthMax: 200,

  // ---- storage (src/store, src/admin; docs/storage.md) ----------------------------------------
  /** Deadline of one Redis call; past it the batch goes to the spool (acks wait at most this). */
  redisCallTimeoutMs: 250,
  /**
   * Redis Cluster: redirections (MOVED, ASK) one command may follow. A resharding moves a slot
   * once, a failover once more; 16 is ioredis' default and far above either.
   */
  redisClusterRedirectionsMax: 16,
  /**
   * PACER_REDIS_WAIT_REPLICAS > 0: how long a WAIT after a flush or a lease grant waits for the
   * replicas (within redisCallTimeoutMs, so that a slow replica fails the call, not the deadline).
   */
  redisWaitTimeoutMs: 100,
  /** The most replicas PACER_REDIS_WAIT_REPLICAS may ask to wait for. */
  redisWaitReplicasMax: 16,
  /** Redis Cluster: wait before retrying after TRYAGAIN (half-migrated slot) or CLUSTERDOWN (failover). */
  redisClusterRetryDelayMs: 100,
  /** Deadline of one embedded-store call (same process, no network: only a stuck admin thread). */
  embeddedCallTimeoutMs: 5_000,
  /** After a failed store call, the spool replays (and so probes the store) at most this often. */
  storeProbeIntervalMs: 500,
  /** Spool file of one shard; past it spend is answered STORE_UNAVAILABLE (and kept pending). */
  spoolBytesMax: 256 * 1024 * 1024,
  /** Spooled event IDs a shard remembers to answer resends during an outage (bounds memory). */
  spoolDedupeEventsMax: 200_000,
  /** Spool records replayed per store round trip when the store returns. */
  spoolReplayBatchMax: 64,
  /** Event IDs are deduplicated for three UTC-day buckets, so at least 48 hours (SQL and memory stores). */
  dedupeBuckets: 3,
  /** Redis: an event ID's key lives 48 hours and an hour of margin for clocks and slow resends. */
  eventDedupeTtlMs: 49 * 3_600_000,
  /**
   * Redis: campaigns per script call on a single node. A call costs a fixed ~30 µs of Redis time
   * plus its work, and blocks Redis while it runs: 200 campaigns keep a call near a millisecond.
   */
  redisCampaignsPerCall: 200,
  /** Redis: per-day settled totals of a campaign (lifetime budgets) outlive flights of a year. */
  lifetimeDaysTtlSeconds: 400 * 86_400,
  /** default: how often the admin asks the shards for their summaries and writes the minute history. */
  historyFlushMs: 10_000,
  /** History rows the admin holds while PostgreSQL is down; the oldest are dropped past it. */
  historyBufferRowsMax: 100_000,
  /** Minute rows (and denial rows, breaker events) per INSERT of a history write; one transaction holds them all. */
  historyRowsPerStatement: 2_000,
  /** Stored traffic profiles read per query at startup (about 2 KB each): the whole table in pages by campaign ID. */
  profileReadPageRows: 1_000,
  /** One history request at step=minute: a week of minutes (10,080 buckets), as before steps existed. */
  historyMinuteRangeMsMax: 7 * 86_400_000,
  /** One history request at step=hour: 92 days (about 2,200 buckets), a quarter of hourly rows. */
  historyHourRangeMsMax: 92 * 86_400_000,
  /** One history request at step=day: 400 days (400 buckets), a year with room for a comparison. */
  historyDayRangeMsMax: 400 * 86_400_000,
  /** Campaigns per page of the fleet report by default, and at most: a page an operator reads, as the listing's. */
  fleetReportPageDefault: 100,
  fleetReportPageMax: 1_000,
  /** How often the admin deletes history, dedupe rows and expired reservations past retention. */
  retentionSweepMs: 3_600_000,
  /** How often the admin looks for campaigns whose local day began since their last profile fit. */
  profileTickMs: 60_000,
  /** Deadline of one configuration-database statement: admin writes answer 503 past it. */
  databaseStatementTimeoutMs: 5_000,
  /** Deadline of connecting to PostgreSQL. */
  databaseConnectTimeoutMs: 2_000,
  /**
   * Metrics: the per-campaign gauges of one scrape share one pass over a shard's campaigns; a pass
   * younger than this is reused, so a scrape walks a million campaigns once, not five times.
   */
  metricsSnapshotMaxAgeMs: 250,
  /**
   * Metrics: that pass walks this many campaigns per event-loop turn, so the shard's decisions
   * wait for one slice of the walk at most, whatever the number of campaigns.
   */
  metricsScanCampaignsMax: 10_000,
  /**
   * Metrics: a campaign exhausted while its plan had reached less than this share of the budget
   * counts as exhausted early (a strategy that plans the whole budget at once, ASAP, never does).
   */
  exhaustedEarlyPlanShareMax: 0.9,
  /*
   * Money bounds (integer micros). Chosen so that no sum the pacer keeps can leave the safe-integer
   * range (2^53 - 1, about 9.007e15): a day's settled + reserved stays below a day's budget plus
   * the over-budget spend a shard still accepts, a flight's total below the lifetime maximum, and
   * about 90 maximal flights fit in one safe integer. Larger values are refused with 400 INVALID_AMOUNT.
   */
  /** One bid: 10,000 currency units, far above any real impression or sponsorship price. */
  bidMicrosMax: 10_000_000_000,
  /** One spend event: the same bound as a bid (a win is never priced above what was bid by much). */
  spendMicrosMax: 10_000_000_000,
  /** A daily budget: 10 million currency units a day. */
  dailyBudgetMicrosMax: 10_000_000_000_000,
  /** A lifetime (flight) budget: 100 million currency units. */
  lifetimeBudgetMicrosMax: 100_000_000_000_000,
  /**
   * What a shard keeps for one campaign-day (settled spend, and settled + reserved): a spend that
   * would take it past this is refused (400 INVALID_AMOUNT), so a day's total stays 100 times the
   * largest daily budget and nine of them still fit in a safe integer, whatever the event count.
   */
  dayTotalMicrosMax: 1_000_000_000_000_000,
  /**
   * A flight's settled total as a shard keeps it (earlier days + today) saturates here: it is above
   * the largest lifetime budget, so a flight that reaches it is finished either way.
   */
  flightTotalMicrosMax: 1_000_000_000_000_000,

  // ---- client-driven memory of a shard (docs/api.md, "Limits") ---------------------------------
  /** default: live reservations of one campaign; past it a reserving decide is denied RESERVATIONS_FULL. */
  reservationsPerCampaignMax: 100_000,
  /**
   * default: live reservations of one shard. Each costs about 230 bytes of heap (its map entry and
   * its expiry entry, 30-character request IDs; bench/memory-limits.ts), so about 230 MB at most.
   */
  reservationsPerShardMax: 1_000_000,
  /**
   * default: applied event IDs a shard remembers, to answer a resend `duplicate` without touching
   * memory or the store; past it the oldest are forgotten and the store's 48-hour dedupe answers.
   * About 150 bytes of heap each with 50-character keys (bench/memory-limits.ts): 15 MB a shard.
   */
  eventIdsRememberedMax: 100_000,
  /**
   * Event IDs the memory store (PACER_STORE=memory, tests and development) remembers; past it the
   * oldest are forgotten, so its dedupe is weaker than the durable stores' 48 hours.
   */
  memoryStoreEventIdsMax: 1_000_000,

  // ---- configuration everywhere (src/store/config-feed.ts; ARCHITECTURE.md) --------------------
  /**
   * config_changes rows are kept this long. An instance away from the database for longer cannot
   * read what it missed from them and compares every campaign's version instead.
   */
  configChangesRetentionMs: 86_400_000,
  /**
   * A catch-up reads changes from this long before its last contact: a change's time is its
   * transaction's start, and a transaction may commit (and become visible) a little later.
   */
  configCatchUpOverlapMs: 60_000,
  /** Changes read per catch-up query; more are read in further pages. */
  configCatchUpPageRows: 1_000,
  /**
   * Campaigns per query when the admin reads the whole catalogue (startup, catch-up): each page
   * stays well inside databaseStatementTimeoutMs, where one query for 1,000,000 did not.
   */
  catalogueReadPageRows: 10_000,
  /**
   * A missed breaker reset older than this is not replayed at catch-up: a reset is an action of a
   * moment, and replaying it long after could reopen a breaker that has tripped again since.
   */
  configResetReplayMaxMs: 60_000,
  /**
   * The listening connection runs a query this often: a connection that died without an error is
   * found, and the catch-up point advances. Also the first reconnect delay's ceiling (backoff).
   */
  configFeedHeartbeatMs: 2_000,

  // ---- budget leases (src/store/leases.ts, shards/lease-size.ts; ARCHITECTURE.md "Budget leases") --
  /**
   * A lease lives this long without renewal. A dead holder's unreserved money returns after at
   * most this; renewing at half of it leaves one renewal's worth of Redis trouble before the lease
   * runs out. Short enough that stranded money comes back within seconds.
   */
  leaseTtlMs: 3_000,
  /** A holder renews when this share of its lease's lifetime has passed. */
  leaseRenewShare: 0.5,
  /** A lease covers about this much of the campaign's recent (or planned) spend. */
  leaseSpendWindowMs: 1_000,
  /** And this much more, so a burst inside the window does not run the lease dry before renewal. */
  leaseHeadroomFactor: 1.5,
  /**
   * The smallest lease worth asking for: 0.01 currency unit. Below it the Redis round trips cost
   * more than the money they move; a campaign whose remaining budget is smaller gets what is left.
   */
  leaseFloorMicros: 10_000,
  /** The largest share of a day's budget one lease may hold: bounds the money one holder strands. */
  leaseBudgetShareMax: 0.1,
  /** The largest lease in micros whatever the budget: 1,000 currency units. */
  leaseCeilingMicros: 1_000_000_000,
  /** Lease holders an instance may name: its instance ID and shard, `[A-Za-z0-9._:-]`. */
  leaseHolderLengthMax: 100,

  // ---- backtests and forecasts (src/sim/backtest.ts, src/admin/backtest.ts, src/admin/forecast.ts) --
  /**
   * A backtest spans at most this many local days: a month. The simulator replays every request of
   * the range once per strategy, so the cost grows with days × traffic × strategies; a month of a
   * campaign's minutes is 44,640 history rows, read in one query.
   */
  backtestDaysMax: 31,
  /** Backtests the admin API runs (or queues on its pool) at once; more answer 503 OVERLOADED. */
  backtestsInFlightMax: 2,
  /**
   * Recorded decisions a backtest replays per strategy before it thins the traffic (each simulated
   * request then stands for k recorded ones, its bid k times as large: src/sim/backtest.ts). The
   * simulator replays each request through the shard; this bounds a strategy's run to seconds
   * (docs/pacing.md, "Backtests") whatever the campaign's volume.
   */
  backtestRequestsPerStrategyMax: 200_000,
  /** A forced thinning factor (`npm run backtest -- --thinning K`, the API's `thinning`) is at most this. */
  backtestThinningMax: 1_000,
  /** The forecast's recent spend rate is measured over this many minutes of today's history. */
  forecastRecentMinutes: 30,
  /** The lease keeper looks at its shard's leases this often (renewals due, leases running dry). */
  leaseKeeperTickMs: 50,
  /** A lease whose committed money passed this share of it is renewed early (before half-life). */
  leaseRenewUsedShare: 0.5,
  /** A campaign no decision asked for this long gives its lease back (no money stranded when idle). */
  leaseIdleMs: 6_000,
  /** Lease calls in flight at once per shard: a burst of cold campaigns does not flood Redis. */
  leaseGrantsInFlightMax: 256,
  /** A lease call that takes longer than this is abandoned (its lease runs to its expiry). */
  leaseCallTimeoutMs: 1_000,
  /** This holder's share of a campaign's spend is measured over about this long (pacing on global spend). */
  leaseShareTauMs: 60_000,
  /** The smallest share a holder plans for, so a holder that spent nothing yet can still start. */
  leaseShareMin: 0.02,
  /**
   * A reservation older than this is looked for in the store at a renewal; gone, another instance
   * settled it. Long after its flush (flushes leave within milliseconds), so it is in the store.
   */
  leaseReconcileAfterMs: 1_000,
  /** Reservations looked for per campaign per renewal (one HMGET). */
  leaseReconcileBatchMax: 500,
  /**
   * Each instance with a Redis store renews its entry in the instance registry this often
   * (src/store/instances.ts): an instance that cannot share budgets with the others is found
   * within about a second.
   */
  instanceHeartbeatMs: 1_000,
  /**
   * An entry not renewed for this long is a dead instance's: a few heartbeats, so a slow beat on a
   * loaded machine does not drop a live one, and short, so a successor started after a kill -9
   * waits at most this long.
   */
  instanceTtlMs: 5_000,
  /**
   * At startup, how long the first registry check may wait for Redis; past it the instance starts
   * unverified (as it would without the registry) and checks when Redis answers.
   */
  instanceStartCheckMs: 3_000,
  /** A conflict is logged again this often while it lasts (once per conflict is easy to miss). */
  instanceConflictLogMs: 10_000,
} as const;

export type Limits = typeof limits;
