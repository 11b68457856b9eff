/** Elementwise ops and reductions in WGSL: add, mul, axpy, scale, bias rows, sum and sum of squares. */
import { Caps, HEAD, LANES, LANE_ARGS, RO, RW, enables, ew, wgReduce } from '../wgsl';

export const ELEMENTWISE_KERNELS = {
  add: ew('add', RO(1, 'a') + RO(2, 'b') + RW(3, 'o'), 'o[i] = a[i] + b[i];'),
  mul: ew('mul', RO(1, 'a') + RO(2, 'b') + RW(3, 'o'), 'o[i] = a[i] * b[i];'),
  axpy: ew('axpy', RW(1, 'a') + RO(2, 'b'), 'a[i] = a[i] + s * b[i];'),
  scale: ew('scale', RW(1, 'a'), 'a[i] = a[i] * s;'),
  /** y (N, M) += b (M) on every row; P = [n, M] */
  bias:
    HEAD +
    RW(1, 'y') +
    RO(2, 'b') +
    /* wgsl */ `
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat(g, nw, 256u);
  if (i >= pu(0u)) { return; }
  y[i] = y[i] + b[i % pu(1u)];
}`,
  /**
   * One workgroup sums (or sums the squares of, P[1] = 1) n values into out[0], or adds them to it (P[2] = 1: many
   * tensors' sums of squares into one scalar, one dispatch each, read back once). P = [n, square, accumulate]
   */
  reduce: (c: Caps) =>
    enables(c) +
    HEAD +
    RO(1, 'x') +
    RW(2, 'out') +
    wgReduce(c, c.rowWg) +
    /* wgsl */ `
@compute @workgroup_size(${c.rowWg}) fn main(${LANE_ARGS(c)}) {
  var s = 0.0;
  for (var i = li; i < pu(0u); i = i + ${c.rowWg}u) { let v = x[i]; s = s + select(v, v * v, pu(1u) == 1u); }
  let tot = wg_sum(s, ${LANES(c)});
  if (li == 0u) { out[0] = select(0.0, out[0], pu(2u) == 1u) + tot; }
}`,
};
