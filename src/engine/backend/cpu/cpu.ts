/**
 * The CPU backend: dispatch only. Matmuls (linear layers, LoRA, attention), softmax, cross-entropy, SwiGLU,
 * RMSNorm, RoPE and add run in the WebAssembly SIMD kernels on all cores (the row and elementwise ops of a decode
 * step's few values in their TypeScript references, which give the same bits); the rest (AdamW, dropout, …) in the
 * ops' TypeScript references. With `{ wasm: false }` everything runs in the references instead, which is how
 * the tests check the fast paths against the spec on whole models. Weight and LoRA matrices are resident in the
 * WebAssembly memory where they fit (resident.ts), so the kernels read them in place.
 */
import {
  AdamWParams,
  AttnShape,
  Backend,
  LoraPair,
  LoraSaved,
  MatmulOpts,
  MemTag,
  MemTracker,
  RopeTables,
  Tensor,
  matmulShape,
  numel,
} from '../../core/backend';
import { drainPool, f32, f32Out, pooled, recycle } from '../../core/f32pool';
import { HostTensor, bf16ToF32, f16ToF32, toF32 } from '../../core/dtype';
import { QuantWeight, dequantizeWeight, quantBytes } from '../../core/qweight';
import { WasmRuntime, sharedRuntime } from '../../ops/wasm';
import { GemmArgs, matmulRef } from '../../ops/matmul/reference';
import { gemm } from '../../ops/matmul/gemm';
import { elementKind } from '../../ops/matmul/gemv';
import { LoraShape, loraBackward, loraForward, loraFused } from '../../ops/matmul/lora';
import { linearLoraBackwardComposed, linearLoraComposed, loraGrads } from '../../core/lora-linear';
import { qgemm, qmatrixOf } from '../../ops/qmatmul/qgemm';
import { qmatmulRef } from '../../ops/qmatmul/reference';
import { attentionBackwardWasm, attentionForwardWasm } from '../../ops/attention/attention';
import { attentionDecodeWasm, decodeApplies } from '../../ops/attention/decode';
import { attentionBackward, attentionForward } from '../../ops/attention/reference';
import { embeddingForward } from '../../ops/embedding/reference';
import { rmsnormBackward, rmsnormForward } from '../../ops/rmsnorm/reference';
import { ropeForward } from '../../ops/rope/reference';
import { ropeWasm } from '../../ops/rope/rope';
import { rmsnormBackwardWasm, rmsnormWasm } from '../../ops/rmsnorm/rmsnorm';
import { addWasm } from '../../ops/elementwise/elementwise';
import { swigluBackward, swigluForward } from '../../ops/swiglu/reference';
import { swigluBackwardWasm, swigluWasm } from '../../ops/swiglu/swiglu';
import { crossEntropy } from '../../ops/cross_entropy/reference';
import { crossEntropyWasm } from '../../ops/cross_entropy/cross_entropy';
import { adamwStep } from '../../ops/adamw/reference';
import * as ew from '../../ops/elementwise/reference';
import { dropoutMask } from '../../ops/dropout/reference';
import { Residency } from './resident';

/**
 * f32 data, or half-float bits (Uint16Array: bf16 or f16) for base weight matrices stored that way, or (with
 * `quant`, and empty `data`) a 4-bit weight matrix.
 */
export class CpuTensor implements Tensor {
  constructor(
    readonly shape: number[],
    readonly data: Float32Array | Uint16Array,
    readonly tag: MemTag,
    readonly half: 'bf16' | 'f16' = 'bf16',
    readonly quant?: QuantWeight,
  ) {}
  get bytes(): number {
    return this.quant ? quantBytes(this.quant) : this.data.byteLength;
  }
}

/** tags whose matrices are kept resident in the WebAssembly memory: the frozen base and the adapter */
const RESIDENT_TAGS: ReadonlySet<MemTag> = new Set(['weights', 'lora']);
/** values from which the row and elementwise ops run in WebAssembly on every thread */
const ROW_KERNEL_MIN = 1 << 14;

export interface CpuOptions {
  wasm?: boolean;
  threads?: number;
  /** the FMA kernels (true) or the plain ones (false); unset: as WasmRuntime chooses */
  fma?: boolean;
}

export class CpuBackend implements Backend {
  readonly name: string;
  readonly mem = new MemTracker();
  private gemmImpl: (g: GemmArgs) => void;
  private wasm: WasmRuntime | null = null;
  private res: Residency | null = null;
  private live = new Set<CpuTensor>();
  private wasmBytes = 0;

  constructor(opts: CpuOptions = {}) {
    if (opts.wasm === false) {
      this.name = 'cpu-reference';
      this.gemmImpl = matmulRef;
    } else {
      const rt = (this.wasm = opts.threads || opts.fma !== undefined ? new WasmRuntime(opts.threads, { fma: opts.fma }) : sharedRuntime());
      this.res = new Residency(rt);
      this.name = `cpu (WebAssembly SIMD${rt.fma ? ' + FMA' : ''}, ${rt.threads} thread${rt.threads > 1 ? 's' : ''})`;
      this.gemmImpl = (a) => {
        gemm(rt, a);
        this.syncWorkspace();
      };
    }
  }

  /** The WebAssembly arena (kernel operands and scratch) counts as workspace; it grows and is kept. */
  private syncWorkspace(): void {
    const b = this.wasm!.arenaBytes();
    if (b > this.wasmBytes) {
      this.mem.alloc('workspace', b - this.wasmBytes);
      this.wasmBytes = b;
    }
  }

  private make(shape: number[], data: Float32Array | Uint16Array, tag: MemTag, resident = RESIDENT_TAGS.has(tag)): CpuTensor {
    if (this.res && shape.length === 2 && resident) data = this.res.place(data) ?? data;
    const t = new CpuTensor(shape, data, tag);
    this.mem.alloc(tag, data.byteLength);
    this.live.add(t);
    return t;
  }
  /** f32 data (every tensor but a bf16 weight matrix) */
  private d(t: Tensor): Float32Array {
    if ((t as CpuTensor).quant) throw new Error(`internal: a 4-bit tensor [${t.shape}] reached an op that needs f32`);
    const x = (t as CpuTensor).data;
    if (!(x instanceof Float32Array)) throw new Error(`internal: a bf16 tensor [${t.shape}] reached an op that needs f32`);
    return x;
  }
  /** the data as stored: f32, or bf16 bits that the gemm widens while packing */
  private raw(t: Tensor): Float32Array | Uint16Array {
    return (t as CpuTensor).data;
  }

  upload(data: Float32Array, shape: number[], tag: MemTag): Tensor {
    if (data.length !== numel(shape)) throw new Error(`upload: ${data.length} values for shape [${shape}]`);
    return this.make(shape, data, tag);
  }
  zeros(shape: number[], tag: MemTag, opts?: { resident?: boolean }): Tensor {
    return this.make(shape, f32(numel(shape)), tag, opts?.resident || RESIDENT_TAGS.has(tag));
  }
  uploadWeight(t: HostTensor, shape: number[]): Tensor {
    if (t.dtype === 'BF16' || t.dtype === 'F16') {
      const w = this.make(shape, t.data as Uint16Array, 'weights');
      return t.dtype === 'F16' ? this.relabel(w, 'f16') : w;
    }
    return this.make(shape, toF32(t.dtype, t.data), 'weights');
  }
  uploadQuantized(q: QuantWeight): Tensor {
    if (q.shape.length !== 2) throw new Error(`uploadQuantized: shape [${q.shape}] is not a matrix`);
    const t = new CpuTensor([...q.shape], new Float32Array(0), 'weights', 'bf16', this.res ? this.res.placeQuant(q) : q);
    this.mem.alloc('weights', t.bytes);
    this.live.add(t);
    return t;
  }
  private relabel(t: CpuTensor, half: 'bf16' | 'f16'): CpuTensor {
    const out = new CpuTensor(t.shape, t.data, t.tag, half);
    this.live.delete(t);
    this.live.add(out);
    return out;
  }
  toF32(t: Tensor): Tensor {
    const x = this.raw(t);
    if (x instanceof Float32Array && !(t as CpuTensor).quant) return t;
    const out = this.make([...t.shape], this.widen(t as CpuTensor), t.tag);
    this.free(t);
    return out;
  }
  private widen(t: CpuTensor, from = 0, to = t.data.length, dst?: Float32Array): Float32Array {
    if (t.quant) return dequantizeWeight(t.quant);
    const x = (t.data as Uint16Array).subarray(from, to);
    return t.half === 'f16' ? f16ToF32(x, dst) : bf16ToF32(x, dst);
  }
  /** the data itself for host f32 tensors; a copy for resident ones (their memory is reused once they are freed) */
  read(t: Tensor): Float32Array {
    const x = this.raw(t);
    if (!(x instanceof Float32Array) || (t as CpuTensor).quant) return this.widen(t as CpuTensor);
    return this.res?.has(x) || pooled(x) ? x.slice() : x;
  }
  write(t: Tensor, data: Float32Array): void {
    this.d(t).set(data);
  }
  free(...ts: (Tensor | undefined | null)[]): void {
    for (const t of ts) {
      if (!t || !this.live.has(t as CpuTensor)) continue;
      this.live.delete(t as CpuTensor);
      this.mem.free(t.tag, (t as CpuTensor).bytes);
      const q = (t as CpuTensor).quant;
      if (q) this.res?.releaseQuant(q);
      else if (this.res?.has((t as CpuTensor).data)) this.res.release((t as CpuTensor).data);
      else if ((t as CpuTensor).data instanceof Float32Array) recycle((t as CpuTensor).data as Float32Array);
    }
  }

  /** the WebAssembly runtime the kernels run on (null for the reference backend) */
  get runtime(): WasmRuntime | null {
    return this.wasm;
  }

  private gemm(g: GemmArgs): void {
    this.gemmImpl(g);
  }

  linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
    const [N, K] = x.shape;
    const M = w.shape[0];
    if (w.shape[1] !== K) throw new Error(`linear: x [${x.shape}] · wᵀ [${w.shape}]`);
    const y = this.make([N, M], f32Out(N * M), 'activations');
    const q = (w as CpuTensor).quant;
    if (q) this.qgemm(this.d(x), N, q, true, this.d(y), 0);
    else this.gemm({ M: N, N: M, K, a: this.d(x), b: this.raw(w), bHalf: (w as CpuTensor).half, transB: true, c: this.d(y) });
    if (b) ew.addBias(this.d(y), this.d(b), N, M);
    return y;
  }

  linearBackward(dy: Tensor, w: Tensor, into?: Tensor): Tensor {
    const [N, M] = dy.shape;
    const K = w.shape[1];
    const dx = into ?? this.make([N, K], f32Out(N * K), 'activations');
    const q = (w as CpuTensor).quant;
    if (q) this.qgemm(this.d(dy), N, q, false, this.d(dx), into ? 1 : 0);
    else this.gemm({ M: N, N: K, K: M, a: this.d(dy), b: this.raw(w), bHalf: (w as CpuTensor).half, c: this.d(dx), beta: into ? 1 : 0 });
    return dx;
  }

  /**
   * The WebAssembly path fuses the LoRA products into the base product's arena session (ops/matmul/lora.ts); a
   * 4-bit W, a few rows (decoding), a pass too large for the memory and the reference backend compose the plain ops.
   */
  linearLora(x: Tensor, w: Tensor, b: Tensor | undefined, lora: LoraPair, drop: { p: number; seed: number }, save: boolean) {
    const s = this.loraShape(x, w, lora, drop.p > 0, false);
    if (!s || !loraFused(s, false)) return linearLoraComposed(this, x, w, b, lora, drop, save);
    const { y: xd, mask } = this.dropout(x, drop.p, drop.seed);
    const y = this.make([s.N, s.out], f32Out(s.N * s.out), 'activations');
    const h = this.make([s.N, s.r], f32Out(s.N * s.r), 'activations');
    const [A, B] = [this.d(lora.A), this.d(lora.B)];
    loraForward(this.wasm!, {
      ...s,
      x: this.d(x),
      xd: this.d(xd),
      w: this.raw(w),
      bias: b && this.d(b),
      A,
      B,
      scale: lora.scale,
      y: this.d(y),
      h: this.d(h),
    });
    this.syncWorkspace();
    if (save) return { y, saved: { xd, mask, h } };
    this.free(h, xd === x ? null : xd, mask);
    return { y, saved: null };
  }

  linearLoraBackward(dy: Tensor, w: Tensor, lora: LoraPair, saved: LoraSaved, into?: Tensor): Tensor {
    const s = this.loraShape(dy, w, lora, !!saved.mask, true);
    if (into && (into.shape[0] !== dy.shape[0] || into.shape[1] !== w.shape[1]))
      throw new Error(`linearLoraBackward: into [${into.shape}] for dy [${dy.shape}] · w [${w.shape}]`);
    if (!s || !loraFused(s, true)) return linearLoraBackwardComposed(this, dy, w, lora, saved, into);
    const { dA, dB } = loraGrads(lora);
    const dx = into ?? this.make([s.N, s.inp], f32Out(s.N * s.inp), 'activations');
    loraBackward(this.wasm!, {
      ...s,
      dy: this.d(dy),
      w: this.raw(w),
      A: this.d(lora.A),
      B: this.d(lora.B),
      scale: lora.scale,
      h: this.d(saved.h),
      xd: this.d(saved.xd),
      mask: saved.mask && this.d(saved.mask),
      dx: this.d(dx),
      into: !!into,
      dA: this.d(dA),
      dB: this.d(dB),
    });
    this.syncWorkspace();
    return dx;
  }

  /**
   * The shape of a LoRA linear (x: the input, or dy for the backward pass) when the WebAssembly path can fuse it (an
   * f32 or half-float W), else null; operands that do not agree are refused either way.
   */
  private loraShape(x: Tensor, w: Tensor, lora: LoraPair, dropout: boolean, backward: boolean): LoraShape | null {
    const [out, inp] = w.shape;
    const r = lora.A.shape[0];
    if (x.shape[1] !== (backward ? out : inp) || lora.A.shape[1] !== inp || lora.B.shape[0] !== out || lora.B.shape[1] !== r)
      throw new Error(
        `linearLora: ${backward ? 'dy' : 'x'} [${x.shape}], w [${w.shape}], A [${lora.A.shape}], B [${lora.B.shape}] do not agree`,
      );
    const t = w as CpuTensor;
    if (!this.wasm || t.quant) return null;
    return { N: x.shape[0], inp, out, r, wKind: elementKind(t.data, t.half), dropout };
  }

  /** x · op(W) for a 4-bit W: the fused kernel, or (reference backend) dequantize then the reference matmul */
  private qgemm(x: Float32Array, M: number, q: QuantWeight, trans: boolean, c: Float32Array, beta: 0 | 1): void {
    if (this.wasm) {
      qgemm(this.wasm, { M, x, w: qmatrixOf(q), trans, c, beta });
      this.syncWorkspace();
    } else qmatmulRef(x, M, q, trans, c, beta);
  }

  matmul(a: Tensor, b: Tensor, o: MatmulOpts, tag: MemTag): Tensor {
    const [M, N, K] = matmulShape(a, b, o);
    const out = o.out ?? this.make([M, N], f32(M * N), tag);
    this.gemm({
      M,
      N,
      K,
      a: this.d(a),
      b: this.d(b),
      transA: o.transA,
      transB: o.transB,
      alpha: o.alpha ?? 1,
      beta: o.out ? (o.beta ?? 1) : 0,
      c: this.d(out),
    });
    return out;
  }

  embedding(ids: Int32Array, table: Tensor): Tensor {
    const C = table.shape[1];
    const t = this.raw(table);
    if (t instanceof Float32Array) return this.make([ids.length, C], embeddingForward(ids, t, C), 'activations');
    const out = f32(ids.length * C); // rows of a half-float table, widened
    const V = table.shape[0];
    for (let n = 0; n < ids.length; n++) {
      if (!(ids[n] >= 0 && ids[n] < V)) throw new RangeError(`token id ${ids[n]} is outside the embedding table (${V} rows)`);
      this.widen(table as CpuTensor, ids[n] * C, ids[n] * C + C, out.subarray(n * C, n * C + C));
    }
    return this.make([ids.length, C], out, 'activations');
  }

  /**
   * The runtime for an elementwise or row op on x, or null for the TypeScript spec: a decode step's few values are
   * done in TypeScript sooner than copied through WebAssembly memory (both give the same bits).
   */
  private rows(x: Tensor): WasmRuntime | null {
    return this.wasm && numel(x.shape) >= ROW_KERNEL_MIN ? this.wasm : null;
  }

  rmsnorm(x: Tensor, w: Tensor, eps: number) {
    const C = w.shape[0];
    const N = numel(x.shape) / C;
    const args = [this.d(x), this.d(w), N, C, eps] as const;
    const rt = this.rows(x);
    const r = rt ? rmsnormWasm(rt, ...args) : rmsnormForward(...args);
    return { y: this.make([...x.shape], r.y, 'activations'), rstd: this.make([N], r.rstd, 'activations') };
  }

  rmsnormBackward(dy: Tensor, x: Tensor, w: Tensor, rstd: Tensor): Tensor {
    const C = w.shape[0];
    const N = numel(x.shape) / C;
    const args = [this.d(dy), this.d(x), this.d(w), this.d(rstd), N, C] as const;
    const rt = this.rows(x);
    return this.make([...x.shape], rt ? rmsnormBackwardWasm(rt, ...args) : rmsnormBackward(...args), 'activations');
  }

  rope(x: Tensor, heads: number, pos: Int32Array, t: RopeTables, inverse: boolean): Tensor {
    const N = x.shape[0];
    const D = x.shape[1] / heads;
    const args = [this.d(x), N, heads, D, pos, this.d(t.cos), this.d(t.sin), inverse] as const;
    const rt = this.rows(x);
    return this.make([...x.shape], rt ? ropeWasm(rt, ...args) : ropeForward(...args), 'activations');
  }

  /** saved: the rows' log-sum-exp (B, H, Tq) on the WebAssembly path, the probabilities (B, H, Tq, Tk) on the reference */
  attention(q: Tensor, k: Tensor, v: Tensor, p: AttnShape) {
    if (!this.wasm) {
      const r = attentionForward(this.d(q), this.d(k), this.d(v), p);
      return {
        out: this.make([p.B * p.Tq, p.H * p.D], r.out, 'activations'),
        saved: this.make([p.B, p.H, p.Tq, p.Tk], r.probs, 'activations'),
      };
    }
    const kv = p.B * p.Tk * p.KV * p.D; // a KV cache may hold spare rows past Tk
    const attend = decodeApplies(p) ? attentionDecodeWasm : attentionForwardWasm;
    const r = attend(this.wasm, this.d(q), this.d(k).subarray(0, kv), this.d(v).subarray(0, kv), p);
    this.syncWorkspace();
    return { out: this.make([p.B * p.Tq, p.H * p.D], r.out, 'activations'), saved: this.make([p.B, p.H, p.Tq], r.lse, 'activations') };
  }

  attentionBackward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, saved: Tensor, p: AttnShape) {
    const args = [this.d(dout), this.d(q), this.d(k), this.d(v), this.d(saved), p] as const;
    const r = this.wasm ? attentionBackwardWasm(this.wasm, ...args) : attentionBackward(...args);
    if (this.wasm) this.syncWorkspace();
    return {
      dq: this.make([...q.shape], r.dq, 'activations'),
      dk: this.make([...k.shape], r.dk, 'activations'),
      dv: this.make([...v.shape], r.dv, 'activations'),
    };
  }

  swiglu(gate: Tensor, up: Tensor): Tensor {
    const h = this.wasm ? swigluWasm(this.wasm, this.d(gate), this.d(up)) : swigluForward(this.d(gate), this.d(up));
    if (this.wasm) this.syncWorkspace();
    return this.make([...gate.shape], h, 'activations');
  }
  swigluBackward(dh: Tensor, gate: Tensor, up: Tensor) {
    const args = [this.d(dh), this.d(gate), this.d(up)] as const;
    const r = this.wasm ? swigluBackwardWasm(this.wasm, ...args) : swigluBackward(...args);
    if (this.wasm) this.syncWorkspace();
    return { dgate: this.make([...gate.shape], r.dgate, 'activations'), dup: this.make([...up.shape], r.dup, 'activations') };
  }

  add(a: Tensor, b: Tensor): Tensor {
    const rt = this.rows(a);
    return this.make([...a.shape], rt ? addWasm(rt, this.d(a), this.d(b)) : ew.add(this.d(a), this.d(b)), 'activations');
  }
  addInPlace(a: Tensor, b: Tensor, s = 1): void {
    ew.axpy(this.d(a), this.d(b), s);
  }
  scaleInPlace(a: Tensor, s: number): void {
    ew.scale(this.d(a), s);
  }
  dropout(x: Tensor, p: number, seed: number) {
    if (p <= 0) return { y: x, mask: null };
    const mask = this.make([...x.shape], dropoutMask(numel(x.shape), p, seed), 'activations');
    return { y: this.mul(x, mask), mask };
  }
  mul(a: Tensor, b: Tensor): Tensor {
    return this.make([...a.shape], ew.mul(this.d(a), this.d(b)), 'activations');
  }
  sliceRows(x: Tensor, start: number, count: number): Tensor {
    const C = x.shape[1];
    const out = f32(count * C);
    out.set(this.d(x).subarray(start * C, (start + count) * C));
    return this.make([count, C], out, 'activations');
  }
  setRows(dst: Tensor, start: number, src: Tensor): void {
    this.d(dst).set(this.d(src), start * dst.shape[1]);
  }
  crossEntropy(logits: Tensor, targets: Int32Array, gradScale: number) {
    const V = logits.shape[1];
    const r = this.wasm
      ? crossEntropyWasm(this.wasm, this.d(logits), targets, V, gradScale)
      : crossEntropy(this.d(logits), targets, V, gradScale);
    if (this.wasm) this.syncWorkspace();
    return {
      loss: this.make([1], Float32Array.of(r.loss), 'workspace'),
      count: r.count,
      dlogits: this.make([...logits.shape], r.dlogits, 'activations'),
    };
  }
  sumSquares(x: Tensor): Tensor {
    return this.make([1], Float32Array.of(ew.sumSquares(this.d(x))), 'workspace');
  }
  adamw(p: Tensor, g: Tensor, m: Tensor, v: Tensor, hp: AdamWParams): void {
    adamwStep(this.d(p), this.d(g), this.d(m), this.d(v), hp);
  }

  dispose(): void {
    for (const t of [...this.live]) this.free(t);
    drainPool();
  }
}
