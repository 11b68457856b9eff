/** RoPE frequency tables as Hugging Face computes them (f32), including `llama3` and `linear` scaling. */
import { ModelSpec } from '../formats/config';

const f = Math.fround;

export function invFreq(spec: ModelSpec): Float32Array {
  const D = spec.headDim;
  const inv = new Float32Array(D / 2);
  for (let i = 0; i < D / 2; i++) inv[i] = f(1 / f(spec.rope.theta ** f((2 * i) / D)));
  const s = spec.rope.scaling;
  if (s?.type === 'linear') for (let i = 0; i < inv.length; i++) inv[i] = f(inv[i] / s.factor);
  if (s?.type === 'llama3') {
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositions / s.highFreqFactor;
    for (let i = 0; i < inv.length; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      let v = wavelen > lowWavelen ? inv[i] / s.factor : inv[i];
      if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
        const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        v = ((1 - smooth) * v) / s.factor + smooth * v;
      }
      inv[i] = f(v);
    }
  }
  return inv;
}

/** cos and sin, each (P, D/2), for positions 0..P−1 */
export function ropeTables(spec: ModelSpec, P: number): { cos: Float32Array; sin: Float32Array } {
  const inv = invFreq(spec);
  const h = inv.length;
  const cos = new Float32Array(P * h);
  const sin = new Float32Array(P * h);
  for (let p = 0; p < P; p++)
    for (let i = 0; i < h; i++) {
      const a = f(p * inv[i]);
      cos[p * h + i] = Math.cos(a);
      sin[p * h + i] = Math.sin(a);
    }
  return { cos, sin };
}
