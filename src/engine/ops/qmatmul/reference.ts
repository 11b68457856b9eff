/**
 * The 4-bit product's spec: decode the whole weight (the 4-bit codec's dequantize), then the plain matrix product.
 * The fused kernels (qgemm.ts, qmatmul.wgsl.ts) never hold the f32 weight; they must give the same numbers.
 */
import { QuantWeight, dequantizeWeight } from '../../core/qweight';
import { matmulRef } from '../matmul/reference';

/** c (M, N) = x (M, K) · op(W) (+ c when beta = 1): op(W) = Wᵀ when trans (K = cols), else W (K = rows) */
export function qmatmulRef(x: Float32Array, M: number, q: QuantWeight, trans: boolean, c: Float32Array, beta: 0 | 1): void {
  const [R, C] = q.shape;
  matmulRef({ M, N: trans ? R : C, K: trans ? C : R, a: x, b: dequantizeWeight(q), transB: trans, c, beta });
}
