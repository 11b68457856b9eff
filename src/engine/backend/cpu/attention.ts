/**
 * Causal grouped-query attention on the CPU with every (batch, head) matmul in one parallel dispatch: operands
 * are copied into WebAssembly memory once, packed there, and the per-head products run as a job table split
 * across the threads. Softmax and its backward run in TypeScript on the scores in place. Same maths as
 * reference.attentionForward/attentionBackward, which the parity tests compare it with.
 *
 * Layout: q (B·Tq, H·D), k/v (B·Tk, KV·D); probs (B, H, Tq, Tk).
 */
import type { AttnShape } from './reference';
import type { WasmGemm } from './gemm';

const up4 = (n: number) => (n + 3) & ~3;
const up8 = (n: number) => (n + 7) & ~7;

/** a job computing C (rows × Np) = A · Bpacked with A read in place (lda bytes) or packed (lda 0) */
function job(pa: number, pb: number, pc: number, K: number, Np: number, rows: number, lda: number): number[] {
  return [pa, pb, pc, K, Np, 0, up4(rows) / 4, 0, Np / 8, lda, rows, 0];
}

export function attentionForwardWasm(g: WasmGemm, q: Float32Array, k: Float32Array, v: Float32Array, p: AttnShape) {
  const { B, Tq, Tk, H, KV, D } = p;
  const grp = H / KV;
  const NpT = up8(Tk);
  const NpD = up8(D);
  g.arenaReset();
  const qo = g.put(q), ko = g.put(k), vo = g.put(v);
  const S: number[] = [], O: number[] = [];
  const [kPack, vPack] = packHeads(g, ko, vo, p); // Kᵀ (D, Tk) and V (Tk, D) per (batch, kv head)
  const scores: number[][] = [];
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const bk = b * KV + Math.floor(h / grp);
      S.push(g.alloc(up4(Tq) * NpT));
      O.push(g.alloc(up4(Tq) * NpD));
      scores.push(job(qo + (b * Tq * H + h) * D * 4, kPack[bk], S[S.length - 1], D, NpT, Tq, H * D * 4));
    }
  g.runJobs(scores);
  const probs = new Float32Array(B * H * Tq * Tk);
  for (let bh = 0; bh < B * H; bh++) {
    g.ew.softmax_causal(S[bh], Tq, Tk, NpT, p.window ?? 0, 1 / Math.sqrt(D));
    const f = g.mem();
    for (let i = 0; i < Tq; i++) probs.set(f.subarray((S[bh] >> 2) + i * NpT, (S[bh] >> 2) + i * NpT + Tk), (bh * Tq + i) * Tk);
  }
  const outs: number[][] = [];
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      outs.push(job(S[bh], vPack[b * KV + Math.floor(h / grp)], O[bh], Tk, NpD, Tq, NpT * 4));
    }
  g.runJobs(outs);
  const out = new Float32Array(B * Tq * H * D);
  const m = g.mem();
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) scatterRows(m, O[b * H + h] >> 2, NpD, out, b * Tq, Tq, H, h, D, false);
  return { out, probs };
}

export function attentionBackwardWasm(
  g: WasmGemm, dout: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array, p: AttnShape,
) {
  const { B, Tq, Tk, H, KV, D } = p;
  const grp = H / KV;
  const NpT = up8(Tk);
  const NpD = up8(D);
  g.arenaReset();
  const qo = g.put(q), ko = g.put(k), vo = g.put(v), doo = g.put(dout), po = g.put(probs);
  const [vtPack, kPack] = packHeads(g, vo, ko, p); // Vᵀ (D, Tk) and K (Tk, D) per (batch, kv head)
  const dP: number[] = [], dV: number[] = [], dQ: number[] = [], dK: number[] = [];
  const first: number[][] = [];
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      const bk = b * KV + Math.floor(h / grp);
      const Pbh = po + bh * Tq * Tk * 4;
      const pT = g.alloc(up4(Tk) * Tq);
      g.packAtAt(Pbh, Tk * 4, Tk, Tq, pT); // Pᵀ (Tk, Tq)
      const dob = g.alloc(NpD * Tq);
      g.packBAt(doo + (b * Tq * H + h) * D * 4, Tq, D, H * D * 4, dob); // dO (Tq, D)
      dP.push(g.alloc(up4(Tq) * NpT));
      dV.push(g.alloc(up4(Tk) * NpD));
      first.push(job(doo + (b * Tq * H + h) * D * 4, vtPack[bk], dP[bh], D, NpT, Tq, H * D * 4)); // dP = dO·Vᵀ
      first.push(job(pT, dob, dV[bh], Tq, NpD, Tk, 0)); // dV = Pᵀ·dO
    }
  g.runJobs(first);
  // dS = P ⊙ (dP − Σⱼ dP·P) · scale, written over dP
  for (let bh = 0; bh < B * H; bh++) g.ew.softmax_backward(dP[bh], NpT, po + bh * Tq * Tk * 4, Tk, Tq, Tk, 1 / Math.sqrt(D));
  const second: number[][] = [];
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      const bk = b * KV + Math.floor(h / grp);
      const sT = g.alloc(up4(Tk) * Tq);
      g.packAtAt(dP[bh], NpT * 4, Tk, Tq, sT); // dSᵀ (Tk, Tq)
      const qb = g.alloc(NpD * Tq);
      g.packBAt(qo + (b * Tq * H + h) * D * 4, Tq, D, H * D * 4, qb); // Q (Tq, D)
      dQ.push(g.alloc(up4(Tq) * NpD));
      dK.push(g.alloc(up4(Tk) * NpD));
      second.push(job(dP[bh], kPack[bk], dQ[bh], Tk, NpD, Tq, NpT * 4)); // dQ = dS·K
      second.push(job(sT, qb, dK[bh], Tq, NpD, Tk, 0)); // dK = dSᵀ·Q
    }
  g.runJobs(second);
  const f = g.mem();
  const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      const kh = Math.floor(h / grp);
      scatterRows(f, dQ[bh] >> 2, NpD, dq, b * Tq, Tq, H, h, D, false);
      scatterRows(f, dK[bh] >> 2, NpD, dk, b * Tk, Tk, KV, kh, D, true);
      scatterRows(f, dV[bh] >> 2, NpD, dv, b * Tk, Tk, KV, kh, D, true);
    }
  return { dq, dk, dv };
}

/**
 * Per (batch, kv head), in that order: head `tOff` of a (B·Tk, KV·D) operand packed transposed, (D, Tk) as
 * Bᵀ, and head `nOff` packed as is, (Tk, D) as B.
 */
function packHeads(g: WasmGemm, tOff: number, nOff: number, p: AttnShape): [number[], number[]] {
  const { B, Tk, KV, D } = p;
  const t: number[] = [], n: number[] = [];
  for (let b = 0; b < B; b++)
    for (let kh = 0; kh < KV; kh++) {
      const head = (b * Tk * KV + kh) * D * 4;
      t.push(g.alloc(up8(Tk) * D));
      g.packBtAt(tOff + head, D, Tk, KV * D * 4, t[t.length - 1]);
      n.push(g.alloc(up8(D) * Tk));
      g.packBAt(nOff + head, Tk, D, KV * D * 4, n[n.length - 1]);
    }
  return [t, n];
}

/** rows of a (T × ld) block into head h of x (rows, heads·D), or added to it */
function scatterRows(f: Float32Array, base: number, ld: number, x: Float32Array, r0: number, T: number, heads: number, h: number, D: number, add: boolean): void {
  for (let t = 0; t < T; t++) {
    const o = ((r0 + t) * heads + h) * D;
    const s = base + t * ld;
    if (!add) x.set(f.subarray(s, s + D), o);
    else for (let d = 0; d < D; d++) x[o + d] += f[s + d];
  }
}
