/** RoPE's spec (rotate-half pairs, as Hugging Face's Llama); the WGSL kernel is tested against it. */
import { f32Out } from '../../core/f32pool';

/**
 * RoPE in Hugging Face's rotate-half convention on x (N, heads, D), row n at position pos[n]:
 *   out[i] = x[i]·cos − x[i+D/2]·sin,  out[i+D/2] = x[i+D/2]·cos + x[i]·sin   (i < D/2)
 * cos/sin are (P, D/2) tables indexed by position. The inverse (sin → −sin) is the backward pass.
 */
export function ropeForward(
  x: Float32Array,
  N: number,
  heads: number,
  D: number,
  pos: Int32Array,
  cos: Float32Array,
  sin: Float32Array,
  inverse = false,
): Float32Array {
  const out = f32Out(x.length);
  const h2 = D / 2;
  for (let n = 0; n < N; n++) {
    const t = pos[n] * h2;
    for (let h = 0; h < heads; h++) {
      const o = (n * heads + h) * D;
      for (let i = 0; i < h2; i++) {
        const c = cos[t + i];
        const s = inverse ? -sin[t + i] : sin[t + i];
        const a = x[o + i];
        const b = x[o + i + h2];
        out[o + i] = a * c - b * s;
        out[o + i + h2] = b * c + a * s;
      }
    }
  }
  return out;
}
