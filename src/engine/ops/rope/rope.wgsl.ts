/** Rotate-half RoPE in WGSL; reference.ts is the spec. */
import { HEAD, RO, RW } from '../wgsl';

export const ROPE_KERNELS = {
  /** rotate-half RoPE on x (N, heads, D); P = [N, heads, D, inverse] */
  rope:
    HEAD +
    RO(1, 'x') +
    RO(2, 'pos', 'i32') +
    RO(3, 'cs') +
    RO(4, 'sn') +
    RW(5, 'ob') +
    /* wgsl */ `
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let t = flat(g, nw, 256u);
  let H = pu(1u); let D = pu(2u); let h2 = D / 2u;
  if (t >= pu(0u) * H * h2) { return; }
  let i = t % h2; let nh = t / h2; let n = nh / H;
  let o = nh * D;
  let tb = u32(pos[n]) * h2 + i;
  let c = cs[tb];
  var s = sn[tb];
  if (pu(3u) == 1u) { s = -s; }
  let a = x[o + i]; let b = x[o + i + h2];
  ob[o + i] = a * c - b * s;
  ob[o + i + h2] = b * c + a * s;
}`,
};
