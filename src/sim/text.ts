import type { SimReport } from './run.js';

/** The readable report: a table of the metrics and one of the breaker's transitions. */
export function table(r: SimReport, seconds: number): string {
  const d = r.detail;
  const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
  const money = (m: number): string => `${(m / 1e6).toFixed(2)}`;
  const rows: [string, string][] = [
    ['strategy', r.strategy],
    ['reported day', `${d.day} (${d.timezone}), day ${r.days} of ${r.days}, seed ${r.seed}`],
    ['traffic', d.traffic],
    ['budget', `${money(r.budgetMicros)} (unthrottled traffic would spend ${money(d.unthrottledMicros)})`],
    ['spent', money(r.spentMicros)],
    ['delivery ratio', r.deliveryRatio.toFixed(4)],
    ['overspend ratio', r.overspendRatio.toFixed(6)],
    ['slot nRMSE (hours)', r.slotNrmse.toFixed(4)],
    ['tracking error max / mean', `${pct(r.maxTrackingError)} / ${pct(r.meanTrackingError)}`],
    ['early exhaustion', pct(r.earlyExhaustionFraction)],
    ['max exposure (reserved / budget)', pct(r.maxExposureRatio)],
    ['decisions / allowed / wins', `${r.decisions} / ${r.allowed} / ${r.wins}`],
    ['denied by reason', Object.entries(d.deniedByReason).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'],
    ['late / duplicate notices (all days)', `${d.lateEvents} / ${d.duplicateEvents}`],
    ['breaker trips', String(r.breakerTrips)],
    ...(r.mode === 'SHADOW' ? ([['mode', 'SHADOW: every decision allowed, the real side is unpaced']] as [string, string][]) : []),
    ...(r.shadow === null ? [] : ([
      [`shadow ${r.shadow.strategy}: would-be spent`, `${money(r.shadow.spentMicros)} (estimated ${money(r.shadow.estimatedMicros)})`],
      ['shadow delivery / slot nRMSE', `${r.shadow.deliveryRatio.toFixed(4)} / ${r.shadow.slotNrmse.toFixed(4)}`],
      ['shadow decisions / would allow', `${r.shadow.decisions} / ${r.shadow.allowed}`],
      ['shadow exhausted at', r.shadow.exhaustedAtMs === null ? 'never' : localTime(r.shadow.exhaustedAtMs, d.timezone)],
    ] as [string, string][])),
    ...(r.restarts > 0 ? ([['restarts (--restart-at, all days)', String(r.restarts)]] as [string, string][]) : []),
    ['audited steps (all days)', `${d.auditedSteps}, all invariants held`],
    ...faultRows(r),
    ['wall time', `${seconds.toFixed(1)} s`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`);
  if (d.daily.length > 1) {
    lines.push('', 'by day (each against its own plan):', '  day         weekday  delivery  slot nRMSE  early exhaustion');
    for (const x of d.daily) {
      lines.push(`  ${x.day}  ${x.weekday.padEnd(7)}  ${x.deliveryRatio.toFixed(4)}    ${x.slotNrmse.toFixed(4)}      ${pct(x.earlyExhaustionFraction)}`);
    }
  }
  if (d.breakerEvents.length > 0) {
    lines.push('', 'breaker transitions:');
    for (const e of d.breakerEvents) lines.push(`  ${localTime(e.atMs, d.timezone)}  ${e.from} -> ${e.to}  ${e.reason}`);
  }
  return lines.join('\n');
}

/** With --faults: what was injected, and what the auditor measured through it. */
function faultRows(r: SimReport): [string, string][] {
  const f = r.detail.faults;
  if (f === null) return [];
  const rows: [string, string][] = [
    ['store calls / refused / hung', `${f.calls} / ${f.rejected} / ${f.hung}`],
    ['replies lost / late (after the write)', `${f.lostReplies} / ${f.lateReplies}`],
    ['outages / spool periods', `${f.outages} / ${f.spoolPeriods}`],
    ['pacer restarts / notices resent', `${f.restarts} / ${f.resentAfterRestart}`],
    ['spool corrections (late duplicates)', String(f.lateDuplicateCorrections)],
  ];
  if (f.storeRestarts > 0) {
    rows.push([
      'lossy store restarts: lost (acknowledged)',
      `${f.storeRestarts}: ${f.lostAcknowledgedEvents} events, ${f.lostAcknowledgedMicros} micros (store totals dropped ${f.storeSettledDropMicros}; acknowledged in the loss windows ${f.windowAcknowledgedMicros})`,
    ]);
  }
  return rows;
}

export function localTime(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(ms);
}

/** Hourly spend (#) against the plan (|) and the mean throttle, one row per hour. */
export function asciiChart(r: SimReport): string {
  const hours = r.detail.hours;
  const max = Math.max(...hours.map((h) => Math.max(h.planMicros, h.spentMicros)), 1);
  const width = 50;
  const lines = [`hour   spend vs plan (# spent, | plan; full width = ${(max / 1e6).toFixed(2)})${' '.repeat(4)}spent/plan  throttle`];
  for (const h of hours) {
    const s = Math.round((h.spentMicros / max) * width);
    const p = Math.min(width, Math.round((h.planMicros / max) * width));
    const bar = [...'#'.repeat(s).padEnd(width + 1, ' ')];
    bar[p] = '|';
    const ratio = h.planMicros > 0 ? (h.spentMicros / h.planMicros).toFixed(2) : '  - ';
    lines.push(`${h.label}  ${bar.join('')}  ${ratio.padStart(6)}      ${h.throttle.toFixed(3)}`);
  }
  return lines.join('\n');
}
