/**
 * RMSNorm's spec, forward and backward over typed arrays: y = x / sqrt(mean(x²) + eps) · w, eps inside the square
 * root (as in Llama and Hugging Face's LlamaRMSNorm). The WGSL kernel is tested against it; the finite-difference
 * tests check its backward pass.
 */
import { f32, f32Out } from '../../core/f32pool';

/** y (N, C) = x / rms(x) * w; rstd (N) kept for the backward pass */
export function rmsnormForward(x: Float32Array, w: Float32Array, N: number, C: number, eps: number) {
  const y = f32Out(N * C);
  const rstd = f32(N);
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[o + c] * x[o + c];
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) y[o + c] = Math.fround(x[o + c] * r) * w[c];
  }
  return { y, rstd };
}

/** dx (N, C) given dy (N, C); the norm weight is frozen so no dw */
export function rmsnormBackward(dy: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array, N: number, C: number) {
  const dx = f32Out(N * C);
  for (let n = 0; n < N; n++) {
    const o = n * C;
    const r = rstd[n];
    let dot = 0; // Σ dy·w·x
    for (let c = 0; c < C; c++) dot += dy[o + c] * w[c] * x[o + c];
    const k = (r * r * r * dot) / C;
    for (let c = 0; c < C; c++) dx[o + c] = dy[o + c] * w[c] * r - k * x[o + c];
  }
  return dx;
}
