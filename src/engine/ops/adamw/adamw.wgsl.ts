/** AdamW (decoupled weight decay) in WGSL; reference.ts is the spec. */
import { HEAD, RO, RW } from '../wgsl';

export const ADAMW_KERNELS = {
  /** P = [n, lr·(1/bc1) (stepSize), beta1, beta2, eps, decay, sqrt(bc2)] */
  adamw:
    HEAD +
    RW(1, 'p') +
    RO(2, 'gr') +
    RW(3, 'm') +
    RW(4, 'v') +
    /* wgsl */ `
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat(g, nw, 256u);
  if (i >= pu(0u)) { return; }
  let b1 = pf(2u); let b2 = pf(3u);
  m[i] = b1 * m[i] + (1.0 - b1) * gr[i];
  v[i] = b2 * v[i] + (1.0 - b2) * gr[i] * gr[i];
  p[i] = p[i] * pf(5u) - pf(1u) * m[i] / (sqrt(v[i]) / pf(6u) + pf(4u));
}`,
};
