/** Cross-entropy with its gradient in WGSL, one workgroup a row; reference.ts is the spec. */
import { Caps, HEAD, LANES, LANE_ARGS, RO, RW, enables, wgReduce } from '../wgsl';

export const CROSS_ENTROPY_KERNELS = {
  /**
   * Cross-entropy, one workgroup per row: dlogits = (softmax − onehot)·gradScale and the row's loss (0 for an
   * ignored row); the row's max and sum of exponentials are workgroup reductions. P = [N, V, gradScale]
   */
  cross_entropy: (c: Caps) =>
    enables(c) +
    HEAD +
    RO(1, 'x') +
    RO(2, 'tg', 'i32') +
    RW(3, 'dx') +
    RW(4, 'rl') +
    wgReduce(c, c.rowWg) +
    /* wgsl */ `
@compute @workgroup_size(${c.rowWg}) fn main(${LANE_ARGS(c)}, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = wg.x + wg.y * nw.x;
  let V = pu(1u);
  if (n >= pu(0u)) { return; }
  let o = n * V;
  let t = tg[n];
  let on = t >= 0;
  var m = -3.0e38;
  for (var c = li; c < V; c = c + ${c.rowWg}u) { m = max(m, x[o + c]); }
  let mx = wg_max(m, ${LANES(c)});
  var sum = 0.0;
  for (var c = li; c < V; c = c + ${c.rowWg}u) { sum = sum + exp(x[o + c] - mx); }
  let tot = wg_sum(sum, ${LANES(c)});
  let k = select(0.0, pf(2u) / tot, on);
  for (var c = li; c < V; c = c + ${c.rowWg}u) { dx[o + c] = exp(x[o + c] - mx) * k; }
  storageBarrier();
  if (li == 0u) {
    if (on) {
      dx[o + u32(t)] = dx[o + u32(t)] - pf(2u);
      rl[n] = mx + log(tot) - x[o + u32(t)];
    } else { rl[n] = 0.0; }
  }
}`,
};
