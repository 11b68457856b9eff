/**
 * The plain TypeScript definition of every op, forward and backward, over typed arrays. Obviously correct and
 * slow on purpose: it is the spec that the fast kernels (WebAssembly here, WGSL later) are tested against, and
 * the finite-difference tests check its backward passes.
 */

/** out (N, C) = table[ids] with table (V, C) */
export function embeddingForward(ids: Int32Array, table: Float32Array, C: number): Float32Array {
  const out = new Float32Array(ids.length * C);
  const V = table.length / C;
  for (let n = 0; n < ids.length; n++) {
    if (!(ids[n] >= 0 && ids[n] < V)) throw new RangeError(`token id ${ids[n]} is outside the embedding table (${V} rows)`);
    out.set(table.subarray(ids[n] * C, ids[n] * C + C), n * C);
  }
  return out;
}

/** y (N, C) = x / rms(x) * w; rstd (N) kept for the backward pass */
export function rmsnormForward(x: Float32Array, w: Float32Array, N: number, C: number, eps: number) {
  const y = new Float32Array(N * C);
  const rstd = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[o + c] * x[o + c];
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) y[o + c] = Math.fround(x[o + c] * r) * w[c];
  }
  return { y, rstd };
}

/** dx (N, C) given dy (N, C); the norm weight is frozen so no dw */
export function rmsnormBackward(dy: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array, N: number, C: number) {
  const dx = new Float32Array(N * C);
  for (let n = 0; n < N; n++) {
    const o = n * C;
    const r = rstd[n];
    let dot = 0; // Σ dy·w·x
    for (let c = 0; c < C; c++) dot += dy[o + c] * w[c] * x[o + c];
    const k = (r * r * r * dot) / C;
    for (let c = 0; c < C; c++) dx[o + c] = dy[o + c] * w[c] * r - k * x[o + c];
  }
  return dx;
}

/**
 * RoPE in Hugging Face's rotate-half convention on x (N, heads, D), row n at position pos[n]:
 *   out[i] = x[i]·cos − x[i+D/2]·sin,  out[i+D/2] = x[i+D/2]·cos + x[i]·sin   (i < D/2)
 * cos/sin are (P, D/2) tables indexed by position. The inverse (sin → −sin) is the backward pass.
 */
export function ropeForward(
  x: Float32Array, N: number, heads: number, D: number, pos: Int32Array, cos: Float32Array, sin: Float32Array, inverse = false,
): Float32Array {
  const out = new Float32Array(x.length);
  const h2 = D / 2;
  for (let n = 0; n < N; n++) {
    const t = pos[n] * h2;
    for (let h = 0; h < heads; h++) {
      const o = (n * heads + h) * D;
      for (let i = 0; i < h2; i++) {
        const c = cos[t + i];
        const s = inverse ? -sin[t + i] : sin[t + i];
        const a = x[o + i];
        const b = x[o + i + h2];
        out[o + i] = a * c - b * s;
        out[o + i + h2] = b * c + a * s;
      }
    }
  }
  return out;
}

export interface AttnShape {
  B: number;
  Tq: number; // query positions per sequence
  Tk: number; // key positions per sequence (≥ Tq; the queries are the last Tq of them)
  H: number; // query heads
  KV: number; // key/value heads; query head h reads kv head floor(h / (H / KV))
  D: number; // head dim
  window?: number; // sliding window: query i sees keys j with i − j < window
}

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
  dout: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array, p: AttnShape,
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

const silu = (x: number) => x / (1 + Math.exp(-x));

/** h = silu(gate) · up, elementwise */
export function swigluForward(gate: Float32Array, up: Float32Array): Float32Array {
  const h = new Float32Array(gate.length);
  for (let i = 0; i < h.length; i++) h[i] = silu(gate[i]) * up[i];
  return h;
}

export function swigluBackward(dh: Float32Array, gate: Float32Array, up: Float32Array) {
  const dgate = new Float32Array(gate.length);
  const dup = new Float32Array(up.length);
  for (let i = 0; i < dh.length; i++) {
    const sg = 1 / (1 + Math.exp(-gate[i]));
    const s = gate[i] * sg;
    dup[i] = dh[i] * s;
    dgate[i] = dh[i] * up[i] * sg * (1 + gate[i] * (1 - sg));
  }
  return { dgate, dup };
}

/**
 * Cross-entropy of logits (N, V) against targets (N); a target < 0 is ignored. Returns the summed loss, the
 * number of scored rows, and dlogits = (softmax − onehot) · gradScale for scored rows (0 elsewhere).
 */
export function crossEntropy(logits: Float32Array, targets: Int32Array, V: number, gradScale: number) {
  const N = targets.length;
  const dlogits = new Float32Array(N * V);
  let loss = 0;
  let count = 0;
  for (let n = 0; n < N; n++) {
    const t = targets[n];
    if (t < 0) continue;
    const o = n * V;
    let max = -Infinity;
    for (let j = 0; j < V; j++) if (logits[o + j] > max) max = logits[o + j];
    let sum = 0;
    for (let j = 0; j < V; j++) sum += dlogits[o + j] = Math.exp(logits[o + j] - max);
    loss += max + Math.log(sum) - logits[o + t];
    count++;
    const k = gradScale / sum;
    for (let j = 0; j < V; j++) dlogits[o + j] *= k; // softmax · gradScale
    dlogits[o + t] -= gradScale;
  }
  return { loss, count, dlogits };
}
