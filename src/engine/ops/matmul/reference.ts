/**
 * The matrix product's spec: C = alpha·op(A)·op(B) + beta·C in three loops, obviously correct. The WebAssembly
 * gemm (gemm.ts) and the WGSL matmul (matmul.wgsl.ts) are tested against it.
 */
import { bf16ToF32, f16ToF32 } from '../../core/dtype';

export interface GemmArgs {
  M: number;
  N: number;
  K: number;
  a: Float32Array; // op(A) is (M, K): A is (M, K), or (K, M) when transA
  b: Float32Array | Uint16Array; // op(B) is (K, N): B is (K, N), or (N, K) when transB; half floats as Uint16Array
  /** what a Uint16Array B holds: bf16 (the default) or f16 bits */
  bHalf?: 'bf16' | 'f16';
  transA?: boolean;
  transB?: boolean;
  c: Float32Array; // (M, N)
  alpha?: number;
  beta?: number; // 0 overwrites C
}

export function matmulRef(g: GemmArgs): void {
  const { M, N, K, a, c } = g;
  const b = g.b instanceof Uint16Array ? (g.bHalf === 'f16' ? f16ToF32(g.b) : bf16ToF32(g.b)) : g.b;
  const alpha = g.alpha ?? 1;
  const beta = g.beta ?? 0;
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = g.transA ? a[k * M + i] : a[i * K + k];
        const bv = g.transB ? b[j * K + k] : b[k * N + j];
        s += av * bv;
      }
      c[i * N + j] = alpha * s + (beta === 0 ? 0 : beta * c[i * N + j]);
    }
}
