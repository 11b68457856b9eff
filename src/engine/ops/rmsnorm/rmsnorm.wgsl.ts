/** RMSNorm forward and backward in WGSL, one workgroup a row; reference.ts is the spec. */
import { HEAD, RO, RW } from '../wgsl';

/** one workgroup of 64 per row n of a (N, C) tensor (o = n·C): part[0] ends as Σ_c `term`, then `tail` runs */
const rowSum = (bindings: string, term: string, tail: string) =>
  HEAD +
  bindings +
  /* wgsl */ `
var<workgroup> part: array<f32, 64>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = wg.x + wg.y * nw.x;
  let C = pu(1u);
  if (n >= pu(0u)) { return; }
  let o = n * C;
  var acc = 0.0;
  for (var c = l.x; c < C; c = c + 64u) { acc = acc + ${term}; }
  part[l.x] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) { if (l.x < s) { part[l.x] = part[l.x] + part[l.x + s]; } workgroupBarrier(); }
  ${tail}
}`;

export const RMSNORM_KERNELS = {
  /** y = x·rstd·w, rstd = 1/sqrt(mean(x²) + eps). P = [N, C, eps] */
  rmsnorm: rowSum(
    RO(1, 'x') + RO(2, 'w') + RW(3, 'y') + RW(4, 'rs'),
    'x[o + c] * x[o + c]',
    `
  let r = 1.0 / sqrt(part[0] / f32(C) + pf(2u));
  if (l.x == 0u) { rs[n] = r; }
  for (var c = l.x; c < C; c = c + 64u) { y[o + c] = (x[o + c] * r) * w[c]; }`,
  ),

  /** dx = dy·w·r − (r³·Σ dy·w·x / C)·x. P = [N, C] */
  rmsnorm_bwd: rowSum(
    RO(1, 'dy') + RO(2, 'x') + RO(3, 'w') + RO(4, 'rs') + RW(5, 'dx'),
    'dy[o + c] * w[c] * x[o + c]',
    `
  let r = rs[n];
  let k = r * r * r * part[0] / f32(C);
  for (var c = l.x; c < C; c = c + 64u) { dx[o + c] = dy[o + c] * w[c] * r - k * x[o + c]; }`,
  ),
};
