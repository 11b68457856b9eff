/**
 * The runtime of the CPU's WebAssembly kernels: one module (every op's .wat fragment, assembled at build time; plain
 * or FMA, as wasm-kernels.ts chooses) on one shared WebAssembly.Memory, instantiated on this thread and on worker
 * threads. A call is synchronous: this thread takes its own share of a work-stealing kernel and waits on an Atomics
 * counter for the workers.
 *
 * The memory holds a bump arena in its first 2 GiB: an op copies its operands in (`put`, `alloc`; `at` for an operand
 * that may be resident), runs kernels on byte offsets, and reads results back (`mem`). Above 2 GiB lies a resident
 * heap (`hold`): tensors that live across calls, such as the base weights, the LoRA matrices and the KV cache, so a
 * decode step reads them in place instead of copying them in. Heap offsets pass 2^31: the kernels take them as i32
 * bit patterns and only ever add to them or compare them unsigned. The memory grows and never shrinks (the heap's
 * first block reserves the 2 GiB below it as address space only); the backend counts the arena as workspace.
 */
import { Worker } from 'node:worker_threads';
import { bundleFile } from '../core/bundle';
import { defaultThreads } from '../core/threads';
import { UserError } from '../core/errors';
import { ACTIVE, ARGS, ARG_SLOTS, FAILED, GEN, MODES, STEAL_KERNELS, STEAL_NAMES, StealKernel, callSteal, spin } from './wasm-control';
import { chooseKernels } from './wasm-kernels';

/** byte address of the work-stealing counter; the arena starts after it */
export const COUNTER = 0;
const ARENA = 64;
/** the most bytes the arena may reach: offsets stay positive 32-bit integers */
export const ARENA_LIMIT = 2 ** 31 - 65536;

const PAGE = 65536;
/** the arena's least size (what the memory starts at) */
const MIN_ARENA = 16 * PAGE;
/** where the resident heap starts: above every arena offset */
export const HEAP_BASE = 2 ** 31;
/** bytes past the heap's last block that stay addressable (kernels may read a vector past an operand's end) */
const SLACK = PAGE;
const up16 = (n: number) => Math.ceil(n / 16) * 16;

const bits = new Float32Array(1);
const asInt = new Int32Array(bits.buffer);
/** an f32 as the i32 bit pattern a kernel's integer argument carries (it reinterprets it) */
export function f32Bits(x: number): number {
  bits[0] = x;
  return asInt[0];
}

export class WasmRuntime {
  /** multiply-adds below which one thread is faster than waking the others */
  static PARALLEL_MIN = 1 << 23;
  /**
   * The most bytes the resident heap may span (settable for tests): past it a tensor stays in host memory and is
   * copied into the arena per call. The memory's 4 GiB bound leaves 2 GiB above HEAP_BASE.
   */
  static HEAP_LIMIT = 2 ** 31 - 16 * PAGE;
  /**
   * The most WebAssembly memory one product may take before it is cut into blocks (settable for tests). The memory
   * never shrinks, so this also bounds what the kernels keep.
   */
  static MAX_BYTES = 256 << 20;

  readonly exports: WebAssembly.Exports;
  /** whether this runtime runs the FMA kernels (relaxed SIMD) rather than the plain ones (wasm-kernels.ts) */
  readonly fma: boolean;
  private memory: WebAssembly.Memory;
  /** the heap is [HEAP_BASE, heapTop), its freed blocks in `holes` */
  private heapTop = HEAP_BASE;
  /** the arena's high-water mark: its size is the workspace */
  private arenaPeak = ARENA;
  private blocks = new Map<number, number>();
  private holes: { off: number; bytes: number }[] = [];
  private arenaTop = ARENA;
  /** every SharedArrayBuffer the memory has been seen as (a grow makes a new one): a view on one of them is resident */
  private sabs = new WeakSet<ArrayBufferLike>();
  private ctl: Int32Array;
  /** the work-stealing counter at COUNTER (a view that survives the memory's growth: the memory is shared) */
  private counter: Int32Array;
  private workers: Worker[] = [];
  private f32!: Float32Array;
  private typed = new Map<string, unknown>();

  /**
   * `opts.fma` forces the FMA kernels (true: an error where WebAssembly lacks relaxed SIMD) or the plain ones
   * (false); without it, LORAKIT_SIMD decides, and then FMA wherever it runs. The workers get the same module.
   */
  constructor(
    readonly threads = defaultThreads(),
    opts: { fma?: boolean } = {},
  ) {
    const choice = chooseKernels(opts.fma);
    this.fma = choice.fma;
    const module = new WebAssembly.Module(choice.bytes);
    this.memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    this.exports = new WebAssembly.Instance(module, { env: { memory: this.memory } }).exports;
    const sab = new SharedArrayBuffer((MODES + Math.max(1, threads)) * 4);
    this.ctl = new Int32Array(sab);
    this.counter = new Int32Array(this.memory.buffer, COUNTER, 1);
    const file = threads > 1 ? bundleFile('wasm-worker.js') : '';
    for (let w = 1; w < threads; w++) {
      const workerData = {
        module,
        memory: this.memory,
        ctl: sab,
        index: w,
        names: STEAL_NAMES,
        kernels: STEAL_KERNELS,
        layout: { ARGS, ARG_SLOTS, MODES },
      };
      const worker = new Worker(file, { workerData });
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
    this.sabs.add(this.memory.buffer);
  }

  private ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) this.memory.grow(Math.ceil((bytes - have) / 65536));
    if (this.f32.buffer !== this.memory.buffer || this.f32.length * 4 < bytes) this.view();
  }

  /**
   * Run a work-stealing kernel with `args` on up to `n` threads (this one included) and wait for the workers that
   * joined in (wasm-control.ts has the protocol). With n = 1 no worker is woken.
   */
  dispatch(kernel: StealKernel, n: number, args: number[]): void {
    // every thread reads the kernel's own count of arguments out of ARG_SLOTS slots (each kernel fits them: checked
    // when wasm-control.ts loads): a call with another count would give the threads different arguments
    if (args.length !== STEAL_KERNELS[kernel].args)
      throw new Error(`internal: ${kernel} takes ${STEAL_KERNELS[kernel].args} arguments, the call passed ${args.length}`);
    this.counter[0] = 0;
    const c = this.ctl;
    if (n <= 1 || this.threads === 1) {
      c.set(args, ARGS);
      return callSteal(this.exports, kernel, c.subarray(ARGS, ARGS + ARG_SLOTS), 0);
    }
    const mode = STEAL_NAMES.indexOf(kernel) + 1;
    c.set(args, ARGS);
    for (let w = 1; w < this.threads; w++) c[MODES + w] = w < n ? mode : 0;
    Atomics.add(c, GEN, 1); // open
    Atomics.notify(c, GEN);
    let failed: number;
    try {
      callSteal(this.exports, kernel, c.subarray(ARGS, ARGS + ARG_SLOTS), 0);
    } finally {
      // closed (even if this thread's share threw): a worker that has not joined yet stays out
      Atomics.add(c, GEN, 1);
      // the workers inside finish about when this thread does: spin before sleeping
      spin(c, ACTIVE, 0, true);
      for (;;) {
        const a = Atomics.load(c, ACTIVE);
        if (a === 0) break;
        Atomics.wait(c, ACTIVE, a, 1000);
      }
      failed = Atomics.exchange(c, FAILED, 0);
    }
    // a worker's share that threw was not done: the result is wrong, so the call fails
    if (failed) throw new Error(`internal: a WebAssembly worker thread failed in ${kernel} (its message is on stderr)`);
  }

  // ---- the resident heap: tensors that stay in WebAssembly memory across calls ----

  /**
   * Reserve `bytes` (16-byte aligned) that stay put until `unhold`; returns the byte offset (≥ HEAP_BASE), or −1
   * when the heap would pass HEAP_LIMIT.
   */
  hold(bytes: number): number {
    const n = up16(Math.max(16, bytes));
    let off: number;
    const i = this.holes.findIndex((h) => h.bytes >= n);
    if (i >= 0) {
      const h = this.holes[i];
      off = h.off;
      if (h.bytes === n) this.holes.splice(i, 1);
      else Object.assign(h, { off: h.off + n, bytes: h.bytes - n });
    } else {
      if (this.heapTop + n - HEAP_BASE > WasmRuntime.HEAP_LIMIT) return -1;
      off = this.heapTop;
      this.heapTop += n;
      this.ensure(this.heapTop + SLACK);
    }
    this.blocks.set(off, n);
    return off;
  }

  /** Give back a block from `hold`: later holds reuse it. */
  unhold(off: number): void {
    const n = this.blocks.get(off);
    if (n === undefined) return;
    this.blocks.delete(off);
    const hs = this.holes;
    let i = hs.findIndex((h) => h.off > off);
    if (i < 0) i = hs.length;
    hs.splice(i, 0, { off, bytes: n });
    // merge with the neighbours, then let the heap's top come down over a hole that ends it
    if (i + 1 < hs.length && off + n === hs[i + 1].off) hs.splice(i, 2, { off, bytes: n + hs[i + 1].bytes });
    if (i > 0 && hs[i - 1].off + hs[i - 1].bytes === off) hs.splice(i - 1, 2, { off: hs[i - 1].off, bytes: hs[i - 1].bytes + hs[i].bytes });
    const last = hs[hs.length - 1];
    if (last && last.off + last.bytes === this.heapTop) {
      this.heapTop = last.off;
      hs.pop();
    }
  }

  /** bytes held in the heap */
  heldBytes(): number {
    let b = 0;
    for (const n of this.blocks.values()) b += n;
    return b;
  }

  /** the byte offset of a view on this memory (a resident tensor's data), or −1 when it lies elsewhere */
  offsetOf(v: ArrayBufferView): number {
    return this.sabs.has(v.buffer) ? v.byteOffset : -1;
  }

  /** an operand's byte offset: where it lies when resident, else a copy put in the arena */
  at(data: Float32Array | Uint16Array | Uint8Array): number {
    const off = this.offsetOf(data);
    if (off >= 0) return off;
    return data instanceof Float32Array ? this.put(data) : this.putBytes(data);
  }
  /**
   * As `at`, but the arena room of a copy is taken even when the operand is resident (and read in place): the
   * training kernels' arena then has one size whatever is resident, the size the workspace estimate counts.
   */
  atSized(data: Float32Array | Uint16Array | Uint8Array): number {
    const off = this.offsetOf(data);
    if (off < 0) return data instanceof Float32Array ? this.put(data) : this.putBytes(data);
    this.alloc((data.byteLength + 3) >> 2);
    return off;
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
    if (top > this.arenaPeak) this.arenaPeak = top;
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
    const b = this.memory.buffer;
    this.sabs.add(b);
    return b as unknown as SharedArrayBuffer;
  }
  /** Bytes of WebAssembly memory held (it grows, never shrinks). */
  bytes(): number {
    return this.memory.buffer.byteLength;
  }
  /** Bytes of the arena (its high-water mark in pages, at least 1 MiB): what the backend counts as workspace. */
  arenaBytes(): number {
    return Math.max(MIN_ARENA, Math.ceil(this.arenaPeak / PAGE) * PAGE);
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
