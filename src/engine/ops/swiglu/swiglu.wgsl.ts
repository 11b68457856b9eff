/** SwiGLU forward and backward in WGSL; reference.ts is the spec. */
import { RO, RW, ew } from '../wgsl';

export const SWIGLU_KERNELS = {
  swiglu: ew('swiglu', RO(1, 'gt') + RO(2, 'up') + RW(3, 'h'), 'let x = gt[i]; h[i] = x / (1.0 + exp(-x)) * up[i];'),
  swiglu_bwd: ew(
    'swiglu_bwd',
    RO(1, 'dh') + RO(2, 'gt') + RO(3, 'up') + RW(4, 'dg') + RW(5, 'du'),
    `
  let x = gt[i]; let sg = 1.0 / (1.0 + exp(-x));
  du[i] = dh[i] * x * sg;
  dg[i] = dh[i] * up[i] * sg * (1.0 + x * (1.0 - sg));`,
  ),
};
