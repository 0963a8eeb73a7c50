/**
 * A small, fast, seeded generator (sfc32: 128-bit state, passes PractRand to large sizes). The
 * simulator seeds it from --seed so a day replays exactly; production seeds it from the OS.
 */
export function sfc32(seed: number, a2 = 0x9e3779b9, b2 = 0x243f6a88, c2 = 0xb7e15162): () => number {
  let a = a2 >>> 0;
  let b = b2 >>> 0;
  let c = c2 >>> 0;
  let d = seed >>> 0;
  const next = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  // Discard the first outputs: they are correlated with the seed.
  for (let i = 0; i < 15; i++) next();
  return next;
}
