/** SwiGLU's spec, forward and backward: h = silu(gate)·up. */
import { f32 } from '../../core/f32pool';

const silu = (x: number) => x / (1 + Math.exp(-x));

/** h = silu(gate) · up, elementwise */
export function swigluForward(gate: Float32Array, up: Float32Array): Float32Array {
  const h = f32(gate.length);
  for (let i = 0; i < h.length; i++) h[i] = silu(gate[i]) * up[i];
  return h;
}

export function swigluBackward(dh: Float32Array, gate: Float32Array, up: Float32Array) {
  const dgate = f32(gate.length);
  const dup = f32(up.length);
  for (let i = 0; i < dh.length; i++) {
    const sg = 1 / (1 + Math.exp(-gate[i]));
    const s = gate[i] * sg;
    dup[i] = dh[i] * s;
    dgate[i] = dh[i] * up[i] * sg * (1 + gate[i] * (1 - sg));
  }
  return { dgate, dup };
}
