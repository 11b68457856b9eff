/**
 * Inverted dropout's spec: each element is kept with probability 1 − p and scaled by 1/(1 − p), so the expected
 * value is unchanged. The mask comes from lorakit's seeded generator, on the host for every backend, so a seed gives
 * the same mask on the CPU and the GPU.
 */
import { Rng } from '../../core/rng';

/** n values of the mask: 1/(1 − p) where kept, 0 where dropped */
export function dropoutMask(n: number, p: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const keep = 1 / (1 - p);
  const mask = new Float32Array(n);
  for (let i = 0; i < n; i++) mask[i] = rng.next() >= p ? keep : 0;
  return mask;
}
