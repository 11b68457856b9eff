/** RMSNorm forward and backward in WGSL, one workgroup a row; reference.ts is the spec. */
import { Caps, HEAD, LANES, LANE_ARGS, RO, RW, enables, wgReduce } from '../wgsl';

/** one workgroup of `rowWg` per row n of a (N, C) tensor (o = n·C): `tot` = Σ_c `term`, then `tail` runs */
const rowSum = (bindings: string, term: string, tail: string) => (c: Caps) =>
  enables(c) +
  HEAD +
  bindings +
  wgReduce(c, c.rowWg) +
  /* wgsl */ `
@compute @workgroup_size(${c.rowWg}) fn main(${LANE_ARGS(c)}, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = wg.x + wg.y * nw.x;
  let C = pu(1u);
  if (n >= pu(0u)) { return; }
  let o = n * C;
  var acc = 0.0;
  for (var c = li; c < C; c = c + ${c.rowWg}u) { acc = acc + ${term}; }
  let tot = wg_sum(acc, ${LANES(c)});
  ${tail.replaceAll('STEP', `${c.rowWg}u`)}
}`;

export const RMSNORM_KERNELS = {
  /** y = x·rstd·w, rstd = 1/sqrt(mean(x²) + eps). P = [N, C, eps] */
  rmsnorm: rowSum(
    RO(1, 'x') + RO(2, 'w') + RW(3, 'y') + RW(4, 'rs'),
    'x[o + c] * x[o + c]',
    `
  let r = 1.0 / sqrt(tot / f32(C) + pf(2u));
  if (li == 0u) { rs[n] = r; }
  for (var c = li; c < C; c = c + STEP) { y[o + c] = (x[o + c] * r) * w[c]; }`,
  ),

  /** dx = dy·w·r − (r³·Σ dy·w·x / C)·x. P = [N, C] */
  rmsnorm_bwd: rowSum(
    RO(1, 'dy') + RO(2, 'x') + RO(3, 'w') + RO(4, 'rs') + RW(5, 'dx'),
    'dy[o + c] * w[c] * x[o + c]',
    `
  let r = rs[n];
  let k = r * r * r * tot / f32(C);
  for (var c = li; c < C; c = c + STEP) { dx[o + c] = dy[o + c] * w[c] * r - k * x[o + c]; }`,
  ),
};
