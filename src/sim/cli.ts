import { readFileSync } from 'node:fs';
import { strategies, type Strategy } from '../../shards/types.js';
import { writeChart } from './chart.js';
import { jsonOfReport } from './json.js';
import { defaultFaults } from './faults.js';
import { AuditFailure } from './ledger.js';
import { type FleetOptions, type FleetReport, fleetDefaults, simulateFleet } from './fleet.js';
import { type SimOptions, type SimReport, simDefaults, simulate } from './run.js';
import { asciiChart, table } from './text.js';
import { builtinDailyRequests, parseTrafficCsv } from './traffic.js';

/**
 * `npm run simulate -- [options]`: one campaign, one shard, a simulated clock and seeded traffic.
 * See docs/pacing.md for what it measures and how.
 */
const usage = `usage: npm run simulate -- [options]

  --strategy S             EVEN | ASAP | FRONT_LOADED | ADAPTIVE | AHEAD | CUSTOM (default ${simDefaults.strategy})
  --traffic FILE           CSV "hour,requests" (24 rows) or "minute,requests" (1,440 rows), local time,
                           or a week: "hourOfWeek,requests" (168 rows, 0 = Monday 00:00 local time),
                           or a timeline: "time,requests", requests in each real minute, time an ISO 8601
                           UTC minute (2026-11-23T00:00:00Z), minutes without a row have none (what
                           npm run backtest -- --traffic-out writes from the stored minute history);
                           default: the built-in diurnal curve, ${builtinDailyRequests.toLocaleString('en-US')} requests a day,
                           peak hour 9x the trough hour (bench/traffic/diurnal.csv holds the same numbers)
  --traffic-scale X        multiplies the traffic's volume (default 1)
  --daily-budget-micros N  the daily budget
  --budget-fraction F      or: budget = F x what the traffic would spend unthrottled (default ${simDefaults.budgetFraction})
  --days D                 days simulated; earlier days are for learning, the report is of the last (default ${simDefaults.days})
  --date YYYY-MM-DD        the reported (last) local day (default ${simDefaults.date})
  --seed N                 seed of the traffic and of the shard's generator (default ${simDefaults.seed})
  --timezone TZ            the campaign's IANA time zone (default ${simDefaults.timezone})
  --bid-micros N           bid per opportunity (default ${simDefaults.bidMicros}: a $2 CPM)
  --win-rate R             share of allowed bids that win (default ${simDefaults.winRate}); the clearing price
                           is a second-price fraction of the bid, uniform in 50%-95%
  --win-delay-ms M         median of the log-normal delay of win and loss notices; its 99.9th
                           percentile is one minute and nothing arrives later (default ${simDefaults.winDelayMs})
  --loss-notice-rate R     share of lost auctions that send a release; the rest expire (default ${simDefaults.lossNoticeRate})
  --duplicate-rate R       share of win notices sent twice (default ${simDefaults.duplicateRate})
  --reservation-ttl-ms N   reservation lifetime (default ${simDefaults.reservationTtlMs})
  --front-loaded-share F   FRONT_LOADED's share of the first half (default ${simDefaults.frontLoadedShare})
  --ahead-percent P        AHEAD's lead over EVEN in percent (default ${simDefaults.aheadPercent})
  --hourly-weights W,...   CUSTOM's 24 hourly weights (default: a business-hours curve)
  --window HH:MM-HH:MM     daily active window in local time, may cross midnight (default: all day)
  --no-breaker             disable the budget circuit breaker
  --faults                 inject store faults from the seed: refused, hung, lost and late replies
                           (1 to 2 in 1,000 calls each), ${defaultFaults.outagesPerDay} outages of up to ${defaultFaults.outageMsMax / 1000} s and ${defaultFaults.restartsPerDay} pacer
                           restarts a day; the spend path runs behind the production resilient store
                           and spool, and the auditor checks exact totals and the hard cap throughout
  --store-loss N           with --faults: N store restarts a day that lose the last ${defaultFaults.lossWindowMs} ms of writes
                           (Redis appendfsync everysec); the auditor reports what was lost
  --restart-at HH:MM[,...] restart the pacer at these local times every day: the shard drains, its
                           memory is dropped, a new one loads the counters from the store and the
                           traffic profile fitted from the minute history (as a real restart does);
                           not with --faults
  --profile-half-life-days D  half-life of that fit's decay (default ${simDefaults.profileHalfLifeDays}, as PACER_PROFILE_HALF_LIFE_DAYS)
  --shadow S               also run strategy S in shadow: every decision computed by it against its
                           own would-be counters, never enforced; the report shows both side by side
  --mode SHADOW            allow every decision; the campaign's strategy (or --shadow) runs as the
                           shadow and its would-be figures are reported (default ENFORCE)
  --profile FILE           a fitted traffic profile the campaign holds from the start, JSON
                           {"density": [168 opportunities per ms or null, Sunday 00:00 first], "fittedAtMs": N}
                           (what npm run backtest -- --traffic-out writes beside the traffic)
  --instances N            N pacer instances (1-64), each a production shard with its own lease keeper
                           (budget leases, src/shard/lease-keeper.ts) against an in-memory twin of
                           the lease script (src/sim/lease-store.ts), sharing one counter store;
                           the campaign's traffic is split between them (docs/pacing.md, "Fleet")
  --split A,B,...          the instances' traffic shares, e.g. 70,20,10 (default equal)
  --elsewhere F            share of win notices that arrive at another instance (default ${fleetDefaults.elsewhereShare})
  --lease-latency-ms M     round trip of a lease call (default ${fleetDefaults.leaseLatencyMs})
  --leases on|off          budget leases (default: on with more than one instance); --instances 1
                           --leases off is the single pacer on the same traffic
  --json                   print one JSON object
  --out FILE               write a chart: .svg, .html or .png
  --help
`;

type Parsed = { sim: Partial<SimOptions>; json: boolean; out: string | null; fleet: Partial<FleetOptions> | null };

function parseArgs(argv: string[]): Parsed {
  const sim: Partial<SimOptions> = {};
  let json = false;
  let out: string | null = null;
  let trafficFile: string | null = null;
  let storeLosses: number | null = null;
  let fleet: Partial<FleetOptions> | null = null;
  const fleetPart = (): Partial<FleetOptions> => (fleet ??= {});
  const num = (flag: string, v: string | undefined, min: number, max: number, integer = false): number => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isSafeInteger(n))) {
      throw new UsageError(`${flag} needs ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${JSON.stringify(v)})`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const [name, inline] = flag.includes('=') ? (flag.split(/=(.*)/s, 2) as [string, string]) : [flag, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (name) {
      case '--strategy': {
        const s = value()?.toUpperCase();
        if (!strategies.includes(s as Strategy)) throw new UsageError(`--strategy must be one of ${strategies.join(', ')}`);
        sim.strategy = s as Strategy;
        break;
      }
      case '--traffic': trafficFile = value() ?? null; break;
      case '--traffic-scale': sim.trafficScale = num(name, value(), 0, 1e6); break;
      case '--daily-budget-micros': sim.dailyBudgetMicros = num(name, value(), 1, Number.MAX_SAFE_INTEGER, true); break;
      case '--budget-fraction': sim.budgetFraction = num(name, value(), 1e-6, 100); break;
      case '--days': sim.days = num(name, value(), 1, 60, true); break;
      case '--date': sim.date = value() ?? ''; break;
      case '--seed': sim.seed = num(name, value(), 0, 2 ** 32 - 1, true); break;
      case '--timezone': sim.timezone = value() ?? ''; break;
      case '--bid-micros': sim.bidMicros = num(name, value(), 1, 1e12, true); break;
      case '--win-rate': sim.winRate = num(name, value(), 0, 1); break;
      case '--win-delay-ms': sim.winDelayMs = num(name, value(), 0, 59_999); break;
      case '--loss-notice-rate': sim.lossNoticeRate = num(name, value(), 0, 1); break;
      case '--duplicate-rate': sim.duplicateRate = num(name, value(), 0, 1); break;
      case '--reservation-ttl-ms': sim.reservationTtlMs = num(name, value(), 1_000, 3_600_000, true); break;
      case '--front-loaded-share': sim.frontLoadedShare = num(name, value(), 0.5, 0.95); break;
      case '--ahead-percent': sim.aheadPercent = num(name, value(), 1, 100); break;
      case '--hourly-weights': {
        const w = (value() ?? '').split(',').map(Number);
        if (w.length !== 24 || !w.every((x) => Number.isFinite(x) && x >= 0)) throw new UsageError('--hourly-weights needs 24 comma-separated non-negative numbers');
        sim.hourlyWeights = w;
        break;
      }
      case '--window': sim.window = value() ?? ''; break;
      case '--no-breaker': sim.breakerEnabled = false; break;
      case '--faults': sim.faults = { ...defaultFaults, ...sim.faults }; break;
      case '--store-loss': storeLosses = num(name, value(), 0, 100, true); break;
      case '--restart-at': {
        const times = (value() ?? '').split(',');
        if (!times.every((x) => /^([01]\d|2[0-3]):[0-5]\d$/.test(x))) throw new UsageError('--restart-at needs local times HH:MM, comma-separated (00:00-23:59)');
        sim.restartAt = times;
        break;
      }
      case '--profile': {
        const file = value() ?? '';
        let p: unknown;
        try {
          p = JSON.parse(readFileSync(file, 'utf8'));
        } catch (err) {
          throw new UsageError(`--profile ${file}: ${(err as Error).message}`);
        }
        const d = (p as { density?: unknown }).density;
        const at = (p as { fittedAtMs?: unknown }).fittedAtMs;
        if (!Array.isArray(d) || d.length !== 168 || !d.every((v) => v === null || (typeof v === 'number' && Number.isFinite(v) && v >= 0)) || typeof at !== 'number') {
          throw new UsageError(`--profile ${file}: expected {"density": [168 numbers ≥ 0 or null], "fittedAtMs": epoch ms}`);
        }
        sim.initialProfile = { density: d as (number | null)[], fittedAtMs: at };
        break;
      }
      case '--profile-half-life-days': sim.profileHalfLifeDays = num(name, value(), 0.1, 365); break;
      case '--shadow': {
        const s = value() ?? '';
        if (!strategies.includes(s as Strategy)) throw new UsageError(`--shadow must be one of ${strategies.join(', ')}`);
        sim.shadow = s as Strategy;
        break;
      }
      case '--mode': {
        const m = value() ?? '';
        if (m !== 'ENFORCE' && m !== 'SHADOW') throw new UsageError('--mode must be ENFORCE or SHADOW');
        sim.mode = m;
        break;
      }
      case '--instances': fleetPart().instances = num(name, value(), 1, 64, true); break;
      case '--split': {
        const w = (value() ?? '').split(',').map(Number);
        if (w.length < 1 || !w.every((x) => Number.isFinite(x) && x >= 0) || w.reduce((a, b) => a + b, 0) <= 0) throw new UsageError('--split needs comma-separated non-negative shares');
        fleetPart().split = w;
        break;
      }
      case '--elsewhere': fleetPart().elsewhereShare = num(name, value(), 0, 1); break;
      case '--lease-latency-ms': fleetPart().leaseLatencyMs = num(name, value(), 0, 900); break;
      case '--leases': {
        const v = value();
        if (v !== 'on' && v !== 'off') throw new UsageError('--leases must be on or off');
        fleetPart().leases = v === 'on';
        break;
      }
      case '--json': json = true; break;
      case '--out': out = value() ?? null; break;
      case '--help': case '-h': process.stdout.write(usage); process.exit(0); break;
      default: throw new UsageError(`unknown option ${JSON.stringify(flag)}`);
    }
  }
  if (sim.dailyBudgetMicros !== undefined && sim.budgetFraction !== undefined) {
    throw new UsageError('give --daily-budget-micros or --budget-fraction, not both');
  }
  if (sim.restartAt !== undefined && sim.faults !== undefined && sim.faults !== null) throw new UsageError('--restart-at and --faults do not combine (--faults restarts the pacer on its own)');
  if (storeLosses !== null) {
    if (sim.faults === undefined || sim.faults === null) throw new UsageError('--store-loss needs --faults');
    sim.faults = { ...sim.faults, storeLossesPerDay: storeLosses };
  }
  if (trafficFile !== null) sim.traffic = parseTrafficCsv(readFileSync(trafficFile, 'utf8'), trafficFile);
  if (fleet !== null) {
    const f: Partial<FleetOptions> = fleet;
    f.instances ??= f.split?.length ?? 1;
    if (f.split !== undefined && f.split !== null && f.split.length !== f.instances) throw new UsageError(`--split needs ${f.instances} shares, one per instance`);
    const unsupported = (['faults', 'restartAt', 'shadow', 'mode', 'initialProfile', 'schedule'] as const).filter((k) => sim[k] !== undefined);
    if (unsupported.length > 0) throw new UsageError(`--instances does not combine with ${unsupported.join(', ')} (yet)`);
    if (out !== null) throw new UsageError('--instances does not write charts (yet)');
  }
  return { sim, json, out, fleet };
}

class UsageError extends Error {}

async function main(): Promise<void> {
  let parsed: Parsed;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`);
    process.exit(2);
  }
  if (parsed.fleet !== null) return fleetMain(parsed);
  let report: SimReport;
  const started = process.hrtime.bigint();
  try {
    report = await simulate(parsed.sim);
  } catch (err) {
    // Any failure, an audit's or a broken invariant the shard asserted, names the run that replays it.
    const seed = err instanceof AuditFailure ? err.seed : (parsed.sim.seed ?? simDefaults.seed);
    const what = err instanceof AuditFailure ? err.message : ((err as Error).stack ?? String(err));
    process.stderr.write(`${what}\nreplay: npm run simulate -- ${process.argv.slice(2).join(' ')}  (seed ${seed})\n`);
    process.exit(1);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (parsed.out !== null) await writeChart(parsed.out, [report]);
  if (parsed.json) {
    process.stdout.write(`${JSON.stringify(jsonOfReport(report))}\n`);
    return;
  }
  process.stdout.write(`${table(report, seconds)}\n\n${asciiChart(report)}\n`);
  if (parsed.out !== null) process.stdout.write(`\nchart written to ${parsed.out}\n`);
}

function pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

/** --instances: the fleet simulator (src/sim/fleet.ts). */
async function fleetMain(parsed: Parsed): Promise<void> {
  let report: FleetReport;
  const started = process.hrtime.bigint();
  try {
    report = await simulateFleet({ ...parsed.sim, ...parsed.fleet });
  } catch (err) {
    const seed = err instanceof AuditFailure ? err.seed : (parsed.sim.seed ?? simDefaults.seed);
    const what = err instanceof AuditFailure ? err.message : ((err as Error).stack ?? String(err));
    process.stderr.write(`${what}\nreplay: npm run simulate -- ${process.argv.slice(2).join(' ')}  (seed ${seed})\n`);
    process.exit(1);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (parsed.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const r = report;
  const lines = [
    `fleet: ${r.instances} instance(s), leases ${r.leases ? 'on' : 'off'}, split ${r.split.map((x) => (x * 100).toFixed(0)).join('/')}, elsewhere ${r.elsewhereShare}, lease round trip ${r.leaseLatencyMs} ms`,
    `strategy ${r.strategy}, seed ${r.seed}, ${r.days} day(s); budget ${r.budgetMicros} micros`,
    `delivery ${pct(r.deliveryRatio)}  overspend ${pct(r.overspendRatio)}  slot nRMSE ${r.slotNrmse.toFixed(4)}  max tracking ${r.maxTrackingError.toFixed(4)}  early exhaustion ${pct(r.earlyExhaustionFraction)}`,
    `max committed ${pct(r.maxCommittedRatio)} of the budget; max settled + leased ${pct(r.maxLeasedRatio)}; stranded in leases at the end ${pct(r.strandedAtEndRatio)}; LEASE_EMPTY denials ${r.leaseEmptyDenials}; late spend ${r.lateMicros}`,
    `decisions ${r.decisions}, allowed ${r.allowed}, wins ${r.wins}; ${r.auditedSteps} steps audited; ${seconds.toFixed(1)} s`,
    '',
    'instance  share  decisions  allowed  spent(micros)  grants  failures  give-backs  settled-elsewhere  trips',
    ...r.perInstance.map((p) => `${String(p.instance).padStart(8)}  ${pct(p.share).padStart(6)}  ${String(p.decisions).padStart(9)}  ${String(p.allowed).padStart(7)}  ${String(p.spentMicros).padStart(13)}  ${String(p.leaseGrants).padStart(6)}  ${String(p.leaseFailures).padStart(8)}  ${String(p.leaseGiveBacks).padStart(10)}  ${String(p.settledElsewhere).padStart(17)}  ${String(p.breakerTrips).padStart(5)}`),
  ];
  if (r.daily.length > 1) {
    lines.push('', 'day         delivery  overspend  slot nRMSE');
    for (const d of r.daily) lines.push(`${d.day}  ${pct(d.deliveryRatio).padStart(8)}  ${pct(d.overspendRatio).padStart(9)}  ${d.slotNrmse.toFixed(4)}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
