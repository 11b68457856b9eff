/** AdamW's spec (decoupled weight decay, as torch.optim.AdamW): one update of p, m and v in place. */
import type { AdamWParams } from '../../core/backend';

export function adamwStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, hp: AdamWParams): void {
  const bc1 = 1 - hp.beta1 ** hp.step;
  const bc2 = 1 - hp.beta2 ** hp.step;
  const stepSize = hp.lr / bc1;
  const decay = 1 - hp.lr * hp.weightDecay;
  const sbc2 = Math.sqrt(bc2);
  for (let i = 0; i < p.length; i++) {
    m[i] = hp.beta1 * m[i] + (1 - hp.beta1) * g[i];
    v[i] = hp.beta2 * v[i] + (1 - hp.beta2) * g[i] * g[i];
    p[i] = p[i] * decay - (stepSize * m[i]) / (Math.sqrt(v[i]) / sbc2 + hp.eps);
  }
}

/** the kernel's precomputed scalars: step size lr/bc1, the decay factor 1 − lr·wd, and √bc2 */
export function adamwScalars(hp: AdamWParams): { stepSize: number; decay: number; sqrtBc2: number } {
  return { stepSize: hp.lr / (1 - hp.beta1 ** hp.step), decay: 1 - hp.lr * hp.weightDecay, sqrtBc2: Math.sqrt(1 - hp.beta2 ** hp.step) };
}
