/**
 * Causal grouped-query attention on the CPU. The per-(batch, head) matmuls run as job tables split across the
 * threads, over operands copied into WebAssembly memory once and packed there; softmax and its backward run in
 * softmax.wat on the scores in place.
 *
 * Memory is linear in T, not quadratic: the forward pass keeps only each row's log-sum-exp (B, H, Tq), and the
 * backward pass recomputes the probabilities from the scores. Heads are processed in chunks whose T×T scratch
 * fits ATTN_CHUNK_BYTES, so the scratch does not grow with batch × heads either. Same maths as
 * reference.ts's attentionForward/attentionBackward, which the parity tests compare it with.
 *
 * Layout: q (B·Tq, H·D), k/v (B·Tk, KV·D); lse (B, H, Tq).
 */
import type { AttnShape } from '../../core/backend';
import type { WasmRuntime } from '../wasm';
import { gemmFns, runJobs } from '../matmul/gemm';
import { f32 } from '../../core/f32pool';

interface SoftmaxFns {
  softmax_causal(p: number, Tq: number, Tk: number, ld: number, window: number, scale: number, stats: number): void;
  softmax_recompute(p: number, Tq: number, Tk: number, ld: number, window: number, scale: number, lse: number): void;
  softmax_backward(dp: number, ldd: number, pp: number, ldp: number, Tq: number, Tk: number, scale: number): void;
}
const softmax = (g: WasmRuntime) => g.fns<SoftmaxFns>(['softmax_causal', 'softmax_recompute', 'softmax_backward']);

/** scratch for the scores of one chunk of heads (settable for tests) */
export let ATTN_CHUNK_BYTES = 64 << 20;
export function setAttnChunkBytes(n: number): void {
  ATTN_CHUNK_BYTES = n;
}

const up4 = (n: number) => (n + 3) & ~3;
const up8 = (n: number) => (n + 7) & ~7;

/** a job computing C (rows × Np) = A · Bpacked with A read in place (lda bytes) or packed (lda 0) */
function job(pa: number, pb: number, pc: number, K: number, Np: number, rows: number, lda: number): number[] {
  return [pa, pb, pc, K, Np, 0, up4(rows) / 4, 0, Np / 8, lda, rows, 0];
}

/** (b, h) pairs in chunks whose per-head scratch of `perHead` floats fits the budget */
export function headsPerChunk(perHead: number): number {
  return Math.max(1, Math.floor(ATTN_CHUNK_BYTES / 4 / perHead));
}

function chunks(p: AttnShape, perHead: number): [number, number][][] {
  const per = headsPerChunk(perHead);
  const all: [number, number][] = [];
  for (let b = 0; b < p.B; b++) for (let h = 0; h < p.H; h++) all.push([b, h]);
  const out: [number, number][][] = [];
  for (let i = 0; i < all.length; i += per) out.push(all.slice(i, i + per));
  return out;
}

/** per-head scratch of the forward and backward passes, in floats (what the estimate counts) */
export function attnScratchFloats(p: AttnShape): { forward: number; backward: number } {
  const NpT = up8(p.Tk),
    NpD = up8(p.D);
  return {
    forward: up4(p.Tq) * NpT + up4(p.Tq) * NpD + 4 * p.Tq,
    backward: 2 * up4(p.Tq) * NpT + 2 * up4(p.Tk) * p.Tq + 2 * NpD * p.Tq + up4(p.Tq) * NpD + 2 * up4(p.Tk) * NpD,
  };
}

/**
 * query rows per block in the forward pass: a block's scores (rows × Tk) fit ATTN_CHUNK_BYTES, so a long sequence
 * (eval, a long prompt) takes scratch linear in Tk, not Tq × Tk
 */
export function queryRowsPerBlock(Tq: number, Tk: number, D: number): number {
  const perRow = up8(Tk) + up8(D) + 4;
  return Math.min(Tq, Math.max(4, Math.floor(ATTN_CHUNK_BYTES / 4 / perRow / 4) * 4));
}

export function attentionForwardWasm(g: WasmRuntime, q: Float32Array, k: Float32Array, v: Float32Array, p: AttnShape) {
  const { B, Tq, Tk, H, KV, D } = p;
  const grp = H / KV;
  const NpT = up8(Tk),
    NpD = up8(D);
  const scale = 1 / Math.sqrt(D);
  g.arenaReset();
  const qo = g.put(q),
    ko = g.put(k),
    vo = g.put(v);
  const [kT, vN] = packHeads(g, ko, vo, p); // Kᵀ (D, Tk) and V (Tk, D) per (batch, kv head)
  const out = f32(B * Tq * H * D);
  const lse = f32(B * H * Tq);
  const rows = queryRowsPerBlock(Tq, Tk, D);
  const perHead = up4(rows) * NpT + up4(rows) * NpD + 4 * rows;
  for (let q0 = 0; q0 < Tq; q0 += rows) {
    const n = Math.min(rows, Tq - q0);
    // keys [0, TkEnd) are visible to some row of this block; the rest of each row is zeroed below
    const TkEnd = Tk - Tq + q0 + n;
    for (const chunk of chunks(p, perHead)) {
      const mark = g.mark();
      const S = chunk.map(() => g.alloc(up4(n) * NpT));
      const O = chunk.map(() => g.alloc(up4(n) * NpD));
      const stats = chunk.map(() => g.alloc(4 * n)); // f64 (max·scale, Σ) per row
      runJobs(
        g,
        chunk.map(([b, h], i) => job(qo + ((b * Tq + q0) * H + h) * D * 4, kT[b * KV + Math.floor(h / grp)], S[i], D, NpT, n, H * D * 4)),
      );
      chunk.forEach((_, i) => softmax(g).softmax_causal(S[i], n, TkEnd, NpT, p.window ?? 0, scale, stats[i]));
      if (TkEnd < Tk) {
        const f = g.mem();
        for (const s of S) for (let t = 0; t < n; t++) f.fill(0, s / 4 + t * NpT + TkEnd, s / 4 + t * NpT + Tk);
      }
      runJobs(
        g,
        chunk.map(([b, h], i) => job(S[i], vN[b * KV + Math.floor(h / grp)], O[i], Tk, NpD, n, NpT * 4)),
      );
      const f = g.mem();
      chunk.forEach(([b, h], i) => {
        scatterRows(f, O[i] / 4, NpD, out, b * Tq + q0, n, H, h, D, false);
        const st = new Float64Array(f.buffer, stats[i], 2 * n);
        for (let t = 0; t < n; t++) lse[(b * H + h) * Tq + q0 + t] = st[2 * t] + Math.log(st[2 * t + 1]);
      });
      g.release(mark);
    }
  }
  return { out, lse };
}

export function attentionBackwardWasm(
  g: WasmRuntime,
  dout: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  lse: Float32Array,
  p: AttnShape,
) {
  const { Tq, Tk, H, KV, D } = p;
  const grp = H / KV;
  const NpT = up8(Tk),
    NpD = up8(D);
  const scale = 1 / Math.sqrt(D);
  g.arenaReset();
  const qo = g.put(q),
    ko = g.put(k),
    vo = g.put(v),
    doo = g.put(dout),
    lo = g.put(lse);
  const [kT] = packHeads(g, ko, ko, p, true); // Kᵀ (D, Tk), to recompute the scores
  const [vT, kN] = packHeads(g, vo, ko, p); // Vᵀ (D, Tk) and K (Tk, D)
  const dq = f32(q.length),
    dk = f32(k.length),
    dv = f32(v.length);
  for (const chunk of chunks(p, attnScratchFloats(p).backward)) {
    const mark = g.mark();
    const kv = (b: number, h: number) => b * KV + Math.floor(h / grp);
    const qAt = (b: number, h: number) => qo + (b * Tq * H + h) * D * 4;
    const doAt = (b: number, h: number) => doo + (b * Tq * H + h) * D * 4;
    const S = chunk.map(() => g.alloc(up4(Tq) * NpT));
    const dP = chunk.map(() => g.alloc(up4(Tq) * NpT));
    // S = Q·Kᵀ (scores again) and dP = dO·Vᵀ
    runJobs(
      g,
      chunk.flatMap(([b, h], i) => [
        job(qAt(b, h), kT[kv(b, h)], S[i], D, NpT, Tq, H * D * 4),
        job(doAt(b, h), vT[kv(b, h)], dP[i], D, NpT, Tq, H * D * 4),
      ]),
    );
    // P from the scores and lse; dS = P ⊙ (dP − Σ dP·P)·scale over dP; then pack Pᵀ, dSᵀ, dO and Q
    const pT: number[] = [],
      sT: number[] = [],
      dO: number[] = [],
      Q: number[] = [];
    chunk.forEach(([b, h], i) => {
      softmax(g).softmax_recompute(S[i], Tq, Tk, NpT, p.window ?? 0, scale, lo + (b * H + h) * Tq * 4);
      softmax(g).softmax_backward(dP[i], NpT, S[i], NpT, Tq, Tk, scale);
      pT.push(g.alloc(up4(Tk) * Tq));
      gemmFns(g).pack_at(S[i], NpT * 4, Tk, Tq, pT[i]);
      sT.push(g.alloc(up4(Tk) * Tq));
      gemmFns(g).pack_at(dP[i], NpT * 4, Tk, Tq, sT[i]);
      dO.push(g.alloc(NpD * Tq));
      gemmFns(g).pack_b(doAt(b, h), Tq, D, H * D * 4, dO[i]);
      Q.push(g.alloc(NpD * Tq));
      gemmFns(g).pack_b(qAt(b, h), Tq, D, H * D * 4, Q[i]);
    });
    const dQ = chunk.map(() => g.alloc(up4(Tq) * NpD));
    const dK = chunk.map(() => g.alloc(up4(Tk) * NpD));
    const dV = chunk.map(() => g.alloc(up4(Tk) * NpD));
    // dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q
    runJobs(
      g,
      chunk.flatMap(([b, h], i) => [
        job(pT[i], dO[i], dV[i], Tq, NpD, Tk, 0),
        job(dP[i], kN[kv(b, h)], dQ[i], Tk, NpD, Tq, NpT * 4),
        job(sT[i], Q[i], dK[i], Tq, NpD, Tk, 0),
      ]),
    );
    const f = g.mem();
    chunk.forEach(([b, h], i) => {
      const kh = Math.floor(h / grp);
      scatterRows(f, dQ[i] >> 2, NpD, dq, b * Tq, Tq, H, h, D, false);
      scatterRows(f, dK[i] >> 2, NpD, dk, b * Tk, Tk, KV, kh, D, true);
      scatterRows(f, dV[i] >> 2, NpD, dv, b * Tk, Tk, KV, kh, D, true);
    });
    g.release(mark);
  }
  return { dq, dk, dv };
}

/**
 * Per (batch, kv head), in that order: head `tOff` of a (B·Tk, KV·D) operand packed transposed, (D, Tk) as
 * Bᵀ, and (unless onlyT) head `nOff` packed as is, (Tk, D) as B.
 */
function packHeads(g: WasmRuntime, tOff: number, nOff: number, p: AttnShape, onlyT = false): [number[], number[]] {
  const { B, Tk, KV, D } = p;
  const t: number[] = [],
    n: number[] = [];
  for (let b = 0; b < B; b++)
    for (let kh = 0; kh < KV; kh++) {
      const head = (b * Tk * KV + kh) * D * 4;
      t.push(g.alloc(up8(Tk) * D));
      gemmFns(g).pack_bt(tOff + head, D, Tk, t[t.length - 1], KV * D * 4);
      if (onlyT) continue;
      n.push(g.alloc(up8(D) * Tk));
      gemmFns(g).pack_b(nOff + head, Tk, D, KV * D * 4, n[n.length - 1]);
    }
  return [t, n];
}

/** rows of a (T × ld) block into head h of x (rows, heads·D), or added to it */
function scatterRows(
  f: Float32Array,
  base: number,
  ld: number,
  x: Float32Array,
  r0: number,
  T: number,
  heads: number,
  h: number,
  D: number,
  add: boolean,
): void {
  for (let t = 0; t < T; t++) {
    const o = ((r0 + t) * heads + h) * D;
    const s = base + t * ld;
    if (!add) x.set(f.subarray(s, s + D), o);
    else for (let d = 0; d < D; d++) x[o + d] += f[s + d];
  }
}
