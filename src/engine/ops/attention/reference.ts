/**
 * Causal grouped-query attention's spec, forward and backward, with the probabilities kept (B, H, Tq, Tk): slow and
 * obviously correct. The WebAssembly host code (attention.ts) and the WGSL kernels are tested against it.
 */
import type { AttnShape } from '../../core/backend';

/** additive mask test: may query i (0-based among Tq) see key j? */
export function visible(p: AttnShape, i: number, j: number): boolean {
  const qi = i + p.Tk - p.Tq;
  return j <= qi && (p.window === undefined || qi - j < p.window);
}

/**
 * Causal grouped-query attention. q (B, Tq, H, D), k/v (B, Tk, KV, D) → out (B, Tq, H, D);
 * probs (B, H, Tq, Tk) are kept for the backward pass.
 */
export function attentionForward(q: Float32Array, k: Float32Array, v: Float32Array, p: AttnShape) {
  const { B, Tq, Tk, H, KV, D } = p;
  const out = new Float32Array(B * Tq * H * D);
  const probs = new Float32Array(B * H * Tq * Tk);
  const scale = 1 / Math.sqrt(D);
  const g = H / KV;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / g);
      for (let i = 0; i < Tq; i++) {
        const qo = ((b * Tq + i) * H + h) * D;
        const po = ((b * H + h) * Tq + i) * Tk;
        let max = -Infinity;
        for (let j = 0; j < Tk; j++) {
          if (!visible(p, i, j)) continue;
          const ko = ((b * Tk + j) * KV + kh) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += q[qo + d] * k[ko + d];
          probs[po + j] = s * scale;
          if (probs[po + j] > max) max = probs[po + j];
        }
        let sum = 0;
        for (let j = 0; j < Tk; j++) {
          const e = visible(p, i, j) ? Math.exp(probs[po + j] - max) : 0;
          probs[po + j] = e;
          sum += e;
        }
        for (let j = 0; j < Tk; j++) probs[po + j] /= sum;
        for (let j = 0; j < Tk; j++) {
          const pj = probs[po + j];
          if (pj === 0) continue;
          const vo = ((b * Tk + j) * KV + kh) * D;
          for (let d = 0; d < D; d++) out[qo + d] += pj * v[vo + d];
        }
      }
    }
  return { out, probs };
}

export function attentionBackward(
  dout: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  probs: Float32Array,
  p: AttnShape,
) {
  const { B, Tq, Tk, H, KV, D } = p;
  const dq = new Float32Array(q.length);
  const dk = new Float32Array(k.length);
  const dv = new Float32Array(v.length);
  const scale = 1 / Math.sqrt(D);
  const g = H / KV;
  const dp = new Float32Array(Tk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / g);
      for (let i = 0; i < Tq; i++) {
        const qo = ((b * Tq + i) * H + h) * D;
        const po = ((b * H + h) * Tq + i) * Tk;
        let dot = 0; // Σ_j dP_ij · P_ij
        for (let j = 0; j < Tk; j++) {
          const vo = ((b * Tk + j) * KV + kh) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += dout[qo + d] * v[vo + d];
          dp[j] = s;
          dot += s * probs[po + j];
          const pj = probs[po + j];
          for (let d = 0; d < D; d++) dv[vo + d] += pj * dout[qo + d];
        }
        for (let j = 0; j < Tk; j++) {
          const ds = probs[po + j] * (dp[j] - dot) * scale;
          if (ds === 0) continue;
          const ko = ((b * Tk + j) * KV + kh) * D;
          for (let d = 0; d < D; d++) {
            dq[qo + d] += ds * k[ko + d];
            dk[ko + d] += ds * q[qo + d];
          }
        }
      }
    }
  return { dq, dk, dv };
}
