import type { MessagePort } from 'node:worker_threads';
import type { CampaignSnapshot, CounterStore, FlushBatch, FlushOutcome } from '../../shards/ports.js';
import type { AdminToShard, ShardToAdmin } from '../messages.js';

type StoreReply = Extract<AdminToShard, { type: 'storeReply' }>;

/**
 * The shard's side of the embedded store: the embedded database is one PGlite instance owned by the
 * admin thread (PGlite is single-connection and in-process), so a shard's apply and load travel to
 * the admin over the shard's admin MessagePort and come back as storeReply messages. The deadline
 * and the spool sit in front of it like in front of Redis (src/store/resilient.ts).
 */
export class ForwardingCounterStore implements CounterStore {
  readonly kind = 'embedded';
  private corr = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(private readonly port: MessagePort) {}

  private request<T>(msg: ShardToAdmin & { corr: number }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.set(msg.corr, { resolve: resolve as (v: unknown) => void, reject });
      this.port.postMessage(msg);
    });
  }

  apply(batch: FlushBatch): Promise<FlushOutcome> {
    return this.request({ type: 'storeApply', corr: ++this.corr, batch });
  }

  load(campaignId: string, day: string, flightStartDay: string | null): Promise<CampaignSnapshot> {
    return this.request({ type: 'storeLoad', corr: ++this.corr, campaignId, day, flightStartDay });
  }

  /** Called by the shard host for every storeReply from the admin thread. */
  onReply(msg: StoreReply): void {
    const p = this.pending.get(msg.corr);
    if (p === undefined) return; // answered after its deadline: the caller has moved on
    this.pending.delete(msg.corr);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(new Error(msg.error));
  }

  async close(): Promise<void> {
    for (const p of this.pending.values()) p.reject(new Error('store closed'));
    this.pending.clear();
  }
}
