/**
 * The backend interface: what the model, LoRA, trainer and generator may ask of a device. Tensors are opaque
 * handles; only `read` brings numbers back to the host. The CPU backend implements it with typed arrays and
 * WebAssembly; a WebGPU backend implements the same methods with buffers and WGSL, and the model code does not
 * change.
 */
import type { HostTensor } from './dtype';
import type { QuantWeight } from './qweight';

/** the compute backends a run can ask for (auto: a hardware GPU when there is one, else the CPU) */
export type BackendName = 'auto' | 'cpu' | 'cpu-reference' | 'webgpu';

export const MEM_TAGS = ['weights', 'lora', 'optimizer', 'activations', 'workspace'] as const;
export type MemTag = (typeof MEM_TAGS)[number];
export type MemFigures = Record<MemTag, number> & { total: number };

/** Live and peak bytes per tag, counted at every allocation and free. */
export class MemTracker {
  live: Record<MemTag, number> = { weights: 0, lora: 0, optimizer: 0, activations: 0, workspace: 0 };
  peak: MemFigures = { weights: 0, lora: 0, optimizer: 0, activations: 0, workspace: 0, total: 0 };

  alloc(tag: MemTag, bytes: number): void {
    this.live[tag] += bytes;
    if (this.live[tag] > this.peak[tag]) this.peak[tag] = this.live[tag];
    const total = this.total();
    if (total > this.peak.total) this.peak.total = total;
  }
  free(tag: MemTag, bytes: number): void {
    this.live[tag] -= bytes;
  }
  total(): number {
    let s = 0;
    for (const t of MEM_TAGS) s += this.live[t];
    return s;
  }
  snapshot(): MemFigures {
    return { ...this.live, total: this.total() };
  }
  resetPeak(): void {
    this.peak = { ...this.live, total: this.total() };
  }
}

export interface Tensor {
  readonly shape: readonly number[];
  readonly tag: MemTag;
}

export interface MatmulOpts {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  /** accumulate into this tensor: out = alpha·op(a)·op(b) + beta·out */
  out?: Tensor;
  beta?: number;
}

/** a LoRA pair on a frozen linear layer (out, in): y += scale·(drop(x)·Aᵀ)·Bᵀ; its backward pass adds into dA and dB */
export interface LoraPair {
  A: Tensor; // (r, in)
  B: Tensor; // (out, r)
  scale: number;
  dA?: Tensor;
  dB?: Tensor;
}

/** what a LoRA linear keeps for its backward pass */
export interface LoraSaved {
  xd: Tensor; // (N, in) the dropped-out input (x itself when p = 0)
  mask: Tensor | null; // (N, in), with dropout
  h: Tensor; // (N, r) = xd·Aᵀ
}

/** cos/sin tables (P, D/2) for positions 0..P−1 */
export interface RopeTables {
  cos: Tensor;
  sin: Tensor;
}

/** the shape of a causal grouped-query attention call: q (B·Tq, H·D), k/v (B·Tk, KV·D) */
export interface AttnShape {
  B: number;
  Tq: number; // query positions per sequence
  Tk: number; // key positions per sequence (≥ Tq; the queries are the last Tq of them)
  H: number; // query heads
  KV: number; // key/value heads; query head h reads kv head floor(h / (H / KV))
  D: number; // head dim
  window?: number; // sliding window: query i sees keys j with i − j < window
}

/**
 * One kernel call of a training step, by shape: the estimate lists a step's calls and a backend's workspace hook
 * sizes the scratch memory they need (each backend knows its own kernels' layouts).
 */
export type KernelCall =
  | { op: 'matmul'; M: number; N: number; K: number; transA: boolean; halfB: boolean }
  /** a LoRA linear (linearLora, or its backward pass in the backward list): N rows, W (out, inp), rank r */
  | { op: 'loraLinear'; N: number; inp: number; out: number; r: number; halfW: boolean; dropout: boolean }
  | { op: 'qmatmul'; M: number; rows: number; cols: number; trans: boolean; packedBytes: number; scales: number }
  | { op: 'attention'; shape: AttnShape }
  | { op: 'swiglu'; n: number }
  | { op: 'crossEntropy'; rows: number; V: number };

/** a training step's kernel calls: those up to the loss, then those of the backward pass */
export interface StepWorkload {
  forward: KernelCall[];
  backward: KernelCall[];
}

/** bytes of scratch a backend holds for a step: `forward` when the loss is computed, `all` after the backward pass */
export type WorkspaceSizer = (w: StepWorkload) => { forward: number; all: number };

export interface AdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number; // 1-based, for bias correction
}

export interface Backend {
  readonly name: string;
  readonly mem: MemTracker;

  upload(data: Float32Array, shape: number[], tag: MemTag): Tensor;
  /**
   * A frozen base weight matrix as read from the file, kept in its stored precision where the backend computes
   * from it directly (bf16 on the CPU: half the memory of f32); otherwise converted to f32.
   */
  uploadWeight(t: HostTensor, shape: number[]): Tensor;
  /** a frozen 4-bit weight matrix (QLoRA): linear and linearBackward dequantize it inside the product */
  uploadQuantized(q: QuantWeight): Tensor;
  /** the tensor itself when f32, else an f32 copy (the original is freed): for writing into a weight */
  toF32(t: Tensor): Tensor;
  /**
   * `resident`: the tensor lives across many calls and is read by kernels again and again (a KV cache): a backend
   * that copies operands into kernel memory per call may keep it there instead.
   */
  zeros(shape: number[], tag: MemTag, opts?: { resident?: boolean }): Tensor;
  /** the tensor's values on the host (a copy for device backends) */
  read(t: Tensor): Float32Array;
  /** overwrite a tensor's values from the host */
  write(t: Tensor, data: Float32Array): void;
  free(...ts: (Tensor | undefined | null)[]): void;

  /** y (N, M) = x (N, K) · wᵀ + b, with w (M, K) and b (M) */
  linear(x: Tensor, w: Tensor, b?: Tensor): Tensor;
  /** dx (N, K) = dy (N, M) · w (M, K), added into `into` when given */
  linearBackward(dy: Tensor, w: Tensor, into?: Tensor): Tensor;
  /**
   * y (N, out) = x·wᵀ + b + scale·(drop(x)·Aᵀ)·Bᵀ, inverted dropout of rate p with the mask of `seed` (none at
   * p = 0). With `save`, what linearLoraBackward needs (the caller frees it), else null.
   */
  linearLora(
    x: Tensor,
    w: Tensor,
    b: Tensor | undefined,
    lora: LoraPair,
    drop: { p: number; seed: number },
    save: boolean,
  ): { y: Tensor; saved: LoraSaved | null };
  /**
   * The backward pass of linearLora: dx (N, in) = dy·w + (scale·dy·B·A)⊙mask, added into `into` when given; and
   * the LoRA gradients dB += scale·dyᵀ·h, dA += (scale·dy·B)ᵀ·xd.
   */
  linearLoraBackward(dy: Tensor, w: Tensor, lora: LoraPair, saved: LoraSaved, into?: Tensor): Tensor;
  /** alpha·op(a)·op(b) (+ beta·out) */
  matmul(a: Tensor, b: Tensor, opts: MatmulOpts, tag: MemTag): Tensor;

  /** (N, C) rows of table (V, C) */
  embedding(ids: Int32Array, table: Tensor): Tensor;
  rmsnorm(x: Tensor, w: Tensor, eps: number): { y: Tensor; rstd: Tensor };
  rmsnormBackward(dy: Tensor, x: Tensor, w: Tensor, rstd: Tensor): Tensor;
  /** x (N, heads·D) rotated per row position; inverse rotates back (the backward pass) */
  rope(x: Tensor, heads: number, pos: Int32Array, tables: RopeTables, inverse: boolean): Tensor;
  /**
   * q (B·Tq, H·D), k/v (B·Tk, KV·D) → out (B·Tq, H·D); `saved` is what the backward pass needs. With B = 1, k and v
   * may have more rows than Tk (a KV cache's spare capacity): only the first Tk are read.
   */
  attention(q: Tensor, k: Tensor, v: Tensor, p: AttnShape): { out: Tensor; saved: Tensor };
  attentionBackward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, saved: Tensor, p: AttnShape): { dq: Tensor; dk: Tensor; dv: Tensor };
  swiglu(gate: Tensor, up: Tensor): Tensor;
  swigluBackward(dh: Tensor, gate: Tensor, up: Tensor): { dgate: Tensor; dup: Tensor };
  /** a + b, as a new tensor */
  add(a: Tensor, b: Tensor): Tensor;
  /** a += s·b in place */
  addInPlace(a: Tensor, b: Tensor, s?: number): void;
  /** a *= s in place */
  scaleInPlace(a: Tensor, s: number): void;
  /** inverted dropout with its mask (already scaled by 1/(1−p)); mask is null when p = 0 */
  dropout(x: Tensor, p: number, seed: number): { y: Tensor; mask: Tensor | null };
  /** elementwise a · b, as a new tensor */
  mul(a: Tensor, b: Tensor): Tensor;
  /** rows [start, start+count) of a 2-D tensor, as a new tensor */
  sliceRows(x: Tensor, start: number, count: number): Tensor;
  /** overwrite rows [start, start + src rows) of dst with src */
  setRows(dst: Tensor, start: number, src: Tensor): void;
  /** summed cross-entropy over targets ≥ 0 (a 1-element tensor) and dlogits scaled by gradScale */
  crossEntropy(logits: Tensor, targets: Int32Array, gradScale: number): { loss: Tensor; count: number; dlogits: Tensor };
  /** Σ x² as a 1-element tensor */
  sumSquares(x: Tensor): Tensor;
  /**
   * Σ x² over many tensors as one 1-element tensor, so a device backend reduces on the device and the caller reads
   * once (the trainer's gradient norm). Optional: a host backend reads each sumSquares for free, and the CPU
   * backend's per-tensor f32 sums added in f64 are the exact sum its kept references were made with.
   */
  sumSquaresAll?(xs: Tensor[]): Tensor;
  /** AdamW (decoupled weight decay) on one parameter, updating p, m and v in place */
  adamw(p: Tensor, g: Tensor, m: Tensor, v: Tensor, hp: AdamWParams): void;

  dispose(): void;
}

/** [M, N, K] of alpha·op(a)·op(b), checking the inner dimensions agree */
export function matmulShape(a: Tensor, b: Tensor, o: MatmulOpts): [number, number, number] {
  const M = o.transA ? a.shape[1] : a.shape[0];
  const K = o.transA ? a.shape[0] : a.shape[1];
  const N = o.transB ? b.shape[0] : b.shape[1];
  const Kb = o.transB ? b.shape[1] : b.shape[0];
  if (K !== Kb) throw new Error(`matmul: inner dims ${K} != ${Kb}`);
  return [M, N, K];
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
