import { checkResponse } from './openapi.js';

/**
 * A spend workload for the recovery tests: distinct events with seeded amounts over a few
 * campaigns, a stream in which some events are sent more than once, and concurrent senders that
 * record how each send was answered (or that it failed, as in-flight requests do when the pacer is
 * killed).
 */
export interface SpendEvent {
  campaignId: string;
  eventId: string;
  amountMicros: number;
}

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeEvents(campaigns: string[], n: number, seed: number): SpendEvent[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => ({
    campaignId: campaigns[i % campaigns.length]!,
    eventId: `ev-${seed}-${i}`,
    amountMicros: 1 + Math.floor(r() * 10_000),
  }));
}

/** The events in a shuffled order with about dupShare of them sent a second time. */
export function streamWithResends(events: SpendEvent[], dupShare: number, seed: number): SpendEvent[] {
  const r = rng(seed ^ 0x5bd1e995);
  const out = [...events];
  for (const e of events) if (r() < dupShare) out.push(e);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export function expectedTotals(events: SpendEvent[]): Map<string, number> {
  const seen = new Set<string>();
  const totals = new Map<string, number>();
  for (const e of events) {
    const k = `${e.campaignId}\n${e.eventId}`;
    if (seen.has(k)) continue;
    seen.add(k);
    totals.set(e.campaignId, (totals.get(e.campaignId) ?? 0) + e.amountMicros);
  }
  return totals;
}

export type Answer = 'applied' | 'duplicate' | 'error' | 'failed';

export interface SendLog {
  /** Per send, in completion order. */
  answers: { event: SpendEvent; answer: Answer; latencyMs: number; sentAtMs: number }[];
}

/**
 * Sends the stream with `concurrency` concurrent senders, one POST /v1/spend per event. Stops
 * early (leaving the rest unsent) when shouldStop() turns true.
 */
export async function send(
  url: string,
  stream: SpendEvent[],
  concurrency: number,
  log: SendLog,
  shouldStop: () => boolean = () => false,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < stream.length && !shouldStop()) {
      const event = stream[next++]!;
      const sentAtMs = Date.now();
      const t0 = performance.now();
      let answer: Answer;
      let checked: { status: number; body: unknown } | null = null;
      try {
        const res = await fetch(`${url}/v1/spend`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(event),
        });
        const body = (await res.json()) as { status?: string };
        checked = { status: res.status, body };
        answer = res.status === 200 && (body.status === 'applied' || body.status === 'duplicate') ? body.status : 'error';
      } catch {
        answer = 'failed';
      }
      // Outside the try: an answer docs/openapi.yaml does not describe fails the test, not the send.
      if (checked !== null) checkResponse('POST', '/v1/spend', checked.status, checked.body);
      log.answers.push({ event, answer, latencyMs: performance.now() - t0, sentAtMs });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
