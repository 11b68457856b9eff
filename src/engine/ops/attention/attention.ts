/**
 * Causal grouped-query attention on the CPU. Each head's work (forward) or each kv group's (backward) is one program
 * of kernel calls (heads.ts, heads.wat), and the threads take whole programs: the products over operands copied
 * into WebAssembly memory once and packed there, the softmax and its backward (softmax.wat) on the scores in place,
 * and the copies into the outputs. The products skip the causally masked part: a block of 32 query rows reads only
 * the keys it sees, and a block of keys only the queries that see it.
 *
 * Memory is linear in T, not quadratic: the forward pass keeps only each row's log-sum-exp (B, H, Tq), and the
 * backward pass recomputes the probabilities from the scores. Heads are processed in chunks whose T×T scratch
 * fits ATTN_CHUNK_BYTES, so the scratch does not grow with batch × heads either. Same maths as
 * reference.ts's attentionForward/attentionBackward, which the parity tests compare it with.
 *
 * Layout: q (B·Tq, H·D), k/v (B·Tk, KV·D); lse (B, H, Tq).
 */
import type { AttnShape } from '../../core/backend';
import { WasmRuntime } from '../wasm';
import { gemmFns } from '../matmul/gemm';
import { GemmOp, HeadPrograms } from './heads';
import { f32 } from '../../core/f32pool';
import { takeOut } from '../rows';

/** scratch for the scores of one chunk of heads (settable for tests) */
export let ATTN_CHUNK_BYTES = 64 << 20;
export function setAttnChunkBytes(n: number): void {
  ATTN_CHUNK_BYTES = n;
}

const up4 = (n: number) => (n + 3) & ~3;
const up8 = (n: number) => (n + 7) & ~7;

/** heads (or kv groups) per chunk when each takes `per` floats of scratch */
export function headsPerChunk(per: number): number {
  return Math.max(1, Math.floor(ATTN_CHUNK_BYTES / 4 / per));
}

/** (outer, inner) pairs, outer-major, in chunks whose scratch of `per` floats each fits the budget */
function pairChunks(outer: number, inner: number, per: number): [number, number][][] {
  const n = headsPerChunk(per);
  const all: [number, number][] = [];
  for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) all.push([o, i]);
  const out: [number, number][][] = [];
  for (let i = 0; i < all.length; i += n) out.push(all.slice(i, i + n));
  return out;
}
/** (batch, head) pairs for the forward pass, (batch, kv head) groups for the backward pass */
const chunks = (p: AttnShape, perHead: number) => pairChunks(p.B, p.H, perHead);
const groupChunks = (p: AttnShape, perGroup: number) => pairChunks(p.B, p.KV, perGroup);

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

/** rows of a product in blocks: a block of query rows [r0, r1) needs keys [0, r1 + off) only (causal) */
const ROW_BLOCK = 32;
function causalBlocks(rows: number, off: number, Tk: number, each: (i0: number, i1: number, kEnd: number, r0: number) => void) {
  for (let r0 = 0; r0 < rows; r0 += ROW_BLOCK) {
    const r1 = Math.min(rows, r0 + ROW_BLOCK);
    each(r0 / 4, Math.ceil(r1 / 4), Math.min(Tk, r1 + off), r0);
  }
}
const blocks = (rows: number) => Math.ceil(rows / ROW_BLOCK);

// (each op is one object literal of one shape: building them with object spreads made attention's programs take
// 20 ms of JavaScript a step, more than the kernels)
/** a block of M query rows' scores: rows of q (or dO) at pa, in place, H·D apart, times Kᵀ (or Vᵀ) packed at pb */
function scoresOp(p: AttnShape, pa: number, pb: number, pc: number, M: number, i0: number, i1: number, kEnd: number): GemmOp {
  const [K, lda, j1] = [p.D, p.H * p.D * 4, Math.ceil(kEnd / 8)];
  return { pa, pb, pc, K, Np: up8(p.Tk), i0, i1, j0: 0, j1, lda, M, acc: false, ka: K, kb: K, ks: 0 };
}
/** a block of keys' rows of Pᵀ (or dSᵀ) packed at pa times dO (or Q) packed at pb, over the queries [ks, Tq) */
function keysOp(p: AttnShape, pa: number, pb: number, pc: number, i0: number, i1: number, acc: boolean, ks: number): GemmOp {
  const Np = up8(p.D);
  return { pa, pb, pc, K: p.Tq, Np, i0, i1, j0: 0, j1: Np / 8, lda: 0, M: p.Tk, acc, ka: p.Tq, kb: p.Tq, ks };
}
/** the same block's probabilities (or dS) at pa, in place, times V (or K) packed at pb, over its keys [0, kEnd) */
function weightedOp(p: AttnShape, pa: number, pb: number, pc: number, M: number, i0: number, i1: number, kEnd: number): GemmOp {
  const Np = up8(p.D);
  return { pa, pb, pc, K: kEnd, Np, i0, i1, j0: 0, j1: Np / 8, lda: up8(p.Tk) * 4, M, acc: false, ka: p.Tk, kb: p.Tk, ks: 0 };
}

/** the ops of one head's forward program and one kv group's backward program (the estimate counts their table) */
export const forwardOps = (rows: number) => 2 * blocks(rows) + 2;
export const backwardOps = (Tq: number, Tk: number, grp: number) => grp * (3 * blocks(Tq) + 2 * blocks(Tk) + 7) + 2;

/** whether the heads' programs are worth waking the other threads for */
const parallel = (p: AttnShape, rows: number) => p.B * p.H * rows * p.Tk * p.D >= WasmRuntime.PARALLEL_MIN / 8;

export function attentionForwardWasm(g: WasmRuntime, q: Float32Array, k: Float32Array, v: Float32Array, p: AttnShape) {
  const { B, Tq, Tk, H, KV, D } = p;
  const grp = H / KV;
  const NpT = up8(Tk),
    NpD = up8(D);
  const scale = 1 / Math.sqrt(D);
  const off = Tk - Tq;
  g.arenaReset();
  const qo = g.put(q),
    ko = g.put(k),
    vo = g.put(v);
  const [kT, vN] = packHeads(g, ko, vo, p); // Kᵀ (D, Tk) and V (Tk, D) per (batch, kv head)
  const outAt = g.alloc(B * Tq * H * D);
  const lse = f32(B * H * Tq);
  const rows = queryRowsPerBlock(Tq, Tk, D);
  const perHead = up4(rows) * NpT + up4(rows) * NpD + 4 * rows;
  for (let q0 = 0; q0 < Tq; q0 += rows) {
    const n = Math.min(rows, Tq - q0);
    // keys [0, TkEnd) are visible to some row of this block
    const TkEnd = off + q0 + n;
    for (const chunk of chunks(p, perHead)) {
      const mark = g.mark();
      const stats = chunk.map(() => g.alloc(4 * n)); // f64 (max·scale, Σ) per row
      const prog = new HeadPrograms();
      chunk.forEach(([b, h], i) => {
        const S = g.alloc(up4(n) * NpT),
          O = g.alloc(up4(n) * NpD);
        const kv = b * KV + Math.floor(h / grp);
        const qAt = qo + ((b * Tq + q0) * H + h) * D * 4;
        prog.open();
        // S = Q·Kᵀ, then P = softmax(S) in place (zero past each row's keys), then O = P·V: each over the keys seen
        causalBlocks(n, off + q0, Tk, (i0, i1, kEnd) => prog.gemm(scoresOp(p, qAt, kT[kv], S, n, i0, i1, kEnd)));
        prog.softmaxCausal(S, n, TkEnd, NpT, p.window ?? 0, scale, stats[i]);
        causalBlocks(n, off + q0, Tk, (i0, i1, kEnd) => prog.gemm(weightedOp(p, S, vN[kv], O, n, i0, i1, kEnd)));
        prog.copyRows(O, NpD * 4, outAt + ((b * Tq + q0) * H + h) * D * 4, H * D * 4, n, D);
        prog.close();
      });
      prog.run(g, parallel(p, n));
      const f = g.mem();
      chunk.forEach(([b, h], i) => {
        const st = new Float64Array(f.buffer, stats[i], 2 * n);
        for (let t = 0; t < n; t++) lse[(b * H + h) * Tq + q0 + t] = st[2 * t] + Math.log(st[2 * t + 1]);
      });
      g.release(mark);
    }
  }
  return { out: takeOut(g, outAt, B * Tq * H * D), lse };
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
  const off = Tk - Tq;
  g.arenaReset();
  const qo = g.put(q),
    ko = g.put(k),
    vo = g.put(v),
    doo = g.put(dout),
    lo = g.put(lse);
  const [kT] = packHeads(g, ko, ko, p, true); // Kᵀ (D, Tk), to recompute the scores
  const [vT, kN] = packHeads(g, vo, ko, p); // Vᵀ (D, Tk) and K (Tk, D)
  const dqAt = g.alloc(q.length),
    dkAt = g.alloc(k.length),
    dvAt = g.alloc(v.length);
  const qAt = (b: number, h: number) => qo + (b * Tq * H + h) * D * 4;
  const doAt = (b: number, h: number) => doo + (b * Tq * H + h) * D * 4;
  for (const chunk of groupChunks(p, attnScratchFloats(p).backward)) {
    const mark = g.mark();
    const prog = new HeadPrograms();
    for (const [b, kh] of chunk) {
      const kv = b * KV + kh;
      const [S, dP] = [g.alloc(up4(Tq) * NpT), g.alloc(up4(Tq) * NpT)];
      const [pT, sT] = [g.alloc(up4(Tk) * Tq), g.alloc(up4(Tk) * Tq)];
      const [dO, Q] = [g.alloc(NpD * Tq), g.alloc(NpD * Tq)];
      const [dQ, dK, dV] = [g.alloc(up4(Tq) * NpD), g.alloc(up4(Tk) * NpD), g.alloc(up4(Tk) * NpD)];
      prog.open();
      for (let h = kh * grp; h < (kh + 1) * grp; h++) {
        const first = h === kh * grp;
        // S = Q·Kᵀ (the scores again) and dP = dO·Vᵀ, over the keys each block of query rows sees
        causalBlocks(Tq, off, Tk, (i0, i1, kEnd) => {
          prog.gemm(scoresOp(p, qAt(b, h), kT[kv], S, Tq, i0, i1, kEnd));
          prog.gemm(scoresOp(p, doAt(b, h), vT[kv], dP, Tq, i0, i1, kEnd));
        });
        // P from the scores and lse; dS = P ⊙ (dP − Σ dP·P)·scale over dP; then pack Pᵀ, dSᵀ, dO and Q
        prog.softmaxRecompute(S, Tq, Tk, NpT, p.window ?? 0, scale, lo + (b * H + h) * Tq * 4);
        prog.softmaxBackward(dP, NpT, S, NpT, Tq, Tk, scale);
        prog.packAt(S, NpT * 4, Tk, Tq, pT);
        prog.packAt(dP, NpT * 4, Tk, Tq, sT);
        prog.packB(doAt(b, h), Tq, D, H * D * 4, dO);
        prog.packB(qAt(b, h), Tq, D, H * D * 4, Q);
        // dV (+)= Pᵀ·dO and dK (+)= dSᵀ·Q over the queries that see each block of keys; dQ = dS·K
        causalBlocks(Tk, 0, Tq, (i0, i1, _kEnd, r0) => {
          const ks = Math.max(0, r0 - off);
          prog.gemm(keysOp(p, pT, dO, dV, i0, i1, !first, ks));
          prog.gemm(keysOp(p, sT, Q, dK, i0, i1, !first, ks));
        });
        causalBlocks(Tq, off, Tk, (i0, i1, kEnd) => prog.gemm(weightedOp(p, dP, kN[kv], dQ, Tq, i0, i1, kEnd)));
        prog.copyRows(dQ, NpD * 4, dqAt + (b * Tq * H + h) * D * 4, H * D * 4, Tq, D);
      }
      prog.copyRows(dK, NpD * 4, dkAt + (b * Tk * KV + kh) * D * 4, KV * D * 4, Tk, D);
      prog.copyRows(dV, NpD * 4, dvAt + (b * Tk * KV + kh) * D * 4, KV * D * 4, Tk, D);
      prog.close();
    }
    prog.run(g, parallel(p, Tq));
    g.release(mark);
  }
  return { dq: takeOut(g, dqAt, q.length), dk: takeOut(g, dkAt, k.length), dv: takeOut(g, dvAt, v.length) };
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
