/** The matrix product in WGSL, and the tiled main loop it shares with the 4-bit product (../qmatmul). */
import { Caps, HEAD, RO, RW, enables, fetchWeight } from '../wgsl';

/**
 * The product's main loop, shared by matmul and qmatmul (each defines loadA, loadB, store, ldc, c0): 64×64 tiles
 * of C per workgroup of 16×16 invocations, each computing 4×4 outputs from `bk`-deep slices of A and B staged in
 * workgroup memory (bk from the device's workgroup storage: plan.ts). `bh`: B's slice is kept in f16 (loadB then
 * returns f16: an f16 weight, exact), halving its workgroup memory; the products and sums stay f32.
 * Dispatch: [ceil(N/64), ceil(M/64), 1].
 */
export function blocked(bk: number, bh = false): string {
  return /* wgsl */ `
var<workgroup> As: array<array<f32, 64>, ${bk}>; // [k][row]
var<workgroup> Bs: array<array<${bh ? 'f16' : 'f32'}, 64>, ${bk}>; // [k][col]
@compute @workgroup_size(16, 16) fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>) {
  let M = pu(0u); let N = pu(1u); let K = pu(2u);
  let row0 = w.y * 64u; let col0 = w.x * 64u;
  let t = l.y * 16u + l.x;
  var acc: array<array<f32, 4>, 4>;
  for (var i = 0u; i < 4u; i = i + 1u) { for (var j = 0u; j < 4u; j = j + 1u) { acc[i][j] = 0.0; } }
  for (var k0 = 0u; k0 < K; k0 = k0 + ${bk}u) {
    // ${64 * bk} values of each tile, ${bk / 4} per invocation: element e = t + 256·q is (k = e / 64, m = e % 64)
    for (var q = 0u; q < ${bk / 4}u; q = q + 1u) {
      let e = t + 256u * q;
      let kk = e / 64u; let mm = e % 64u;
      As[kk][mm] = loadA(row0 + mm, k0 + kk);
      Bs[kk][mm] = loadB(k0 + kk, col0 + mm);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${bk}u; kk = kk + 1u) {
      var a: array<f32, 4>; var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i = i + 1u) { a[i] = As[kk][l.y + 16u * i]; b[i] = f32(Bs[kk][l.x + 16u * i]); }
      for (var i = 0u; i < 4u; i = i + 1u) { for (var j = 0u; j < 4u; j = j + 1u) { acc[i][j] = acc[i][j] + a[i] * b[j]; } }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i = i + 1u) {
    let r = row0 + l.y + 16u * i;
    if (r >= M) { continue; }
    for (var j = 0u; j < 4u; j = j + 1u) {
      let c = col0 + l.x + 16u * j;
      if (c < N) { store(r * ldc() + c0() + c, acc[i][j]); }
    }
  }
}
`;
}

/**
 * C (M, N) = alpha·op(A)·op(B) + beta·C. P = [M, N, K, transA, transB, alpha, beta, ldc, c0, lda, a0, half]: C's
 * rows are ldc apart from column c0 (0: N and 0), A's (not transposed) lda apart from column a0 (0: K and 0), so a
 * weight split into row blocks multiplies into its slice of C, or reads its slice of A. B: f32; a half-precision
 * weight two to a u32 (`half`: P[11] 1 bf16, 2 f16); or (`f16`, shader-f16) an array<f16>, staged as f16.
 */
function matmulKernel(b: 'f32' | 'half' | 'f16') {
  return (c: Caps) => {
    const zero = b === 'f16' ? 'f16(0.0)' : '0.0';
    return (
      enables(c) +
      HEAD +
      RO(1, 'A') +
      RO(2, 'B', { f32: 'f32', half: 'u32', f16: 'f16' }[b]) +
      RW(3, 'C') +
      fetchWeight('B', b === 'half', b === 'f16') +
      /* wgsl */ `
fn loadA(r: u32, k: u32) -> f32 {
  let M = pu(0u); let K = pu(2u);
  if (r >= M || k >= K) { return 0.0; }
  if (pu(3u) == 1u) { return A[k * M + r]; }
  let lda = select(pu(9u), K, pu(9u) == 0u);
  return A[r * lda + pu(10u) + k];
}
fn loadB(k: u32, c: u32) -> ${b === 'f16' ? 'f16' : 'f32'} {
  let N = pu(1u); let K = pu(2u);
  if (k >= K || c >= N) { return ${zero}; }
  if (pu(4u) == 1u) { return ${b === 'f16' ? 'fetchh_B' : 'fetch_B'}(c * K + k); }
  return ${b === 'f16' ? 'fetchh_B' : 'fetch_B'}(k * N + c);
}
fn store(i: u32, acc: f32) {
  var prev = 0.0;
  if (pf(6u) != 0.0) { prev = pf(6u) * C[i]; }
  C[i] = pf(5u) * acc + prev;
}
fn ldc() -> u32 { return select(pu(7u), pu(1u), pu(7u) == 0u); }
fn c0() -> u32 { return pu(8u); }
` +
      blocked(c.mmBK, b === 'f16')
    );
  };
}

export const MATMUL_KERNELS = {
  /** C (M, N) = alpha·op(A)·op(B) + beta·C (see matmulKernel for P) */
  matmul: matmulKernel('f32'),
  /** the same with B a half-precision weight, two values a u32 (P[11]: 1 bf16, 2 f16), widened as it is loaded */
  matmul_half: matmulKernel('half'),
  /** the same with B an f16 weight read as f16 (shader-f16 only) and staged as f16: the same numbers, half the tile */
  matmul_f16: matmulKernel('f16'),
};
