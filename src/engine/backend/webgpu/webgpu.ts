/**
 * The WebGPU backend (Dawn, through the `webgpu` package): dispatch only. Every op is a WGSL kernel of its op folder
 * (ops/<op>/<op>.wgsl.ts, looked up by a typed KernelName) run by the GPU
 * worker (worker.ts). Ops are posted in order without waiting; `read` blocks until the worker has the bytes. All
 * tensors are f32 on the device, except 4-bit weights (codes + scales, dequantized inside the matmul). The tracker
 * counts the bytes of the live GPU buffers by tag.
 */
import { Worker } from 'node:worker_threads';
import {
  AdamWParams,
  AttnShape,
  Backend,
  MatmulOpts,
  MemTag,
  MemTracker,
  RopeTables,
  Tensor,
  matmulShape,
  numel,
} from '../../core/backend';
import { HostTensor, bf16ToF32, f16ToF32, toF32 } from '../../core/dtype';
import { UserError } from '../../core/errors';
import { bundleFile } from '../../core/bundle';
import { QuantWeight, dequantizeWeight } from '../../core/qweight';
import { codeTable } from '../../core/blockwise';
import type { KernelName } from '../../ops/kernels';
import { adamwScalars } from '../../ops/adamw/reference';
import { dropoutMask } from '../../ops/dropout/reference';
import { FLAG_BYTES, GpuInfo, ToGpu } from './messages';
import { GpuTensor, answerOf, explainDawnWarnings, f32bits, grid } from './handles';

export class WebGpuBackend implements Backend {
  readonly name: string;
  readonly mem = new MemTracker();
  readonly info: GpuInfo;
  private worker: Worker;
  private nextId = 1;
  private live = new Set<GpuTensor>();

  /** The adapters WebGPU finds and the one it would choose, without creating a device (or null: no webgpu module). */
  static probe(device?: string): GpuInfo {
    const sab = new SharedArrayBuffer(1 << 16);
    const w = new Worker(bundleFile('webgpu-worker.js'), { workerData: { sab, want: device, probe: true } });
    w.unref();
    try {
      const info = JSON.parse(new TextDecoder().decode(answerOf(sab, 30_000, 'looking for WebGPU adapters'))) as GpuInfo;
      explainDawnWarnings(info);
      return info;
    } catch (e) {
      return { adapters: [], chosen: null, error: (e as Error).message };
    } finally {
      void w.terminate();
    }
  }

  /** Start the GPU worker and wait for its device; throws a UserError when there is no adapter. */
  /** the most bytes one binding may hold (the device's limit, or less for tests of the splitting) */
  readonly maxBinding: number;
  private static open = new Set<WebGpuBackend>();
  /**
   * Release every device still open. Call before the process exits: a worker ended with a live Dawn device can
   * crash inside Dawn on its way out.
   */
  static disposeAll(): void {
    for (const b of [...WebGpuBackend.open]) b.dispose();
  }

  constructor(opts: { device?: string; maxBinding?: number } = {}) {
    const sab = new SharedArrayBuffer(1 << 16);
    this.worker = new Worker(bundleFile('webgpu-worker.js'), { workerData: { sab, want: opts.device } });
    this.worker.unref();
    const info = answerOf(sab, 60_000, 'starting WebGPU');
    this.info = JSON.parse(new TextDecoder().decode(info)) as GpuInfo;
    explainDawnWarnings(this.info);
    if (!this.info.chosen) {
      void this.worker.terminate();
      throw new UserError(this.info.error ?? 'no WebGPU adapter was found (no GPU driver, or no Vulkan/Metal/D3D12 available)');
    }
    this.name = `webgpu (${this.info.chosen.name})`;
    this.maxBinding = Math.min(opts.maxBinding ?? Infinity, this.info.limits?.maxStorageBufferBindingSize ?? Infinity);
    WebGpuBackend.open.add(this);
  }

  private post(m: ToGpu): void {
    this.worker.postMessage(m);
  }

  private make(shape: number[], tag: MemTag, data?: ArrayBufferView, bytes = numel(shape) * 4): GpuTensor {
    const id = this.nextId++;
    const real = Math.max(4, Math.ceil(bytes / 4) * 4);
    if (real > this.maxBinding)
      throw new UserError(
        `a ${tag} tensor [${shape}] needs ${(real / 2 ** 20).toFixed(0)} MiB in one binding, more than this GPU allows (${(this.maxBinding / 2 ** 20).toFixed(0)} MiB); only weight matrices are split across bindings`,
      );
    this.post({ op: 'alloc', id, bytes: real, data });
    const t = new GpuTensor([...shape], tag, id, real);
    this.mem.alloc(tag, real);
    this.live.add(t);
    return t;
  }
  private run(kernel: KernelName, params: number[], ts: Tensor[], g: [number, number, number]): void {
    const p = new Array(16).fill(0);
    params.forEach((v, i) => (p[i] = v));
    this.post({ op: 'run', kernel, params: p, bufs: ts.map((t) => (t as GpuTensor).id), grid: g });
  }
  private f(x: number): number {
    return f32bits(x);
  }

  upload(data: Float32Array, shape: number[], tag: MemTag): Tensor {
    if (data.length !== numel(shape)) throw new Error(`upload: ${data.length} values for shape [${shape}]`);
    return this.make(shape, tag, data);
  }
  /** bf16 and f16 matrices stay half precision on the device (half the memory), widened as the kernels load them */
  uploadWeight(t: HostTensor, shape: number[]): Tensor {
    if (t.dtype === 'BF16' || t.dtype === 'F16') return this.weight(t.data as Uint16Array, shape, t.dtype === 'BF16' ? 'bf16' : 'f16');
    return this.weight(toF32(t.dtype, t.data), shape);
  }
  /** a weight matrix, in row blocks when it is larger than one binding (embedding tables and LM heads of real models) */
  private weight(data: Float32Array | Uint16Array, shape: number[], half?: 'bf16' | 'f16'): Tensor {
    const one = (d: Float32Array | Uint16Array, sh: number[]) => {
      const t = this.make(sh, 'weights', d, d.byteLength);
      t.half = half;
      return t;
    };
    if (data.byteLength <= this.maxBinding || shape.length !== 2) return one(data, shape);
    const [R, C] = shape;
    const rows = Math.max(1, Math.floor(this.maxBinding / (C * data.BYTES_PER_ELEMENT)) & ~1); // even: whole u32 pairs
    const whole = new GpuTensor([...shape], 'weights', 0, 0);
    whole.parts = [];
    whole.half = half;
    for (let r0 = 0; r0 < R; r0 += rows) {
      const n = Math.min(rows, R - r0);
      const part = one(data.subarray(r0 * C, (r0 + n) * C), [n, C]);
      this.live.delete(part);
      whole.parts.push({ t: part, r0 });
    }
    this.live.add(whole);
    return whole;
  }
  /** 4-bit codes, scales and table as the kernel reads them; double-quantized scales stay one byte a block */
  uploadQuantized(q: QuantWeight): Tensor {
    const pad4 = (b: Uint8Array) => {
      if (b.length % 4 === 0) return b;
      const p = new Uint8Array(Math.ceil(b.length / 4) * 4);
      p.set(b);
      return p;
    };
    const packed = pad4(q.packed);
    const codes = this.make([packed.length / 4], 'weights', packed, packed.length);
    let scales: GpuTensor, nested: { absmax: GpuTensor; map: GpuTensor } | undefined;
    if (q.nested) {
      const c = pad4(q.nested.codes);
      scales = this.make([c.length / 4], 'weights', c, c.length);
      nested = { absmax: this.make([q.nested.absmax.length], 'weights', q.nested.absmax), map: this.make([256], 'weights', q.nested.map) };
    } else scales = this.make([q.absmax!.length], 'weights', q.absmax!);
    const table = this.make([16], 'weights', codeTable(q.type));
    const parts = [codes, scales, table, ...(nested ? [nested.absmax, nested.map] : [])];
    for (const t of parts) this.live.delete(t);
    const t = new GpuTensor([...q.shape], 'weights', codes.id, codes.bytes, { q, scales, table, nested });
    this.live.add(t); // one live tensor owning its buffers
    return t;
  }
  toF32(t: Tensor): Tensor {
    const g = t as GpuTensor;
    if (!g.quant && !g.half) return t;
    const out = this.make([...t.shape], t.tag, this.read(t));
    this.free(t);
    return out;
  }
  zeros(shape: number[], tag: MemTag): Tensor {
    return this.make(shape, tag); // new buffers are zero-filled
  }
  read(t: Tensor): Float32Array {
    const g = t as GpuTensor;
    if (g.quant) return dequantizeWeight(g.quant.q);
    if (g.parts) {
      const out = new Float32Array(numel(t.shape));
      for (const p of g.parts) out.set(this.read(p.t), p.r0 * t.shape[1]);
      return out;
    }
    const bytes = numel(t.shape) * (g.half ? 2 : 4);
    const sab = new SharedArrayBuffer(FLAG_BYTES + Math.max(bytes, 1 << 12));
    this.post({ op: 'read', id: g.id, bytes, sab });
    answerOf(sab, 600_000, 'reading a tensor back');
    const raw = sab.slice(FLAG_BYTES, FLAG_BYTES + bytes);
    if (!g.half) return new Float32Array(raw);
    return g.half === 'bf16' ? bf16ToF32(new Uint16Array(raw)) : f16ToF32(new Uint16Array(raw));
  }
  write(t: Tensor, data: Float32Array): void {
    const g = t as GpuTensor;
    if (g.half || g.quant) throw new Error('internal: writing into a half-precision or 4-bit weight (use toF32 first)');
    if (g.parts) for (const p of g.parts) this.write(p.t, data.subarray(p.r0 * t.shape[1], (p.r0 + p.t.shape[0]) * t.shape[1]));
    else this.post({ op: 'write', id: g.id, data: data.slice() });
  }
  free(...ts: (Tensor | undefined | null)[]): void {
    for (const t of ts) {
      const g = t as GpuTensor;
      if (!g || !this.live.has(g)) continue;
      this.live.delete(g);
      const q = g.quant;
      for (const b of q
        ? [g, q.scales, q.table, ...(q.nested ? [q.nested.absmax, q.nested.map] : [])]
        : g.parts
          ? g.parts.map((p) => p.t)
          : [g]) {
        this.mem.free(b.tag, b.bytes);
        this.post({ op: 'free', id: b.id });
      }
    }
  }

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
      const kernel = g.half ? 'matmul_half' : 'matmul';
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
        g.half ? 'embedding_half' : 'embedding',
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
  /** saved: each query row's log-sum-exp (B, H, Tq) */
  attention(q: Tensor, k: Tensor, v: Tensor, p: AttnShape) {
    const out = this.make([p.B * p.Tq, p.H * p.D], 'activations');
    const saved = this.make([p.B, p.H, p.Tq], 'activations');
    // head dims up to 128: the tiled kernel (K/V tiles in workgroup memory); larger: one invocation per row
    if (p.D <= 128) this.run('attention_tiled', this.attnParams(p), [q, k, v, out, saved], grid(p.B * p.H * Math.ceil(p.Tq / 32), 1));
    else this.run('attention', this.attnParams(p), [q, k, v, out, saved], grid(p.B * p.H * p.Tq, 64));
    return { out, saved };
  }
  attentionBackward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, saved: Tensor, p: AttnShape) {
    const dq = this.make([...q.shape], 'activations');
    const dk = this.make([...k.shape], 'activations');
    const dv = this.make([...v.shape], 'activations');
    const dots = this.make([p.B, p.H, p.Tq], 'workspace');
    const P = this.attnParams(p);
    if (p.D <= 128) this.run('attention_bwd_q_tiled', P, [q, k, v, dout, saved, dq, dots], grid(p.B * p.H * Math.ceil(p.Tq / 32), 1));
    else this.run('attention_bwd_q', P, [q, k, v, dout, saved, dq, dots], grid(p.B * p.H * p.Tq, 64));
    this.run('attention_bwd_kv', P, [q, k, v, dout, saved, dots, dk, dv], grid(p.B * p.KV * p.Tk, 64));
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
  /** the mask comes from the same generator as the CPU backend's (identical masks for a seed), made on the host */
  dropout(x: Tensor, p: number, seed: number) {
    if (p <= 0) return { y: x, mask: null };
    const mask = this.make([...x.shape], 'activations', dropoutMask(numel(x.shape), p, seed));
    return { y: this.mul(x, mask), mask };
  }
  mul(a: Tensor, b: Tensor): Tensor {
    const n = numel(a.shape);
    const out = this.make([...a.shape], 'activations');
    this.run('mul', [n, 0], [a, b, out], grid(n, 256));
    return out;
  }
  private copy(src: Tensor, srcOff: number, dst: Tensor, dstOff: number, bytes: number): void {
    if (bytes > 0) this.post({ op: 'copy', src: (src as GpuTensor).id, srcOff, dst: (dst as GpuTensor).id, dstOff, bytes });
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
  concatRows(a: Tensor, b: Tensor): Tensor {
    const out = this.make([a.shape[0] + b.shape[0], a.shape[1]], a.tag);
    this.copy(a, 0, out, 0, numel(a.shape) * 4);
    this.copy(b, 0, out, numel(a.shape) * 4, numel(b.shape) * 4);
    return out;
  }
  crossEntropy(logits: Tensor, targets: Int32Array, gradScale: number) {
    const [N, V] = logits.shape;
    const t = this.make([N], 'workspace', targets);
    const dlogits = this.make([N, V], 'activations');
    const rows = this.make([N], 'workspace');
    this.run('cross_entropy', [N, V, this.f(gradScale)], [logits, t, dlogits, rows], grid(N, 1));
    const loss = this.make([1], 'workspace');
    this.run('reduce', [N, 0], [rows, loss], [1, 1, 1]);
    this.free(t, rows);
    let count = 0;
    for (const x of targets) if (x >= 0) count++;
    return { loss, count, dlogits };
  }
  sumSquares(x: Tensor): Tensor {
    const out = this.make([1], 'workspace');
    this.run('reduce', [numel(x.shape), 1], [x, out], [1, 1, 1]);
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

  /** for tests: lose the device, as a driver reset or a GPU hang would */
  loseDeviceForTest(): void {
    this.post({ op: 'lose' });
  }

  /** free everything, destroy the device, end the worker (the Dawn instance goes with it, its device gone first) */
  dispose(): void {
    if (!WebGpuBackend.open.delete(this)) return; // already released
    for (const t of [...this.live]) this.free(t);
    const sab = new SharedArrayBuffer(1 << 12);
    this.post({ op: 'destroy', sab });
    try {
      answerOf(sab, 30_000, 'releasing the GPU');
    } catch {
      /* a lost device has nothing left to release */
    } finally {
      void this.worker.terminate();
    }
  }
}
