/*
 * The configuration store's contract moved to src/store/config-store.ts and its memory
 * implementation to src/store/memory.ts, so store adapters import nothing from the admin thread.
 * Re-exported here for the admin's older imports.
 */
export * from '../store/config-store.js';
export { MemoryConfigStore } from '../store/memory.js';
