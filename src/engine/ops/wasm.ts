/**
 * The runtime of the CPU's WebAssembly kernels: one module (every op's .wat fragment, assembled at build time) on one
 * shared WebAssembly.Memory, instantiated on this thread and on worker threads. A call is synchronous: this thread
 * takes its own share of a work-stealing kernel and waits on an Atomics counter for the workers.
 *
 * The memory holds a bump arena: an op copies its operands in (`put`, `alloc`), runs kernels on byte offsets, and
 * reads results back (`mem`). It grows and never shrinks; the backend counts it as workspace.
 */
import { Worker } from 'node:worker_threads';
import kernels from 'lorakit:kernels';
import { bundleFile } from '../core/bundle';
import { defaultThreads } from '../core/threads';
import { UserError } from '../core/errors';
import { ARGS, DONE, GEN, MODES, STEAL_NAMES, StealKernel, callSteal } from './wasm-control';

/** byte address of the work-stealing counter; the arena starts after it */
export const COUNTER = 0;
const ARENA = 64;
/** the most bytes the arena may reach: offsets stay positive 32-bit integers */
export const ARENA_LIMIT = 2 ** 31 - 65536;

export class WasmRuntime {
  /** multiply-adds below which one thread is faster than waking the others */
  static PARALLEL_MIN = 1 << 23;
  /**
   * The most WebAssembly memory one product may take before it is cut into blocks (settable for tests). The memory
   * never shrinks, so this also bounds what the kernels keep.
   */
  static MAX_BYTES = 256 << 20;

  readonly exports: WebAssembly.Exports;
  private memory: WebAssembly.Memory;
  private arenaTop = ARENA;
  private ctl: Int32Array;
  private workers: Worker[] = [];
  private f32!: Float32Array;
  private typed = new Map<string, unknown>();

  constructor(readonly threads = defaultThreads()) {
    const module = new WebAssembly.Module(kernels);
    this.memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    this.exports = new WebAssembly.Instance(module, { env: { memory: this.memory } }).exports;
    const sab = new SharedArrayBuffer((MODES + Math.max(1, threads)) * 4);
    this.ctl = new Int32Array(sab);
    const file = threads > 1 ? bundleFile('wasm-worker.js') : '';
    for (let w = 1; w < threads; w++) {
      const worker = new Worker(file, { workerData: { module, memory: this.memory, ctl: sab, index: w } });
      worker.unref();
      this.workers.push(worker);
    }
    this.view();
  }

  /**
   * An op's kernels, typed by the op: `rt.fns<SwigluFns>(['swiglu', 'swiglu_backward'])`. Checks once that the
   * module exports each, so a misspelt name fails on first use with the name, not deep inside a call.
   */
  fns<T>(names: (keyof T & string)[]): T {
    const key = names.join(',');
    let t = this.typed.get(key) as T | undefined;
    if (!t) {
      for (const n of names) if (typeof this.exports[n] !== 'function') throw new Error(`internal: the WebAssembly kernels have no "${n}"`);
      t = Object.fromEntries(names.map((n) => [n, this.exports[n]])) as T;
      this.typed.set(key, t);
    }
    return t;
  }

  private view(): void {
    this.f32 = new Float32Array(this.memory.buffer);
  }

  private ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) this.memory.grow(Math.ceil((bytes - have) / 65536));
    if (this.f32.buffer !== this.memory.buffer || this.f32.length * 4 < bytes) this.view();
  }

  /** Start `n` threads (this one included) on a work-stealing kernel with `args`, and wait for all of them. */
  dispatch(kernel: StealKernel, n: number, args: number[]): void {
    Atomics.store(new Int32Array(this.memory.buffer, COUNTER, 1), 0, 0);
    const c = this.ctl;
    const mode = STEAL_NAMES.indexOf(kernel) + 1;
    c.set(args, ARGS);
    for (let w = 1; w < this.threads; w++) c[MODES + w] = w < n ? mode : 0;
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    callSteal(this.exports, kernel, c.subarray(ARGS), 0);
    const want = this.threads - 1;
    for (;;) {
      const d = Atomics.load(c, DONE);
      if (d >= want) break;
      Atomics.wait(c, DONE, d, 1000);
    }
  }

  // ---- the arena: operands that stay in WebAssembly memory across several kernels ----

  /** Start a new arena (everything allocated before is forgotten). */
  arenaReset(): void {
    this.arenaTop = ARENA;
  }
  /**
   * Reserve `floats` f32s (16-byte aligned); returns the byte offset. Call mem() again after allocating.
   * Offsets are plain numbers, not 32-bit bit patterns: the host side (and the kernels' signed loop bounds) needs them
   * below 2 GiB, so an arena past ARENA_LIMIT is refused with a clear error instead of wrapping to a negative offset
   * (which was "RuntimeError: memory access out of bounds" on a 50 KB eval).
   */
  alloc(floats: number): number {
    const off = this.arenaTop;
    const top = off + Math.ceil((floats * 4) / 16) * 16 + 32; // 32 bytes of slack: kernels may read a vector past the end
    if (!(top <= ARENA_LIMIT))
      throw new UserError(
        `one operation needs ${(top / 2 ** 30).toFixed(1)} GiB of WebAssembly memory, more than the ${ARENA_LIMIT / 2 ** 30} GiB it can address: use shorter sequences (--seq-len) or a smaller --batch`,
      );
    this.arenaTop = top;
    this.ensure(this.arenaTop);
    return off;
  }
  /** The arena's current top, to release back to later (everything allocated after it is dropped). */
  mark(): number {
    return this.arenaTop;
  }
  release(mark: number): void {
    this.arenaTop = mark;
  }
  /** Copy host data into the arena; returns the byte offset. */
  put(data: Float32Array): number {
    const off = this.alloc(data.length);
    this.f32.set(data, off >> 2);
    return off;
  }
  /** Copy bytes (codes, half floats) into the arena; returns the byte offset. */
  putBytes(data: Uint8Array | Uint16Array | Int32Array): number {
    const off = this.alloc((data.byteLength + 3) >> 2);
    new Uint8Array(this.memory.buffer, off, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return off;
  }
  /** The memory as f32 (a fresh view after any growth). */
  mem(): Float32Array {
    if (this.f32.buffer !== this.memory.buffer) this.view();
    return this.f32;
  }
  /** the memory itself, for typed views other than f32 */
  buffer(): SharedArrayBuffer {
    return this.memory.buffer as unknown as SharedArrayBuffer;
  }
  /** Bytes of WebAssembly memory held (it grows, never shrinks). */
  bytes(): number {
    return this.memory.buffer.byteLength;
  }

  dispose(): void {
    for (const w of this.workers) void w.terminate();
    this.workers = [];
  }
}

let shared: WasmRuntime | undefined;
/** one process-wide runtime (its workers live as long as the process) */
export function sharedRuntime(): WasmRuntime {
  return (shared ??= new WasmRuntime());
}

export { defaultThreads };
