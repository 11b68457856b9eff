/**
 * Inverted dropout's spec: each element is kept with probability 1 − p and scaled by 1/(1 − p), so the expected
 * value is unchanged. Which elements are kept comes from a counter-based generator, Philox-4x32-10 (Salmon et al.,
 * "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the generator of cuRAND and of PyTorch's CUDA dropout):
 * element i keeps iff word i mod 4 of philox(counter (⌊i/4⌋, 0, 0, 0), key (seed, 0)) ≥ ⌊p·2³²⌋. Any element's bit
 * is a pure function of (seed, i), so the GPU makes the mask in place (ops/dropout/dropout.wgsl.ts, the same
 * arithmetic) and it equals this one bit for bit; the CPU backend uses this one.
 */
import { f32 } from '../../core/f32pool';

const M0 = 0xd2511f53,
  M1 = 0xcd9e8d57,
  W0 = 0x9e3779b9,
  W1 = 0xbb67ae85;

/** the high 32 bits of the 64-bit product of two u32, from 16-bit halves (every partial product is exact in f64) */
export function mulhi32(a: number, b: number): number {
  const aL = a & 0xffff,
    aH = a >>> 16,
    bL = b & 0xffff,
    bH = b >>> 16;
  const lh = aL * bH,
    hl = aH * bL;
  const mid = ((aL * bL) >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (aH * bH + Math.floor(lh / 65536) + Math.floor(hl / 65536) + Math.floor(mid / 65536)) >>> 0;
}

/** Philox-4x32 with 10 rounds: four u32 words of counter c under key (k0, k1), written into out */
export function philox4x32(c: ArrayLike<number>, k0: number, k1: number, out: Uint32Array): Uint32Array {
  let c0 = c[0] >>> 0,
    c1 = c[1] >>> 0,
    c2 = c[2] >>> 0,
    c3 = c[3] >>> 0;
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi32(M0, c0),
      lo0 = Math.imul(M0, c0) >>> 0,
      hi1 = mulhi32(M1, c2),
      lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

/** the u32 a word must reach to keep its element: ⌊p·2³²⌋ (keep rate 1 − threshold/2³²) */
export const dropThreshold = (p: number) => Math.min(0xffffffff, Math.floor(p * 2 ** 32));

/** n values of the mask: 1/(1 − p) (as f32) where kept, 0 where dropped */
export function dropoutMask(n: number, p: number, seed: number): Float32Array {
  const keep = Math.fround(1 / (1 - p));
  const t = dropThreshold(p);
  const mask = f32(n);
  const ctr = new Uint32Array(4);
  const w = new Uint32Array(4);
  for (let i = 0; i < n; i += 4) {
    ctr[0] = i / 4;
    philox4x32(ctr, seed >>> 0, 0, w);
    for (let j = 0; j < 4 && i + j < n; j++) mask[i + j] = w[j] >= t ? keep : 0;
  }
  return mask;
}
