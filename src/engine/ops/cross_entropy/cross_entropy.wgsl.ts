/** Cross-entropy with its gradient in WGSL, one workgroup a row; reference.ts is the spec. */
import { HEAD, RO, RW } from '../wgsl';

export const CROSS_ENTROPY_KERNELS = {
  /**
   * Cross-entropy, one workgroup per row: dlogits = (softmax − onehot)·gradScale and the row's loss (0 for an
   * ignored row). P = [N, V, gradScale]
   */
  cross_entropy:
    HEAD +
    RO(1, 'x') +
    RO(2, 'tg', 'i32') +
    RW(3, 'dx') +
    RW(4, 'rl') +
    /* wgsl */ `
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256) fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = wg.x + wg.y * nw.x;
  let V = pu(1u);
  if (n >= pu(0u)) { return; }
  let o = n * V;
  let t = tg[n];
  let on = t >= 0;
  var m = -3.0e38;
  for (var c = l.x; c < V; c = c + 256u) { m = max(m, x[o + c]); }
  part[l.x] = m;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) { if (l.x < s) { part[l.x] = max(part[l.x], part[l.x + s]); } workgroupBarrier(); }
  let mx = part[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var c = l.x; c < V; c = c + 256u) { sum = sum + exp(x[o + c] - mx); }
  part[l.x] = sum;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) { if (l.x < s) { part[l.x] = part[l.x] + part[l.x + s]; } workgroupBarrier(); }
  let tot = part[0];
  let k = select(0.0, pf(2u) / tot, on);
  for (var c = l.x; c < V; c = c + 256u) { dx[o + c] = exp(x[o + c] - mx) * k; }
  workgroupBarrier();
  if (l.x == 0u) {
    if (on) {
      dx[o + u32(t)] = dx[o + u32(t)] - pf(2u);
      rl[n] = mx + log(tot) - x[o + u32(t)];
    } else { rl[n] = 0.0; }
  }
}`,
};
