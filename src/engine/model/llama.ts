/**
 * The Llama-family decoder (llama, mistral, qwen2, qwen3), forward and backward, written against the Backend
 * interface only. Backward computes gradients for the LoRA parameters and the activations; the base weights are
 * frozen, so no weight gradients exist for them.
 *
 * Rows are tokens: x is (N, C) with N = B·T, row n = b·T + t.
 */
import { AttnShape, Backend, LoraSaved, RopeTables, Tensor } from '../core/backend';
import { ModelSpec } from '../formats/config';
import { LoraAdapter, LoraModule } from './lora';
import { LayerWeights, LinearWeights, ModelWeights } from './weights';
import { ropeTables } from './rope';
import { LinearName, modulePath } from '../formats/structure';

interface Norm {
  y: Tensor;
  rstd: Tensor;
}

interface LayerActs {
  x: Tensor; // (N, C) layer input
  n1: Norm;
  qRaw?: Tensor; // (N, H·D) before q_norm (qwen3)
  kRaw?: Tensor;
  qn?: Norm;
  kn?: Norm;
  q: Tensor; // (N, H·D) after RoPE
  k: Tensor; // (N, KV·D) after RoPE
  v: Tensor; // (N, KV·D)
  attn: { out: Tensor; saved: Tensor };
  x2: Tensor; // (N, C) after the attention residual
  n2: Norm;
  gate: Tensor; // (N, FF)
  up: Tensor;
  h: Tensor; // (N, FF) swiglu output
  lora: Map<LinearName, LoraSaved>;
}

interface Ctx {
  B: number;
  T: number; // new positions per sequence
  pos: Int32Array; // (B·T) position of each row
  train: boolean;
  seed: number;
  save: boolean;
  cache?: KVCache;
}

/**
 * Per layer K and V (after RoPE) of the positions seen so far, batch 1: (capacity, KV·D) tensors whose first `len`
 * rows are filled. The capacity at least doubles when it runs out, so a token costs its own rows, not a copy of the
 * whole cache.
 */
export interface KVCache {
  len: number;
  k: (Tensor | null)[];
  v: (Tensor | null)[];
  /** the capacity to take at the first growth (a generation knows its prompt and token budget) */
  reserve: number;
}

export interface Acts {
  layers: LayerActs[];
  /** with gradient checkpointing: each layer's input only, the rest recomputed in the backward pass */
  inputs: Tensor[];
  xL: Tensor; // (N, C) last layer output
  nf: Norm; // final norm
}

export class LlamaModel {
  adapter: LoraAdapter | null = null;
  adapterEnabled = true;
  private rope: RopeTables | null = null;
  private ropeLen = 0;

  constructor(
    readonly spec: ModelSpec,
    readonly w: ModelWeights,
    readonly be: Backend,
  ) {}

  private tables(P: number): RopeTables {
    if (P > this.ropeLen) {
      const len = Math.max(P, 2 * this.ropeLen, 64);
      const t = ropeTables(this.spec, len);
      if (this.rope) this.be.free(this.rope.cos, this.rope.sin);
      this.rope = {
        cos: this.be.upload(t.cos, [len, t.cos.length / len], 'workspace'),
        sin: this.be.upload(t.sin, [len, t.sin.length / len], 'workspace'),
      };
      this.ropeLen = len;
    }
    return this.rope!;
  }

  private lora(layer: number, name: LinearName): LoraModule | undefined {
    if (!this.adapter || !this.adapterEnabled) return undefined;
    return this.adapter.modules.get(modulePath(layer, name));
  }

  /** y = x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ */
  private linFwd(x: Tensor, lw: LinearWeights, layer: number, name: LinearName, ctx: Ctx, saves: Map<LinearName, LoraSaved>): Tensor {
    const m = this.lora(layer, name);
    if (!m) return this.be.linear(x, lw.w, lw.b);
    const p = ctx.train ? this.adapter!.config.dropout : 0;
    const r = this.be.linearLora(x, lw.w, lw.b, m, { p, seed: mix(ctx.seed, layer * 16 + LINEAR_INDEX[name]) }, ctx.save);
    if (r.saved) saves.set(name, r.saved);
    return r.y;
  }

  /** dx (+)= dy·W, and the LoRA gradients: dB += s·dyᵀ·h, dA += (s·dy·B)ᵀ·xd */
  private linBwd(dy: Tensor, lw: LinearWeights, layer: number, name: LinearName, saves: Map<LinearName, LoraSaved>, into?: Tensor): Tensor {
    const m = this.lora(layer, name);
    const s = saves.get(name);
    if (m && s) return this.be.linearLoraBackward(dy, lw.w, m, s, into);
    return this.be.linearBackward(dy, lw.w, into);
  }

  private layerFwd(l: number, x: Tensor, ctx: Ctx): { out: Tensor; acts?: LayerActs } {
    const be = this.be;
    const { heads: H, kvHeads: KV, headDim: D, rmsEps: eps } = this.spec;
    const W: LayerWeights = this.w.layers[l];
    const saves = new Map<LinearName, LoraSaved>();
    const n1 = be.rmsnorm(x, W.inNorm, eps);
    const qRaw = this.linFwd(n1.y, W.lin.q_proj, l, 'q_proj', ctx, saves);
    const kRaw = this.linFwd(n1.y, W.lin.k_proj, l, 'k_proj', ctx, saves);
    const v = this.linFwd(n1.y, W.lin.v_proj, l, 'v_proj', ctx, saves);
    let qn: Norm | undefined, kn: Norm | undefined;
    let qIn = qRaw,
      kIn = kRaw;
    if (W.qNorm && W.kNorm) {
      qn = be.rmsnorm(qRaw, W.qNorm, eps);
      kn = be.rmsnorm(kRaw, W.kNorm, eps);
      qIn = qn.y;
      kIn = kn.y;
    }
    const tables = this.tables((ctx.cache?.len ?? 0) + ctx.T + 1);
    const q = be.rope(qIn, H, ctx.pos, tables, false);
    let k = be.rope(kIn, KV, ctx.pos, tables, false);
    // the backward pass needs only the q/k-norm inputs (and rstd), never the pre-RoPE values themselves
    be.free(qn?.y, kn?.y);
    if (!qn) be.free(qRaw, kRaw);
    let vAll = v;
    let Tk = ctx.T;
    if (ctx.cache) {
      Tk = ctx.cache.len + ctx.T;
      [k, vAll] = this.cacheAppend(ctx.cache, l, k, v);
    }
    const p: AttnShape = { B: ctx.B, Tq: ctx.T, Tk, H, KV, D, window: this.spec.slidingWindow };
    const attn = be.attention(q, k, vAll, p);
    const o = this.linFwd(attn.out, W.lin.o_proj, l, 'o_proj', ctx, saves);
    const x2 = be.add(x, o);
    be.free(o);
    const n2 = be.rmsnorm(x2, W.postNorm, eps);
    const gate = this.linFwd(n2.y, W.lin.gate_proj, l, 'gate_proj', ctx, saves);
    const up = this.linFwd(n2.y, W.lin.up_proj, l, 'up_proj', ctx, saves);
    const h = be.swiglu(gate, up);
    const down = this.linFwd(h, W.lin.down_proj, l, 'down_proj', ctx, saves);
    const out = be.add(x2, down);
    be.free(down);
    if (ctx.save)
      return {
        out,
        acts: { x, n1, qRaw: qn ? qRaw : undefined, kRaw: kn ? kRaw : undefined, qn, kn, q, k, v, attn, x2, n2, gate, up, h, lora: saves },
      };
    be.free(n1.y, n1.rstd, qn?.y, qn?.rstd, kn?.y, kn?.rstd, qRaw, kRaw, q, attn.out, attn.saved, x2, n2.y, n2.rstd, gate, up, h);
    if (!ctx.cache) be.free(k, v);
    return { out };
  }

  private layerBwd(l: number, a: LayerActs, dOut: Tensor, pos: Int32Array, B: number, T: number): Tensor {
    const be = this.be;
    const { heads: H, kvHeads: KV, headDim: D } = this.spec;
    const W = this.w.layers[l];
    const s = a.lora;
    // MLP
    const dh = this.linBwd(dOut, W.lin.down_proj, l, 'down_proj', s);
    const { dgate, dup } = be.swigluBackward(dh, a.gate, a.up);
    const dn2 = this.linBwd(dgate, W.lin.gate_proj, l, 'gate_proj', s);
    this.linBwd(dup, W.lin.up_proj, l, 'up_proj', s, dn2);
    const dx2 = be.rmsnormBackward(dn2, a.x2, W.postNorm, a.n2.rstd);
    be.addInPlace(dx2, dOut);
    be.free(dh, dgate, dup, dn2);
    // attention
    const dattn = this.linBwd(dx2, W.lin.o_proj, l, 'o_proj', s);
    const p: AttnShape = { B, Tq: T, Tk: T, H, KV, D, window: this.spec.slidingWindow };
    const g = be.attentionBackward(dattn, a.q, a.k, a.v, a.attn.saved, p);
    const tables = this.tables(T + 1);
    let dq = be.rope(g.dq, H, pos, tables, true);
    let dk = be.rope(g.dk, KV, pos, tables, true);
    if (a.qn && a.kn) {
      const dqr = be.rmsnormBackward(dq, a.qRaw!, W.qNorm!, a.qn.rstd);
      const dkr = be.rmsnormBackward(dk, a.kRaw!, W.kNorm!, a.kn.rstd);
      be.free(dq, dk);
      dq = dqr;
      dk = dkr;
    }
    const dn1 = this.linBwd(dq, W.lin.q_proj, l, 'q_proj', s);
    this.linBwd(dk, W.lin.k_proj, l, 'k_proj', s, dn1);
    this.linBwd(g.dv, W.lin.v_proj, l, 'v_proj', s, dn1);
    const dx = be.rmsnormBackward(dn1, a.x, W.inNorm, a.n1.rstd);
    be.addInPlace(dx, dx2);
    be.free(dattn, g.dq, g.dk, g.dv, dq, dk, dn1, dx2);
    return dx;
  }

  private freeActs(a: LayerActs): void {
    const be = this.be;
    be.free(a.x, a.n1.y, a.n1.rstd, a.qRaw, a.kRaw, a.qn?.y, a.qn?.rstd, a.kn?.y, a.kn?.rstd, a.q, a.k, a.v);
    be.free(a.attn.out, a.attn.saved, a.x2, a.n2.y, a.n2.rstd, a.gate, a.up, a.h);
    for (const [, sv] of a.lora) be.free(sv.h, sv.mask, sv.xd);
  }

  /** Hidden states of the final norm for ids (B·T), positions 0..T−1 per sequence (or after the cache). */
  forward(
    ids: Int32Array,
    B: number,
    T: number,
    opts: { train?: boolean; seed?: number; save?: boolean; checkpoint?: boolean; cache?: KVCache } = {},
  ) {
    const be = this.be;
    const start = opts.cache?.len ?? 0;
    const pos = new Int32Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = start + t;
    const keepInputs = !!opts.save && !!opts.checkpoint;
    const ctx: Ctx = { B, T, pos, train: !!opts.train, seed: opts.seed ?? 0, save: !!opts.save && !keepInputs, cache: opts.cache };
    let x = be.embedding(ids, this.w.embed);
    const layers: LayerActs[] = [];
    const inputs: Tensor[] = [];
    for (let l = 0; l < this.spec.layers; l++) {
      const r = this.layerFwd(l, x, ctx);
      if (r.acts) layers.push(r.acts);
      else if (keepInputs) inputs.push(x);
      else be.free(x);
      x = r.out;
    }
    if (opts.cache) opts.cache.len += T;
    const nf = be.rmsnorm(x, this.w.norm, this.spec.rmsEps);
    return { acts: { layers, inputs, xL: x, nf } as Acts, ctx: { ...ctx, save: true } };
  }

  /** logits (N, V) of the final hidden states */
  logits(nf: Tensor): Tensor {
    return this.be.linear(nf, this.w.lmHead);
  }

  /**
   * One forward and backward pass. targets (B·T), −1 where not scored. The loss is the sum over scored tokens;
   * gradients of (loss · gradScale) are added into the adapter's dA/dB. With `checkpoint`, only each layer's input
   * is kept through the forward pass and the layer is run again, saving its activations, just before its
   * backward pass: about a third more compute for activation memory of one layer instead of all.
   */
  lossAndGrad(
    ids: Int32Array,
    targets: Int32Array,
    B: number,
    T: number,
    gradScale: number,
    seed: number,
    checkpoint = false,
  ): { loss: Tensor; count: number } {
    const be = this.be;
    const { acts, ctx } = this.forward(ids, B, T, { train: true, seed, save: true, checkpoint });
    const pos = ctx.pos;
    const dnf = be.zeros([B * T, this.spec.hidden], 'activations');
    const ce = this.headLoss(acts.nf.y, targets, gradScale, dnf);
    let dx = be.rmsnormBackward(dnf, acts.xL, this.w.norm, acts.nf.rstd);
    be.free(dnf, acts.xL, acts.nf.y, acts.nf.rstd);
    for (let l = this.spec.layers - 1; l >= 0; l--) {
      let a = acts.layers[l];
      if (checkpoint) {
        const r = this.layerFwd(l, acts.inputs[l], ctx); // the same dropout masks: they come from (seed, layer, module)
        be.free(r.out);
        a = r.acts!;
      }
      const dxi = this.layerBwd(l, a, dx, pos, B, T);
      this.freeActs(a);
      be.free(dx);
      dx = dxi;
    }
    be.free(dx);
    return ce;
  }

  /**
   * The LM head and cross-entropy over row chunks of the final hidden states (N, C), so the (N, V) logits never
   * exist whole: each chunk's logits and their gradient live only while it is scored. With `dnf`, the gradient of
   * the hidden states is written into it.
   */
  private headLoss(nf: Tensor, targets: Int32Array, gradScale: number, dnf?: Tensor): { loss: Tensor; count: number } {
    const be = this.be;
    const N = nf.shape[0];
    const rows = logitsRows(N, this.spec.vocabSize);
    const loss = be.zeros([1], 'workspace');
    let count = 0;
    for (let r0 = 0; r0 < N; r0 += rows) {
      const n = Math.min(rows, N - r0);
      const x = rows === N ? nf : be.sliceRows(nf, r0, n);
      const logits = this.logits(x);
      const ce = be.crossEntropy(logits, targets.subarray(r0, r0 + n), gradScale);
      be.free(logits);
      be.addInPlace(loss, ce.loss);
      count += ce.count;
      if (dnf) {
        const d = be.linearBackward(ce.dlogits, this.w.lmHead); // (n, C)
        be.setRows(dnf, r0, d);
        be.free(d);
      }
      be.free(ce.loss, ce.dlogits, x === nf ? null : x);
    }
    return { loss, count };
  }

  /** Summed cross-entropy over targets ≥ 0, no gradients. */
  loss(ids: Int32Array, targets: Int32Array, B: number, T: number): { loss: Tensor; count: number } {
    const be = this.be;
    const { acts } = this.forward(ids, B, T);
    be.free(acts.xL);
    const ce = this.headLoss(acts.nf.y, targets, 0);
    be.free(acts.nf.y, acts.nf.rstd);
    return ce;
  }

  /** Write a layer's new K and V rows after the cached ones (growing the cache by doubling); returns its tensors. */
  private cacheAppend(c: KVCache, l: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    const be = this.be;
    const need = c.len + k.shape[0];
    let kc = c.k[l],
      vc = c.v[l];
    if (!kc || !vc || kc.shape[0] < need) {
      const cap = Math.max(need, 2 * (kc?.shape[0] ?? 0), c.reserve);
      const nk = be.zeros([cap, k.shape[1]], 'activations', { resident: true }),
        nv = be.zeros([cap, v.shape[1]], 'activations', { resident: true });
      if (kc && vc) {
        be.setRows(nk, 0, kc);
        be.setRows(nv, 0, vc);
      }
      be.free(kc, vc);
      c.k[l] = kc = nk;
      c.v[l] = vc = nv;
    }
    be.setRows(kc, c.len, k);
    be.setRows(vc, c.len, v);
    be.free(k, v);
    return [kc, vc];
  }

  /** an empty KV cache; `reserve`: positions to make room for at once */
  newCache(reserve = 0): KVCache {
    return { len: 0, k: new Array(this.spec.layers).fill(null), v: new Array(this.spec.layers).fill(null), reserve };
  }

  freeCache(c: KVCache): void {
    this.be.free(...c.k, ...c.v);
  }

  /** Keep the first `len` positions of a cache (a shared prompt prefix): the rows after them are written over next. */
  truncateCache(c: KVCache, len: number): void {
    c.len = Math.max(0, Math.min(c.len, len));
  }

  /** Feed ids (batch 1) after the cached positions; returns the logits (1, V) of the last one. */
  step(ids: Int32Array, cache: KVCache): Tensor {
    const be = this.be;
    const { acts } = this.forward(ids, 1, ids.length, { cache });
    const last = be.sliceRows(acts.nf.y, ids.length - 1, 1);
    be.free(acts.xL, acts.nf.y, acts.nf.rstd);
    const logits = this.logits(last);
    be.free(last);
    return logits;
  }
}

/** logits computed at a time (rows × vocabulary): 64 MiB of f32 (settable for tests) */
export let LOGITS_CHUNK_FLOATS = 16 << 20;
export function setLogitsChunkFloats(n: number): void {
  LOGITS_CHUNK_FLOATS = n;
}

/**
 * Rows of logits scored at a time out of N with a vocabulary of V: at most LOGITS_CHUNK_FLOATS floats, in chunks of
 * equal size (a short last chunk would pay for packing the whole LM head for a few rows).
 */
export function logitsRows(N: number, V: number): number {
  const most = Math.max(1, Math.min(N, Math.floor(LOGITS_CHUNK_FLOATS / V)));
  return Math.ceil(N / Math.ceil(N / most));
}

const LINEAR_INDEX: Record<LinearName, number> = { q_proj: 0, k_proj: 1, v_proj: 2, o_proj: 3, gate_proj: 4, up_proj: 5, down_proj: 6 };

/** a 32-bit hash of two integers, for per-module dropout seeds */
function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return (h ^ (h >>> 12)) >>> 0;
}
