/** Elementwise ops and reductions in WGSL: add, mul, axpy, scale, bias rows, sum and sum of squares. */
import { HEAD, RO, RW, ew } from '../wgsl';

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
  /** one workgroup sums (or sums the squares of, P[1] = 1) n values into out[0]. P = [n, square] */
  reduce:
    HEAD +
    RO(1, 'x') +
    RW(2, 'out') +
    /* wgsl */ `
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256) fn main(@builtin(local_invocation_id) l: vec3<u32>) {
  var s = 0.0;
  for (var i = l.x; i < pu(0u); i = i + 256u) { let v = x[i]; s = s + select(v, v * v, pu(1u) == 1u); }
  part[l.x] = s;
  workgroupBarrier();
  for (var w = 128u; w > 0u; w = w >> 1u) { if (l.x < w) { part[l.x] = part[l.x] + part[l.x + w]; } workgroupBarrier(); }
  if (l.x == 0u) { out[0] = part[0]; }
}`,
};
