import type { MessagePort } from 'node:worker_threads';
import { limits } from '../../shards/limits.js';
import type { ShardEvent } from '../../shards/ports.js';
import type { CampaignSummary } from '../../shards/shard.js';
import { ApiError } from '../http/errors.js';
import type { AdminToShard, ShardToAdmin } from '../messages.js';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

export type StoreRequest = Extract<ShardToAdmin, { type: 'storeApply' | 'storeLoad' }>;

/** Distributive Omit, so each member of the message union keeps its own fields. */
type WithoutCorr<T> = T extends unknown ? Omit<T, 'corr'> : never;

/**
 * The admin thread's links to the shards: request/response over one MessagePort per shard, with a
 * deadline on every request, plus the stream of events (breaker transitions, rollovers) the shards
 * push.
 */
export class ShardLinks {
  private corr = 0;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly ports: readonly MessagePort[],
    onEvent: (shard: number, event: ShardEvent) => void,
    /** Embedded store: a shard's apply or load, answered with post(shard, storeReply). */
    onStoreRequest: (shard: number, msg: StoreRequest) => void = () => {},
    onFinalSummaries: (summaries: CampaignSummary[]) => void = () => {},
  ) {
    ports.forEach((port, shard) => {
      port.on('message', (msg: ShardToAdmin) => {
        switch (msg.type) {
          case 'event':
            onEvent(msg.shard, msg.event);
            return;
          case 'storeApply':
          case 'storeLoad':
            onStoreRequest(shard, msg);
            return;
          case 'finalSummaries':
            onFinalSummaries(msg.summaries);
            return;
          case 'reply':
            break;
          default: {
            const bad: never = msg;
            throw new Error(`unknown shard message ${JSON.stringify(bad)}`);
          }
        }
        const p = this.pending.get(msg.corr);
        if (p === undefined) return;
        this.pending.delete(msg.corr);
        clearTimeout(p.timer);
        if (msg.ok) p.resolve(msg.value);
        else p.reject(new Error(msg.error));
      });
    });
  }

  post(shard: number, msg: AdminToShard): void {
    this.ports[shard]!.postMessage(msg);
  }

  get count(): number {
    return this.ports.length;
  }

  request<T>(shard: number, msg: WithoutCorr<AdminToShard>, timeoutMs: number = limits.controlRequestTimeoutMs): Promise<T> {
    const corr = ++this.corr;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(corr);
        reject(new ApiError('NOT_READY', `shard ${shard} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(corr, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.ports[shard]!.postMessage({ ...msg, corr } as AdminToShard);
    });
  }

  close(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error('shutting down'));
    }
    this.pending.clear();
    for (const port of this.ports) port.close();
  }
}
