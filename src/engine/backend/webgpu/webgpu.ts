/**
 * The WebGPU backend (Dawn, through the `webgpu` package): dispatch only. Every op is a WGSL kernel of its op folder
 * (ops/<op>/<op>.wgsl.ts, looked up by a typed KernelName, its variant and tiles fixed by the device's caps: plan.ts)
 * run by the GPU worker; device.ts holds the worker and the tensors. All tensors are f32 on the device, except
 * frozen weights (bf16/f16, or 4-bit codes and scales, widened or dequantized inside the kernels).
 */
import {
  AdamWParams,
  AttnShape,
  Backend,
  LoraPair,
  LoraSaved,
  MatmulOpts,
  MemTag,
  RopeTables,
  Tensor,
  matmulShape,
  numel,
} from '../../core/backend';
import { linearLoraBackwardComposed, linearLoraComposed } from '../../core/lora-linear';
import { UserError } from '../../core/errors';
import { adamwScalars } from '../../ops/adamw/reference';
import { dropThreshold } from '../../ops/dropout/reference';
import { QBLOCK, TILED_D } from '../../ops/attention/attention.wgsl';
import { GpuDevice } from './device';
import { GpuTensor, grid } from './handles';

export type { GpuOptions } from './device';

export class WebGpuBackend extends GpuDevice implements Backend {
  // ---- products ----

  linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
    const [N, K] = x.shape;
    const M = w.shape[0];
    if (w.shape[1] !== K) throw new Error(`linear: x [${x.shape}] · wᵀ [${w.shape}]`);
    const y = this.make([N, M], 'activations');
    this.product(x, w, true, y, false, N);
    if (b) this.run('bias', [N * M, M], [y, b], grid(N * M, 256));
    return y;
  }
  linearBackward(dy: Tensor, w: Tensor, into?: Tensor): Tensor {
    const [N] = dy.shape;
    const K = w.shape[1];
    const dx = into ?? this.make([N, K], 'activations');
    this.product(dy, w, false, dx, !!into, N);
    return dx;
  }
  /** the plain ops in sequence (core/lora-linear.ts) */
  linearLora(x: Tensor, w: Tensor, b: Tensor | undefined, lora: LoraPair, drop: { p: number; seed: number }, save: boolean) {
    return linearLoraComposed(this, x, w, b, lora, drop, save);
  }
  linearLoraBackward(dy: Tensor, w: Tensor, lora: LoraPair, saved: LoraSaved, into?: Tensor): Tensor {
    return linearLoraBackwardComposed(this, dy, w, lora, saved, into);
  }
  /** x · op(W) into out: the 4-bit kernel for a quantized W, else the f32 matmul */
  private product(x: Tensor, w: Tensor, trans: boolean, out: Tensor, accumulate: boolean, M: number): void {
    const g = w as GpuTensor;
    const [R, C] = w.shape;
    const K = trans ? C : R,
      N = trans ? R : C;
    const tiles: [number, number, number] = [Math.ceil(N / 64), Math.ceil(M / 64), 1];
    const q = g.quant;
    if (q?.nested)
      this.run(
        'qmatmul_dq',
        [M, N, K, trans ? 1 : 0, this.f(accumulate ? 1 : 0), R, C, Math.log2(q.q.blocksize), this.f(q.q.nested!.offset)],
        [x, g, q.scales, q.table, out, q.nested.absmax, q.nested.map],
        tiles,
      );
    else if (q)
      this.run(
        'qmatmul',
        [M, N, K, trans ? 1 : 0, this.f(accumulate ? 1 : 0), R, C, Math.log2(q.q.blocksize)],
        [x, g, q.scales, q.table, out],
        tiles,
      );
    else {
      const kernel = g.half === 'f16' && this.caps.f16 ? 'matmul_f16' : g.half ? 'matmul_half' : 'matmul';
      const half = g.half === 'f16' ? 2 : g.half ? 1 : 0;
      if (!g.parts)
        this.run(kernel, [M, N, K, 0, trans ? 1 : 0, this.f(1), this.f(accumulate ? 1 : 0), 0, 0, 0, 0, half], [x, w, out], tiles);
      else
        g.parts.forEach((p, i) => {
          const n = p.t.shape[0];
          // forward: this block's rows are columns [r0, r0+n) of the output; backward: rows [r0, r0+n) of the sum over K
          if (trans)
            this.run(
              kernel,
              [M, n, K, 0, 1, this.f(1), this.f(accumulate ? 1 : 0), N, p.r0, 0, 0, half],
              [x, p.t, out],
              [Math.ceil(n / 64), Math.ceil(M / 64), 1],
            );
          else this.run(kernel, [M, N, n, 0, 0, this.f(1), this.f(accumulate || i > 0 ? 1 : 0), 0, 0, K, p.r0, half], [x, p.t, out], tiles);
        });
    }
  }
  matmul(a: Tensor, b: Tensor, o: MatmulOpts, tag: MemTag): Tensor {
    const [M, N, K] = matmulShape(a, b, o);
    const out = o.out ?? this.make([M, N], tag);
    const beta = o.out ? (o.beta ?? 1) : 0;
    this.run(
      'matmul',
      [M, N, K, o.transA ? 1 : 0, o.transB ? 1 : 0, this.f(o.alpha ?? 1), this.f(beta)],
      [a, b, out],
      [Math.ceil(N / 64), Math.ceil(M / 64), 1],
    );
    return out;
  }

  // ---- the rest of the ops ----

  embedding(ids: Int32Array, table: Tensor): Tensor {
    const [V, C] = table.shape;
    for (const id of ids) if (!(id >= 0 && id < V)) throw new RangeError(`token id ${id} is outside the embedding table (${V} rows)`);
    const idt = this.make([ids.length], 'workspace', ids);
    const out = this.make([ids.length, C], 'activations');
    const g = table as GpuTensor;
    for (const p of g.parts ?? [{ t: g, r0: 0 }])
      this.run(
        g.half === 'f16' && this.caps.f16 ? 'embedding_f16' : g.half ? 'embedding_half' : 'embedding',
        [ids.length, C, p.r0, p.r0 + p.t.shape[0], 0, 0, 0, 0, 0, 0, 0, g.half === 'f16' ? 2 : 1],
        [p.t, idt, out],
        grid(ids.length * C, 256),
      );
    this.free(idt);
    return out;
  }
  rmsnorm(x: Tensor, w: Tensor, eps: number) {
    const C = w.shape[0];
    const N = numel(x.shape) / C;
    const y = this.make([...x.shape], 'activations');
    const rstd = this.make([N], 'activations');
    this.run('rmsnorm', [N, C, this.f(eps)], [x, w, y, rstd], grid(N, 1));
    return { y, rstd };
  }
  rmsnormBackward(dy: Tensor, x: Tensor, w: Tensor, rstd: Tensor): Tensor {
    const C = w.shape[0];
    const N = numel(x.shape) / C;
    const dx = this.make([...x.shape], 'activations');
    this.run('rmsnorm_bwd', [N, C], [dy, x, w, rstd, dx], grid(N, 1));
    return dx;
  }
  rope(x: Tensor, heads: number, pos: Int32Array, t: RopeTables, inverse: boolean): Tensor {
    const N = x.shape[0];
    const D = x.shape[1] / heads;
    const p = this.make([pos.length], 'workspace', pos);
    const out = this.make([...x.shape], 'activations');
    this.run('rope', [N, heads, D, inverse ? 1 : 0], [x, p, t.cos, t.sin, out], grid((N * heads * D) / 2, 256));
    this.free(p);
    return out;
  }
  private attnParams(p: AttnShape): number[] {
    if (p.D > 256) throw new UserError(`the WebGPU attention kernel supports head dimensions up to 256, not ${p.D}`);
    return [p.B, p.Tq, p.Tk, p.H, p.KV, p.D, p.window ?? 0, this.f(1 / Math.sqrt(p.D))];
  }
  /**
   * saved: each query row's log-sum-exp (B, H, Tq). With subgroups: one subgroup per query row; else head dims up to
   * 128 take the tiled kernel (K/V tiles in workgroup memory), larger ones one invocation per row.
   */
  attention(q: Tensor, k: Tensor, v: Tensor, p: AttnShape) {
    const out = this.make([p.B * p.Tq, p.H * p.D], 'activations');
    const saved = this.make([p.B, p.H, p.Tq], 'activations');
    const rows = p.B * p.H * p.Tq;
    const bufs = [q, k, v, out, saved];
    if (this.caps.subgroups) this.run('attention_sg', this.attnParams(p), bufs, grid(rows, 1));
    else if (p.D <= TILED_D) this.run('attention_tiled', this.attnParams(p), bufs, grid(p.B * p.H * Math.ceil(p.Tq / QBLOCK), 1));
    else this.run('attention', this.attnParams(p), bufs, grid(rows, 64));
    return { out, saved };
  }
  /** per query row (dq and Σ P·dP), chosen as the forward's kernel is; then per key row (dk, dv), tiled up to head dim 128 */
  attentionBackward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, saved: Tensor, p: AttnShape) {
    const dq = this.make([...q.shape], 'activations');
    const dk = this.make([...k.shape], 'activations');
    const dv = this.make([...v.shape], 'activations');
    const dots = this.make([p.B, p.H, p.Tq], 'workspace');
    const P = this.attnParams(p);
    const rows = p.B * p.H * p.Tq;
    const qBufs = [q, k, v, dout, saved, dq, dots];
    if (this.caps.subgroups) this.run('attention_bwd_q_sg', P, qBufs, grid(rows, 1));
    else if (p.D <= TILED_D) this.run('attention_bwd_q_tiled', P, qBufs, grid(p.B * p.H * Math.ceil(p.Tq / QBLOCK), 1));
    else this.run('attention_bwd_q', P, qBufs, grid(rows, 64));
    const kvBufs = [q, k, v, dout, saved, dots, dk, dv];
    if (p.D <= TILED_D) this.run('attention_bwd_kv_tiled', P, kvBufs, grid(p.B * p.KV * Math.ceil(p.Tk / this.caps.kvKB), 1));
    else this.run('attention_bwd_kv', P, kvBufs, grid(p.B * p.KV * p.Tk, 64));
    this.free(dots);
    return { dq, dk, dv };
  }
  swiglu(gate: Tensor, up: Tensor): Tensor {
    const n = numel(gate.shape);
    const h = this.make([...gate.shape], 'activations');
    this.run('swiglu', [n, 0], [gate, up, h], grid(n, 256));
    return h;
  }
  swigluBackward(dh: Tensor, gate: Tensor, up: Tensor) {
    const n = numel(gate.shape);
    const dgate = this.make([...gate.shape], 'activations');
    const dup = this.make([...up.shape], 'activations');
    this.run('swiglu_bwd', [n, 0], [dh, gate, up, dgate, dup], grid(n, 256));
    return { dgate, dup };
  }
  add(a: Tensor, b: Tensor): Tensor {
    const n = numel(a.shape);
    const out = this.make([...a.shape], 'activations');
    this.run('add', [n, 0], [a, b, out], grid(n, 256));
    return out;
  }
  addInPlace(a: Tensor, b: Tensor, s = 1): void {
    const n = numel(a.shape);
    this.run('axpy', [n, this.f(s)], [a, b], grid(n, 256));
  }
  scaleInPlace(a: Tensor, s: number): void {
    const n = numel(a.shape);
    this.run('scale', [n, this.f(s)], [a], grid(n, 256));
  }
  /** the mask is made on the device by the CPU's counter-based generator (ops/dropout): the same bits for a seed */
  dropout(x: Tensor, p: number, seed: number) {
    if (p <= 0) return { y: x, mask: null };
    const n = numel(x.shape);
    const y = this.make([...x.shape], 'activations');
    const mask = this.make([...x.shape], 'activations');
    this.run('dropout', [n, seed >>> 0, dropThreshold(p), this.f(1 / (1 - p))], [x, y, mask], grid(Math.ceil(n / 4), 256));
    return { y, mask };
  }
  mul(a: Tensor, b: Tensor): Tensor {
    const n = numel(a.shape);
    const out = this.make([...a.shape], 'activations');
    this.run('mul', [n, 0], [a, b, out], grid(n, 256));
    return out;
  }
  sliceRows(x: Tensor, start: number, count: number): Tensor {
    const C = x.shape[1];
    const out = this.make([count, C], 'activations');
    this.copy(x, start * C * 4, out, 0, count * C * 4);
    return out;
  }
  setRows(dst: Tensor, start: number, src: Tensor): void {
    this.copy(src, 0, dst, start * dst.shape[1] * 4, numel(src.shape) * 4);
  }
  crossEntropy(logits: Tensor, targets: Int32Array, gradScale: number) {
    const [N, V] = logits.shape;
    const t = this.make([N], 'workspace', targets);
    const dlogits = this.make([N, V], 'activations');
    const rows = this.make([N], 'workspace');
    this.run('cross_entropy', [N, V, this.f(gradScale)], [logits, t, dlogits, rows], grid(N, 1));
    const loss = this.make([1], 'workspace');
    this.run('reduce', [N, 0, 0], [rows, loss], [1, 1, 1]);
    this.free(t, rows);
    let count = 0;
    for (const x of targets) if (x >= 0) count++;
    return { loss, count, dlogits };
  }
  sumSquares(x: Tensor): Tensor {
    return this.sumSquaresAll([x]);
  }
  /** one scalar for many tensors: a dispatch each, adding into the same buffer, so a caller reads once */
  sumSquaresAll(xs: Tensor[]): Tensor {
    const out = this.make([1], 'workspace');
    xs.forEach((x, i) => this.run('reduce', [numel(x.shape), 1, i > 0 ? 1 : 0], [x, out], [1, 1, 1]));
    return out;
  }
  adamw(p: Tensor, g: Tensor, m: Tensor, v: Tensor, hp: AdamWParams): void {
    const n = numel(p.shape);
    const k = adamwScalars(hp);
    this.run(
      'adamw',
      [n, this.f(k.stepSize), this.f(hp.beta1), this.f(hp.beta2), this.f(hp.eps), this.f(k.decay), this.f(k.sqrtBc2)],
      [p, g, m, v],
      grid(n, 256),
    );
  }
}
