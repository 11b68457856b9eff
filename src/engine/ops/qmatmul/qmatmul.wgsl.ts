/** The fused 4-bit (NF4/FP4) product in WGSL: codes decoded while the tiles are loaded; reference.ts is the spec. */
import { Caps, HEAD, RO, RW } from '../wgsl';
import { blocked } from '../matmul/matmul.wgsl';

/** x · op(W) for a 4-bit W; `dq`: the block scales are double-quantized (decoded here) */
const qmatmulKernel = (dq: boolean) => (c: Caps) => {
  const scales = dq ? RO(3, 'S', 'u32') + RO(6, 'NA') + RO(7, 'NM') : RO(3, 'S');
  const scale = dq
    ? /* wgsl */ `fn scale(b: u32) -> f32 { let c = (S[b >> 2u] >> ((b & 3u) * 8u)) & 255u; return NM[c] * NA[b >> 8u] + pf(8u); }`
    : /* wgsl */ `fn scale(b: u32) -> f32 { return S[b]; }`;
  return (
    HEAD +
    RO(1, 'X') +
    RO(2, 'Q', 'u32') +
    scales +
    RO(4, 'T') +
    RW(5, 'C') +
    scale +
    /* wgsl */ `
fn deq(idx: u32) -> f32 {
  let byte = (Q[idx >> 3u] >> (((idx >> 1u) & 3u) * 8u)) & 255u;
  let code = select(byte >> 4u, byte & 15u, (idx & 1u) == 1u);
  return T[code] * scale(idx >> pu(7u));
}
fn loadA(r: u32, k: u32) -> f32 {
  if (r >= pu(0u) || k >= pu(2u)) { return 0.0; }
  return X[r * pu(2u) + k];
}
fn loadB(k: u32, c: u32) -> f32 {
  if (k >= pu(2u) || c >= pu(1u)) { return 0.0; }
  if (pu(3u) == 1u) { return deq(c * pu(6u) + k); }
  return deq(k * pu(6u) + c);
}
fn store(i: u32, acc: f32) {
  var prev = 0.0;
  if (pf(4u) != 0.0) { prev = C[i]; }
  C[i] = acc + prev;
}
fn ldc() -> u32 { return pu(1u); }
fn c0() -> u32 { return 0u; }
` +
    blocked(c.mmBK)
  );
};

export const QMATMUL_KERNELS = {
  /**
   * C (M, N) = X (M, K) · op(W) (+ C when beta = 1) for a 4-bit W (R × Cw), dequantized while loading tiles:
   * value(idx) = table[code(idx)] · scale[idx >> bsl]. P = [M, N, K, trans, beta (f32), R, Cw, bsl]
   */
  qmatmul: qmatmulKernel(false),
  /**
   * The same with double-quantized scales decoded in the kernel: scale(b) = map[code8(b)] · nested[b >> 8] + offset
   * (P[8], f32), the codes one byte a block, four to a u32.
   */
  qmatmul_dq: qmatmulKernel(true),
};
