// cluster-key-slot ships no types. It is the slot function ioredis itself uses to check a
// pipeline's keys, so grouping by it agrees with ioredis by construction.
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0-16383) of a key, honouring a {hash tag}. */
  function calculateSlot(key: string | Buffer): number;
  export default calculateSlot;
}
