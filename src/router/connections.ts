/**
 * Open stream connections over every router thread of the process, in a SharedArrayBuffer that
 * main hands to each router thread: PACER_STREAM_CONNECTIONS_MAX is a limit of the process, not of
 * a router. Each router still counts its own for pacer_ws_connections (the merge adds them up).
 * The check at upgrade and the count at open are apart, as with one router, so concurrent upgrades
 * on different routers may pass the limit by at most one connection per router.
 */
export class ConnectionCount {
  private readonly cell: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT)) {
    this.cell = new Int32Array(buffer);
  }

  get open(): number {
    return Atomics.load(this.cell, 0);
  }

  add(n: number): void {
    Atomics.add(this.cell, 0, n);
  }
}
