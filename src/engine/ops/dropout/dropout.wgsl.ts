/** Inverted dropout in WGSL, its mask made on the device by Philox-4x32-10; reference.ts is the spec (same bits). */
import { HEAD, RO, RW } from '../wgsl';

/** Philox-4x32-10 in u32 arithmetic: the high half of each 32×32 product from 16-bit halves, as reference.ts does */
const PHILOX = /* wgsl */ `
fn mulhi32(a: u32, b: u32) -> u32 {
  let aL = a & 0xffffu; let aH = a >> 16u; let bL = b & 0xffffu; let bH = b >> 16u;
  let lh = aL * bH; let hl = aH * bL;
  let mid = ((aL * bL) >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return aH * bH + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}
fn philox(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = ctr; var k = key;
  for (var r = 0u; r < 10u; r = r + 1u) {
    if (r > 0u) { k = k + vec2<u32>(0x9e3779b9u, 0xbb67ae85u); }
    let hi0 = mulhi32(0xd2511f53u, c.x); let lo0 = 0xd2511f53u * c.x;
    let hi1 = mulhi32(0xcd9e8d57u, c.z); let lo1 = 0xcd9e8d57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
  }
  return c;
}
`;

export const DROPOUT_KERNELS = {
  /**
   * y = x·mask, mask = scale where word i mod 4 of philox((⌊i/4⌋, 0, 0, 0), (seed, 0)) ≥ threshold, else 0; one
   * invocation per four elements (one Philox block). P = [n, seed, threshold, scale (f32)]
   */
  dropout:
    HEAD +
    RO(1, 'x') +
    RW(2, 'y') +
    RW(3, 'mask') +
    PHILOX +
    /* wgsl */ `
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let blk = flat(g, nw, 256u);
  let n = pu(0u);
  if (blk * 4u >= n) { return; }
  let r = philox(vec4<u32>(blk, 0u, 0u, 0u), vec2<u32>(pu(1u), 0u));
  for (var j = 0u; j < 4u; j = j + 1u) {
    let i = blk * 4u + j;
    if (i >= n) { break; }
    let m = select(0.0, pf(3u), r[j] >= pu(2u));
    mask[i] = m;
    y[i] = x[i] * m;
  }
}`,
};
