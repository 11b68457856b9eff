/** The elementwise ops' and reductions' spec, over f32 arrays of equal length. */
import { f32Out } from '../../core/f32pool';

export function add(a: Float32Array, b: Float32Array): Float32Array {
  const out = f32Out(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

export function mul(a: Float32Array, b: Float32Array): Float32Array {
  const out = f32Out(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] * b[i];
  return out;
}

/** a += s·b in place */
export function axpy(a: Float32Array, b: Float32Array, s: number): void {
  if (s === 1) for (let i = 0; i < a.length; i++) a[i] += b[i];
  else for (let i = 0; i < a.length; i++) a[i] += s * b[i];
}

/** a *= s in place */
export function scale(a: Float32Array, s: number): void {
  for (let i = 0; i < a.length; i++) a[i] *= s;
}

/** y (N, M) += b (M) on every row */
export function addBias(y: Float32Array, b: Float32Array, N: number, M: number): void {
  for (let n = 0; n < N; n++) for (let m = 0; m < M; m++) y[n * M + m] += b[m];
}

/** Σ x² */
export function sumSquares(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}
