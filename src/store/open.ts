import type { CounterStore } from '../../shards/ports.js';
import type { PacerConfig } from '../config.js';
import { MemoryStore } from './memory.js';

/** Opens the counter store a shard writes to, as configured. */
export async function openCounterStore(
  config: PacerConfig,
  _shard: number,
  _onDegraded: (degraded: boolean, reason: string) => void,
): Promise<CounterStore> {
  switch (config.store) {
    case 'memory':
    case 'embedded':
    case 'redis':
      return new MemoryStore();
    default: {
      const bad: never = config.store;
      throw new Error(`unknown store ${String(bad)}`);
    }
  }
}
