/** SwiGLU's spec, forward and backward: h = silu(gate)·up. */

const silu = (x: number) => x / (1 + Math.exp(-x));

/** h = silu(gate) · up, elementwise */
export function swigluForward(gate: Float32Array, up: Float32Array): Float32Array {
  const h = new Float32Array(gate.length);
  for (let i = 0; i < h.length; i++) h[i] = silu(gate[i]) * up[i];
  return h;
}

export function swigluBackward(dh: Float32Array, gate: Float32Array, up: Float32Array) {
  const dgate = new Float32Array(gate.length);
  const dup = new Float32Array(up.length);
  for (let i = 0; i < dh.length; i++) {
    const sg = 1 / (1 + Math.exp(-gate[i]));
    const s = gate[i] * sg;
    dup[i] = dh[i] * s;
    dgate[i] = dh[i] * up[i] * sg * (1 + gate[i] * (1 - sg));
  }
  return { dgate, dup };
}
