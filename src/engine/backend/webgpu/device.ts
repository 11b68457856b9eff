/**
 * The WebGPU backend's device side: the GPU worker (worker.ts) that owns the Dawn device, and the tensors it holds
 * (buffers by id): upload, weights kept in half precision or 4 bits, split across bindings when larger than one,
 * read and write, free, copies. Ops are posted in order without waiting; `read` blocks until the worker has the
 * bytes. The tracker counts the bytes of the live GPU buffers by tag. webgpu.ts adds the ops.
 */
import { Worker } from 'node:worker_threads';
import { MemTag, MemTracker, Tensor, numel } from '../../core/backend';
import { HostTensor, bf16ToF32, f16ToF32, toF32 } from '../../core/dtype';
import { UserError } from '../../core/errors';
import { bundleFile } from '../../core/bundle';
import { QuantWeight, dequantizeWeight } from '../../core/qweight';
import { codeTable } from '../../core/blockwise';
import type { KernelName } from '../../ops/kernels';
import type { Caps } from '../../ops/wgsl';
import { FLAG_BYTES, GpuInfo, ToGpu, WorkerStart } from './messages';
import { GpuTensor, answerOf, explainDawnWarnings, f32bits } from './handles';
import type { ComputeLimits, FeatureChoice } from './plan';

export interface GpuOptions {
  /** --device: a part of the adapter's name */
  device?: string;
  /** hold matrices larger than this many bytes as row blocks (tests of the splitting; the device's limit otherwise) */
  maxBinding?: number;
  /** optional features to leave off (`{ f16: false, subgroups: false }`: the plain kernels) */
  features?: FeatureChoice;
  /** compute limits to use below the adapter's (tests and comparisons of the tile sizes) */
  limits?: Partial<ComputeLimits>;
}

export class GpuDevice {
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

  /** the most bytes one binding may hold (the device's limit, or less for tests of the splitting) */
  readonly maxBinding: number;
  /** the kernels' variants and tile sizes on this device (plan.ts) */
  readonly caps: Caps;
  private static open = new Set<GpuDevice>();
  /**
   * Release every device still open. Call before the process exits: a worker ended with a live Dawn device can
   * crash inside Dawn on its way out.
   */
  static disposeAll(): void {
    for (const b of [...GpuDevice.open]) b.dispose();
  }

  /** Start the GPU worker and wait for its device; throws a UserError when there is no adapter. */
  constructor(opts: GpuOptions = {}) {
    const sab = new SharedArrayBuffer(1 << 16);
    const start: WorkerStart = { sab, want: opts.device, features: opts.features, limits: opts.limits };
    this.worker = new Worker(bundleFile('webgpu-worker.js'), { workerData: start });
    this.worker.unref();
    const info = answerOf(sab, 60_000, 'starting WebGPU');
    this.info = JSON.parse(new TextDecoder().decode(info)) as GpuInfo;
    explainDawnWarnings(this.info);
    if (!this.info.chosen || !this.info.caps) {
      void this.worker.terminate();
      throw new UserError(this.info.error ?? 'no WebGPU adapter was found (no GPU driver, or no Vulkan/Metal/D3D12 available)');
    }
    this.name = `webgpu (${this.info.chosen.name})`;
    this.caps = this.info.caps;
    this.maxBinding = Math.min(opts.maxBinding ?? Infinity, this.info.limits?.maxStorageBufferBindingSize ?? Infinity);
    GpuDevice.open.add(this);
  }

  protected post(m: ToGpu): void {
    this.worker.postMessage(m);
  }

  protected make(shape: number[], tag: MemTag, data?: ArrayBufferView, bytes = numel(shape) * 4): GpuTensor {
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
  protected run(kernel: KernelName, params: number[], ts: Tensor[], g: [number, number, number]): void {
    const p = new Array(16).fill(0);
    params.forEach((v, i) => (p[i] = v));
    this.post({ op: 'run', kernel, params: p, bufs: ts.map((t) => (t as GpuTensor).id), grid: g });
  }
  protected f(x: number): number {
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

  protected copy(src: Tensor, srcOff: number, dst: Tensor, dstOff: number, bytes: number): void {
    if (bytes > 0) this.post({ op: 'copy', src: (src as GpuTensor).id, srcOff, dst: (dst as GpuTensor).id, dstOff, bytes });
  }
  /** for tests: lose the device, as a driver reset or a GPU hang would */
  loseDeviceForTest(): void {
    this.post({ op: 'lose' });
  }

  /** free everything, destroy the device, end the worker (the Dawn instance goes with it, its device gone first) */
  dispose(): void {
    if (!GpuDevice.open.delete(this)) return; // already released
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
