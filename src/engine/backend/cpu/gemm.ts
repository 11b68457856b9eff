/**
 * General matrix multiply on the CPU: C = alpha·op(A)·op(B) + beta·C, in WebAssembly SIMD (gemm.wat) on the
 * main thread plus worker threads that share one WebAssembly.Memory. The call is synchronous: the main thread
 * takes its own share of the panels and waits on an Atomics counter for the workers.
 *
 * `matmulRef` is the plain TypeScript twin, the spec the kernel is tested against.
 */
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import { bf16ToF32, f16ToF32 } from '../../formats/dtype';

/** 0: B is f32; 1: bf16 bits; 2: f16 bits */
const halfKind = (g: GemmArgs) => (g.b instanceof Uint16Array ? (g.bHalf === 'f16' ? 2 : 1) : 0);
import gemmWasm from '../../../../build/gemm.wasm';
import elementwiseWasm from '../../../../build/elementwise.wasm';

export interface GemmArgs {
  M: number;
  N: number;
  K: number;
  a: Float32Array; // op(A) is (M, K): A is (M, K), or (K, M) when transA
  b: Float32Array | Uint16Array; // op(B) is (K, N): B is (K, N), or (N, K) when transB; half floats as Uint16Array
  /** what a Uint16Array B holds: bf16 (the default) or f16 bits */
  bHalf?: 'bf16' | 'f16';
  transA?: boolean;
  transB?: boolean;
  c: Float32Array; // (M, N)
  alpha?: number;
  beta?: number; // 0 overwrites C
}

/** A 4-bit weight matrix as the kernel reads it: packed codes, f32 block scales, the 16-value code table. */
export interface QMatrix {
  packed: Uint8Array;
  scales: Float32Array;
  table: Float32Array;
  blocksize: number;
  rows: number;
  cols: number;
}

export interface QGemmArgs {
  M: number;
  x: Float32Array; // (M, K) row-major
  w: QMatrix;
  /** true: C = x·Wᵀ (K = cols, N = rows); false: C = x·W (K = rows, N = cols) */
  trans: boolean;
  c: Float32Array; // (M, N)
  beta?: 0 | 1;
}

/** The reference: three loops, obviously correct. */
export function matmulRef(g: GemmArgs): void {
  const { M, N, K, a, c } = g;
  const b = g.b instanceof Uint16Array ? (g.bHalf === 'f16' ? f16ToF32(g.b) : bf16ToF32(g.b)) : g.b;
  const alpha = g.alpha ?? 1;
  const beta = g.beta ?? 0;
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = g.transA ? a[k * M + i] : a[i * K + k];
        const bv = g.transB ? b[j * K + k] : b[k * N + j];
        s += av * bv;
      }
      c[i * N + j] = alpha * s + (beta === 0 ? 0 : beta * c[i * N + j]);
    }
}

// Control block (Int32 slots): [0] generation, [1] done count, [4..17) the call's arguments, then one mode slot
// per worker (0 idle, 1 gemm_steal, 2 jobs_steal, 3 gemv_steal, 4 qgemm_steal, 5 qgemv_steal).
const GEN = 0;
const DONE = 1;
const ARGS = 4;
const MODES = ARGS + 13;
/** products with at most this many rows of x·Wᵀ (decoding) take the matrix-vector path */
const GEMV_MAX_ROWS = 4;
/** byte address in WebAssembly memory of the work-stealing counter; the arena starts after it */
const COUNTER = 0;
const ARENA = 64;

const WORKER_SRC = `
const { workerData } = require('node:worker_threads');
const { module, memory, ctl, index } = workerData;
const inst = new WebAssembly.Instance(module, { env: { memory } });
const { gemm_steal, jobs_steal, gemv_steal, qgemm_steal, qgemv_steal } = inst.exports;
const c = new Int32Array(ctl);
let seen = 0;
for (;;) {
  Atomics.wait(c, 0, seen);
  seen = Atomics.load(c, 0);
  const o = ${MODES} + index;
  const a = c.subarray(${ARGS}, ${ARGS} + 13);
  if (c[o] === 1) gemm_steal(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12]);
  else if (c[o] === 2) jobs_steal(a[0], a[1], a[2]);
  else if (c[o] === 3) gemv_steal(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
  else if (c[o] === 4) qgemm_steal(a[0], index);
  else if (c[o] === 5) qgemv_steal(a[0], index);
  Atomics.add(c, ${DONE}, 1);
  Atomics.notify(c, ${DONE});
}
`;

/** elementwise.wat's exports: pointers are byte offsets into the shared memory */
export interface Elementwise {
  softmax_causal(p: number, Tq: number, Tk: number, ld: number, window: number, scale: number, stats: number): void;
  softmax_recompute(p: number, Tq: number, Tk: number, ld: number, window: number, scale: number, lse: number): void;
  softmax_backward(dp: number, ldd: number, pp: number, ldp: number, Tq: number, Tk: number, scale: number): void;
  cross_entropy(x: number, N: number, V: number, t: number, g: number, stats: number): void;
  swiglu(g: number, u: number, h: number, n: number): void;
  swiglu_backward(dh: number, g: number, u: number, n: number): void;
}

type GemmFn = (pa: number, pb: number, pc: number, K: number, Np: number, i0: number, i1: number, j0: number, j1: number, lda: number, M: number, acc: number) => void;

export class WasmGemm {
  private memory: WebAssembly.Memory;
  private gemmFn: GemmFn;
  private packBt: (src: number, K: number, N: number, dst: number, lds: number) => void;
  private x: Record<string, Function>;
  private arenaTop = ARENA;
  /** the elementwise kernels (elementwise.wat), on the same memory; main thread only */
  ew: Elementwise;
  private ctl: Int32Array;
  private workers: Worker[] = [];
  private f32!: Float32Array;
  /** multiply-adds below which one thread is faster than waking the others */
  static PARALLEL_MIN = 1 << 23;
  /**
   * The most WebAssembly memory one product may take before it is cut into blocks (settable for tests). The memory
   * never shrinks, so this also bounds what the kernels keep.
   */
  static MAX_BYTES = 256 << 20;

  constructor(readonly threads = defaultThreads()) {
    const module = new WebAssembly.Module(gemmWasm);
    this.memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    const inst = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    this.gemmFn = inst.exports.gemm as GemmFn;
    this.packBt = inst.exports.pack_bt as (src: number, K: number, N: number, dst: number, lds: number) => void;
    this.x = inst.exports as unknown as Record<string, Function>;
    const ew = new WebAssembly.Instance(new WebAssembly.Module(elementwiseWasm), { env: { memory: this.memory } });
    this.ew = ew.exports as unknown as Elementwise;
    const sab = new SharedArrayBuffer((MODES + Math.max(1, threads)) * 4);
    this.ctl = new Int32Array(sab);
    for (let w = 1; w < threads; w++) {
      const worker = new Worker(WORKER_SRC, { eval: true, workerData: { module, memory: this.memory, ctl: sab, index: w } });
      worker.unref();
      this.workers.push(worker);
    }
    this.view();
  }

  private view(): void {
    this.f32 = new Float32Array(this.memory.buffer);
  }

  private ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) this.memory.grow(Math.ceil((bytes - have) / 65536));
    if (this.f32.buffer !== this.memory.buffer || this.f32.length * 4 < bytes) this.view();
  }

  /** floats of WebAssembly memory one call holds: A (+ its packed copy), B raw + packed, C padded */
  static floats(M: number, N: number, K: number, transA: boolean, bf16B = false): number {
    const Mp = (M + 3) & ~3, Np = (N + 7) & ~7;
    return (transA ? Mp * K + M * K : M * K) + 2 * Np * K + Mp * Np + (bf16B ? (N * K + 1) >> 1 : 0);
  }

  gemm(g: GemmArgs): void {
    const { M, N, K } = g;
    const beta = g.beta ?? 0;
    if (M === 0 || N === 0) return;
    if (K === 0) {
      for (let i = 0; i < M * N; i++) g.c[i] = beta === 0 ? 0 : beta * g.c[i];
      return;
    }
    if (g.transB && !g.transA && M <= GEMV_MAX_ROWS) this.gemv(g);
    else if (WasmGemm.floats(M, N, K, !!g.transA, halfKind(g) > 0) * 4 > WasmGemm.MAX_BYTES) this.gemmBlocked(g);
    else this.gemmWhole(g);
  }

  /**
   * x·Wᵀ for a few rows (decoding): no packing, W read once straight from a copy of its rows, in blocks of rows
   * that fit MAX_BYTES, threads taking rows from a counter.
   */
  private gemv(g: GemmArgs): void {
    const { M, N, K } = g;
    const alpha = g.alpha ?? 1;
    const beta = g.beta ?? 0;
    const kind = halfKind(g);
    const bf16 = kind > 0; // any half type: two bytes a value
    const perRow = K * (bf16 ? 2 : 4) + M * 4;
    const rows = Math.max(1, Math.min(N, Math.floor((WasmGemm.MAX_BYTES - M * K * 4) / perRow)));
    for (let n0 = 0; n0 < N; n0 += rows) {
      const n = Math.min(rows, N - n0);
      this.arenaReset();
      const xo = this.put(g.a.length === M * K ? g.a : g.a.subarray(0, M * K));
      const wo = this.alloc(bf16 ? (n * K + 1) >> 1 : n * K);
      const yo = this.alloc(M * n);
      const w = g.b.subarray(n0 * K, (n0 + n) * K);
      if (w instanceof Uint16Array) new Uint16Array(this.memory.buffer, wo, n * K).set(w);
      else this.f32.set(w, wo >> 2);
      const threads = n * K < WasmGemm.PARALLEL_MIN / 4 ? 1 : this.threads;
      const chunk = Math.max(1, Math.ceil(n / (8 * threads)));
      this.dispatch(3, threads, [xo, M, wo, kind, K, n, yo, COUNTER, chunk]);
      const f = this.mem();
      for (let m = 0; m < M; m++)
        for (let j = 0; j < n; j++) {
          const i = m * N + n0 + j;
          g.c[i] = alpha * f[(yo >> 2) + m * n + j] + (beta === 0 ? 0 : beta * g.c[i]);
        }
    }
  }

  /**
   * A product too large for the WebAssembly memory (a large vocabulary's LM head, say) runs as blocks of
   * columns of C and of K, each block's operands copied out of A and B, its partial products added up.
   */
  /** the blocks [columns, K] a product is cut into so that each fits MAX_BYTES ([N, K]: not cut) */
  static blocks(M: number, N: number, K: number, transA: boolean, bf16B = false): [number, number] {
    let nb = (N + 7) & ~7, kb = K;
    while (WasmGemm.floats(M, nb, kb, transA, bf16B) * 4 > WasmGemm.MAX_BYTES && (nb > 8 || kb > 4)) {
      if (nb > 8 && (nb >= kb || kb <= 4)) nb = Math.max(8, ((nb >> 1) + 7) & ~7);
      else kb = Math.max(4, kb >> 1);
    }
    return [Math.min(nb, N), kb];
  }

  /** floats of WebAssembly memory a product takes, cut into blocks or not */
  static arenaFloats(M: number, N: number, K: number, transA: boolean, bf16B = false): number {
    const [nb, kb] = WasmGemm.blocks(M, N, K, transA, bf16B);
    return WasmGemm.floats(M, nb, kb, transA, bf16B);
  }

  private gemmBlocked(g: GemmArgs): void {
    const { M, N, K } = g;
    const tA = !!g.transA, tB = !!g.transB;
    const [nb, kb] = WasmGemm.blocks(M, N, K, tA, halfKind(g) > 0);
    // rows [r0, r0+rows) of a row-major matrix with `cols` columns, columns [c0, c0+w): a view when whole rows
    const rowsOf = <T extends Float32Array | Uint16Array>(x: T, cols: number, r0: number, rows: number, c0: number, w: number): T => {
      if (w === cols) return x.subarray(r0 * cols, (r0 + rows) * cols) as T;
      const out = (x instanceof Float32Array ? new Float32Array(rows * w) : new Uint16Array(rows * w)) as T;
      for (let r = 0; r < rows; r++) out.set(x.subarray((r0 + r) * cols + c0, (r0 + r) * cols + c0 + w), r * w);
      return out;
    };
    for (let n0 = 0; n0 < N; n0 += nb) {
      const n = Math.min(nb, N - n0);
      const whole = n === N;
      const c = whole ? g.c : new Float32Array(M * n);
      if (!whole && (g.beta ?? 0) !== 0) for (let i = 0; i < M; i++) c.set(g.c.subarray(i * N + n0, i * N + n0 + n), i * n);
      for (let k0 = 0; k0 < K; k0 += kb) {
        const k = Math.min(kb, K - k0);
        const a = tA ? rowsOf(g.a, M, k0, k, 0, M) : rowsOf(g.a, K, 0, M, k0, k); // (k, M) or (M, k)
        const b = tB ? rowsOf(g.b, K, n0, n, k0, k) : rowsOf(g.b, N, k0, k, n0, n); // (n, k) or (k, n)
        this.gemmWhole({ M, N: n, K: k, a, b, c, transA: tA, transB: tB, bHalf: g.bHalf, alpha: g.alpha, beta: k0 === 0 ? g.beta ?? 0 : 1 });
      }
      if (!whole) for (let i = 0; i < M; i++) g.c.set(c.subarray(i * n, i * n + n), i * N + n0);
    }
  }

  private gemmWhole(g: GemmArgs): void {
    const { M, N, K } = g;
    const alpha = g.alpha ?? 1;
    const beta = g.beta ?? 0;
    const Mp = (M + 3) & ~3;
    const Np = (N + 7) & ~7;
    // A is copied as is and read in place by the kernel, or (transposed) copied and packed in WebAssembly;
    // B is copied and packed in WebAssembly. Layout: [A or Apack][Bpack][C][raw A][raw B]
    this.arenaReset();
    const lda = g.transA ? 0 : K * 4;
    const pa = this.alloc(g.transA ? Mp * K : M * K);
    const pb = this.alloc(Np * K);
    const pc = this.alloc(Mp * Np);
    const rawA = g.transA ? this.alloc(M * K) : 0;
    const rawB = this.alloc(N * K);
    const half = halfKind(g);
    const bf16 = half ? this.alloc((N * K + 1) >> 1) : 0; // half-float bits, widened into rawB
    const f = this.f32;
    const a = g.a.length === M * K ? g.a : g.a.subarray(0, M * K);
    const b = g.b.length === N * K ? g.b : g.b.subarray(0, N * K);
    if (b instanceof Uint16Array) {
      new Uint16Array(this.memory.buffer, bf16, N * K).set(b);
      if (half === 1) this.x.widen_bf16(bf16, N * K, rawB);
      else this.x.widen_f16(bf16, N * K, rawB);
    } else f.set(b, rawB >> 2);
    if (g.transA) {
      f.set(a, rawA >> 2);
      this.x.pack_at(rawA, M * 4, M, K, pa); // A is (K, M)
    } else f.set(a, pa >> 2);
    if (g.transB) this.packBt(rawB, K, N, pb, K * 4); // B is (N, K)
    else this.x.pack_b(rawB, K, N, N * 4, pb); // B is (K, N)
    // beta = 1: the old C goes into the kernel's C and the kernel adds to it; alpha scales the packed B
    const acc = beta === 1 ? 1 : 0;
    const c = g.c;
    if (acc) {
      for (let i = 0; i < M; i++) f.set(c.subarray(i * N, i * N + N), (pc >> 2) + i * Np);
      if (alpha !== 1) this.x.scale(pb, Np * K, alpha);
    }
    this.run(pa, pb, pc, K, Np, Mp / 4, Np / 8, M * N * K, lda, M, acc);
    const base = pc >> 2;
    for (let i = 0; i < M; i++) {
      const src = base + i * Np;
      const dst = i * N;
      if (acc || alpha === 1) {
        if (beta === 0 || acc) c.set(f.subarray(src, src + N), dst);
        else for (let j = 0; j < N; j++) c[dst + j] = f[src + j] + beta * c[dst + j];
      } else if (beta === 0) for (let j = 0; j < N; j++) c[dst + j] = alpha * f[src + j];
      else for (let j = 0; j < N; j++) c[dst + j] = alpha * f[src + j] + beta * c[dst + j];
    }
  }

  private run(pa: number, pb: number, pc: number, K: number, Np: number, mPanels: number, nPanels: number, work: number, lda: number, M: number, acc: number): void {
    const n = work < WasmGemm.PARALLEL_MIN ? 1 : Math.min(this.threads, Math.max(mPanels, nPanels));
    if (n <= 1) return this.gemmFn(pa, pb, pc, K, Np, 0, mPanels, 0, nPanels, lda, M, acc);
    // the larger panel dimension is cut into about four chunks per thread, taken from a shared counter
    const byRows = mPanels >= nPanels;
    const chunk = Math.max(1, Math.ceil((byRows ? mPanels : nPanels) / (4 * n)));
    this.dispatch(1, n, [pa, pb, pc, K, Np, mPanels, nPanels, lda, M, acc, COUNTER, chunk, byRows ? 1 : 0]);
  }

  /** Start `n` threads (this one included) on kernel `mode` with `args`, and wait for all of them. */
  private dispatch(mode: 1 | 2 | 3 | 4 | 5, n: number, args: number[]): void {
    Atomics.store(new Int32Array(this.memory.buffer, COUNTER, 1), 0, 0);
    const c = this.ctl;
    c.set(args, ARGS);
    for (let w = 1; w < this.threads; w++) c[MODES + w] = w < n ? mode : 0;
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    const kernel = ['', 'gemm_steal', 'jobs_steal', 'gemv_steal', 'qgemm_steal', 'qgemv_steal'][mode];
    (this.x[kernel] as (...a: number[]) => void)(...(mode >= 4 ? [args[0], 0] : args));
    const want = this.threads - 1;
    for (;;) {
      const d = Atomics.load(c, DONE);
      if (d >= want) break;
      Atomics.wait(c, DONE, d, 1000);
    }
  }

  /**
   * C (M, N) = x (M, K) · op(W) (+ C when beta = 1) for a 4-bit W (R × C): op(W) = Wᵀ (forward, K = C, N = R) or W
   * (backward, K = R, N = C). Each thread dequantizes a few 8-column panels of op(W) into its own scratch and
   * multiplies all rows of x by them, so the f32 weights exist only a few panels at a time.
   */
  qgemm(g: QGemmArgs): void {
    const { M, w, trans } = g;
    const beta = g.beta ?? 0;
    if (trans && M <= GEMV_MAX_ROWS && M > 0) return this.qgemv(g);
    const { K, N, Np, nP, n, chunk, rows } = WasmGemm.qgemmPlan(M, w.rows, w.cols, trans, w.packed.length, w.scales.length, this.threads);
    if (M === 0 || N === 0) return;
    this.arenaReset();
    const qo = this.alloc((w.packed.length + 3) >> 2);
    new Uint8Array(this.memory.buffer, qo, w.packed.length).set(w.packed);
    const so = this.put(w.scales);
    const to = this.put(w.table);
    const params = this.alloc(20);
    const scratch = this.alloc(n * chunk * K * 8);
    const top = this.mark();
    for (let m0 = 0; m0 < M; m0 += rows) {
      const m = Math.min(rows, M - m0);
      const Mp = (m + 3) & ~3;
      this.release(top);
      const pa = this.put(g.x.subarray(m0 * K, (m0 + m) * K));
      const pc = this.alloc(Mp * Np);
      const f = this.mem();
      if (beta === 1) for (let i = 0; i < m; i++) f.set(g.c.subarray((m0 + i) * N, (m0 + i + 1) * N), (pc >> 2) + i * Np);
      new Int32Array(this.memory.buffer, params, 20).set([
        pa, pc, K, Np, Mp / 4, nP, K * 4, m, beta === 1 ? 1 : 0, COUNTER, chunk,
        qo, so, to, Math.log2(w.blocksize), w.rows, w.cols, trans ? 1 : 0, scratch, chunk * K * 32,
      ]);
      this.dispatch(4, n, [params]);
      const out = this.mem();
      for (let i = 0; i < m; i++) g.c.set(out.subarray((pc >> 2) + i * Np, (pc >> 2) + i * Np + N), (m0 + i) * N);
    }
  }

  /**
   * x·Wᵀ for a few rows of x (decoding) and a 4-bit W: each row of W is decoded once, with a per-block scaled code
   * table, straight into dot products (qgemv_steal); no panels.
   */
  private qgemv(g: QGemmArgs): void {
    const { M, w } = g;
    const R = w.rows, C = w.cols;
    const beta = g.beta ?? 0;
    this.arenaReset();
    const xo = this.put(g.x.length === M * C ? g.x : g.x.subarray(0, M * C));
    const qo = this.alloc((w.packed.length + 3) >> 2);
    new Uint8Array(this.memory.buffer, qo, w.packed.length).set(w.packed);
    const so = this.put(w.scales);
    const to = this.put(w.table);
    const n = R * C < WasmGemm.PARALLEL_MIN / 4 ? 1 : this.threads;
    const tab = this.alloc(16 * n);
    const yo = this.alloc(M * R);
    const params = this.alloc(12);
    const chunk = Math.max(1, Math.ceil(R / (8 * n)));
    new Int32Array(this.memory.buffer, params, 12).set([xo, M, qo, so, to, Math.log2(w.blocksize), R, C, yo, COUNTER, chunk, tab]);
    this.dispatch(5, n, [params]);
    const f = this.mem();
    for (let i = 0; i < M * R; i++) g.c[i] = f[(yo >> 2) + i] + (beta === 1 ? g.c[i] : 0);
  }

  /** how qgemm cuts its work: threads, panels a grab, rows of x a pass (each pass fits MAX_BYTES) */
  static qgemmPlan(M: number, R: number, C: number, trans: boolean, packedBytes: number, scales: number, threads: number) {
    const K = trans ? C : R;
    const N = trans ? R : C;
    const Np = (N + 7) & ~7, nP = Np / 8;
    const n = M * N * K < WasmGemm.PARALLEL_MIN ? 1 : Math.min(threads, nP);
    // panels a grab: a scratch of at most 256 KiB a thread, and enough grabs to share the work
    const chunk = Math.max(1, Math.min(Math.floor((256 << 10) / (K * 32)), Math.ceil(nP / (4 * n))));
    const fixed = ((packedBytes + 3) >> 2) + scales + 16 + 20 + n * chunk * K * 8 + 6 * 8;
    const perRow = K + Np;
    const rows = Math.max(4, Math.min(M, Math.floor((WasmGemm.MAX_BYTES / 4 - fixed) / perRow) & ~3));
    return { K, N, Np, nP, n, chunk, rows, floats: fixed + ((Math.min(rows, M) + 3) & ~3) * perRow };
  }

  // ---- the arena: operands that stay in WebAssembly memory across several kernels (attention) ----

  /** Start a new arena (everything allocated before is forgotten). */
  arenaReset(): void {
    this.arenaTop = ARENA;
  }
  /** Reserve `floats` f32s (16-byte aligned); returns the byte offset. Call mem() again after allocating. */
  alloc(floats: number): number {
    const off = this.arenaTop;
    this.arenaTop += ((floats * 4 + 15) & ~15) + 32; // 32 bytes of slack: kernels may read a vector past the end
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
  /** The memory as f32 (a fresh view after any growth). */
  mem(): Float32Array {
    if (this.f32.buffer !== this.memory.buffer) this.view();
    return this.f32;
  }
  /** Bytes of WebAssembly memory held (it grows, never shrinks). */
  bytes(): number {
    return this.memory.buffer.byteLength;
  }
  packBtAt(src: number, K: number, N: number, lds: number, dst: number): void {
    this.packBt(src, K, N, dst, lds);
  }
  packBAt(src: number, K: number, N: number, lds: number, dst: number): void {
    this.x.pack_b(src, K, N, lds, dst);
  }
  packAtAt(src: number, lds: number, M: number, K: number, dst: number): void {
    this.x.pack_at(src, lds, M, K, dst);
  }

  /**
   * Run a table of independent gemm jobs (12 i32 each, see gemm.wat) split across the threads by job.
   * `jobs` rows: [pa, pb, pc, K, Np, i0, i1, j0, j1, lda, M, acc].
   */
  runJobs(jobs: number[][]): void {
    if (jobs.length === 0) return;
    const table = this.alloc(jobs.length * 12);
    const i32 = new Int32Array(this.memory.buffer, table, jobs.length * 12);
    jobs.forEach((j, n) => i32.set(j, n * 12));
    this.dispatch(2, Math.min(this.threads, jobs.length), [table, jobs.length, COUNTER]);
  }

  dispose(): void {
    for (const w of this.workers) void w.terminate();
    this.workers = [];
  }
}

let shared: WasmGemm | undefined;
/** one process-wide instance (its workers live as long as the process) */
export function sharedGemm(): WasmGemm {
  return (shared ??= new WasmGemm());
}

export function defaultThreads(): number {
  const env = Number(process.env.LORAKIT_THREADS);
  if (Number.isInteger(env) && env > 0) return env;
  return Math.max(1, Math.min(16, os.availableParallelism?.() ?? os.cpus().length));
}
