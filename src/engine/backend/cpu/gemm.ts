/**
 * General matrix multiply on the CPU: C = alpha·op(A)·op(B) + beta·C, in WebAssembly SIMD (gemm.wat) on the
 * main thread plus worker threads that share one WebAssembly.Memory. The call is synchronous: the main thread
 * takes its own share of the panels and waits on an Atomics counter for the workers.
 *
 * `matmulRef` is the plain TypeScript twin, the spec the kernel is tested against.
 */
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import gemmWasm from '../../../../build/gemm.wasm';

export interface GemmArgs {
  M: number;
  N: number;
  K: number;
  a: Float32Array; // op(A) is (M, K): A is (M, K), or (K, M) when transA
  b: Float32Array; // op(B) is (K, N): B is (K, N), or (N, K) when transB
  transA?: boolean;
  transB?: boolean;
  c: Float32Array; // (M, N)
  alpha?: number;
  beta?: number; // 0 overwrites C
}

/** The reference: three loops, obviously correct. */
export function matmulRef(g: GemmArgs): void {
  const { M, N, K, a, b, c } = g;
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

// Control block layout (Int32 slots): [0] generation, [1] done count, then per worker 9 args at 4 + w*12.
const GEN = 0;
const DONE = 1;
const ARGS = 4;
const STRIDE = 12; // 11 args + active flag

const WORKER_SRC = `
const { workerData } = require('node:worker_threads');
const { module, memory, ctl, index } = workerData;
const inst = new WebAssembly.Instance(module, { env: { memory } });
const gemm = inst.exports.gemm;
const c = new Int32Array(ctl);
let seen = 0;
for (;;) {
  Atomics.wait(c, 0, seen);
  seen = Atomics.load(c, 0);
  const o = ${ARGS} + index * ${STRIDE};
  if (c[o + 11] === 1) gemm(c[o], c[o + 1], c[o + 2], c[o + 3], c[o + 4], c[o + 5], c[o + 6], c[o + 7], c[o + 8], c[o + 9], c[o + 10]);
  Atomics.add(c, ${DONE}, 1);
  Atomics.notify(c, ${DONE});
}
`;

type GemmFn = (pa: number, pb: number, pc: number, K: number, Np: number, i0: number, i1: number, j0: number, j1: number, lda: number, M: number) => void;

export class WasmGemm {
  private memory: WebAssembly.Memory;
  private gemmFn: GemmFn;
  private packBt: (src: number, K: number, N: number, dst: number) => void;
  private ctl: Int32Array;
  private workers: Worker[] = [];
  private f32!: Float32Array;
  /** multiply-adds below which one thread is faster than waking the others */
  static PARALLEL_MIN = 1 << 23;

  constructor(readonly threads = defaultThreads()) {
    const module = new WebAssembly.Module(gemmWasm);
    this.memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    const inst = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    this.gemmFn = inst.exports.gemm as GemmFn;
    this.packBt = inst.exports.pack_bt as (src: number, K: number, N: number, dst: number) => void;
    const sab = new SharedArrayBuffer((ARGS + STRIDE * Math.max(1, threads)) * 4);
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

  gemm(g: GemmArgs): void {
    const { M, N, K } = g;
    const alpha = g.alpha ?? 1;
    const beta = g.beta ?? 0;
    if (M === 0 || N === 0) return;
    if (K === 0) {
      for (let i = 0; i < M * N; i++) g.c[i] = beta === 0 ? 0 : beta * g.c[i];
      return;
    }
    const Mp = (M + 3) & ~3;
    const Np = (N + 7) & ~7;
    // A is copied as is (row-major, read in place by the kernel) unless transposed, when it is packed
    const pa = 0;
    const lda = g.transA ? 0 : K * 4;
    const pb = (g.transA ? Mp * K : M * K) * 4;
    const pc = pb + Np * K * 4;
    const raw = pc + Mp * Np * 4; // Wᵀ operands are copied here as they are, then packed in WebAssembly
    this.ensure(raw + (g.transB ? N * K * 4 : 0));
    const f = this.f32;
    if (g.transA) packA(f, pa >> 2, g.a, M, K, true);
    else f.set(g.a.length === M * K ? g.a : g.a.subarray(0, M * K), pa >> 2);
    if (g.transB) {
      f.set(g.b.length === N * K ? g.b : g.b.subarray(0, N * K), raw >> 2);
      this.packBt(raw, K, N, pb);
    } else packB(f, pb >> 2, g.b, N, K);
    this.run(pa, pb, pc, K, Np, Mp / 4, Np / 8, M * N * K, lda, M);
    // copy out with alpha/beta
    const c = g.c;
    const base = pc >> 2;
    for (let i = 0; i < M; i++) {
      const src = base + i * Np;
      const dst = i * N;
      if (beta === 0 && alpha === 1) c.set(f.subarray(src, src + N), dst);
      else if (beta === 0) for (let j = 0; j < N; j++) c[dst + j] = alpha * f[src + j];
      else for (let j = 0; j < N; j++) c[dst + j] = alpha * f[src + j] + beta * c[dst + j];
    }
  }

  private run(pa: number, pb: number, pc: number, K: number, Np: number, mPanels: number, nPanels: number, work: number, lda: number, M: number): void {
    const n = work < WasmGemm.PARALLEL_MIN ? 1 : Math.min(this.threads, Math.max(mPanels, nPanels));
    if (n <= 1) return this.gemmFn(pa, pb, pc, K, Np, 0, mPanels, 0, nPanels, lda, M);
    // split the larger panel dimension into n contiguous ranges
    const byRows = mPanels >= nPanels;
    const total = byRows ? mPanels : nPanels;
    const c = this.ctl;
    const range = (t: number) => [Math.floor((t * total) / n), Math.floor(((t + 1) * total) / n)];
    for (let w = 1; w < this.threads; w++) {
      const o = ARGS + w * STRIDE;
      const active = w < n;
      c[o + 11] = active ? 1 : 0;
      if (!active) continue;
      const [r0, r1] = range(w);
      c.set([pa, pb, pc, K, Np, byRows ? r0 : 0, byRows ? r1 : mPanels, byRows ? 0 : r0, byRows ? nPanels : r1, lda, M], o);
    }
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    const [r0, r1] = range(0);
    if (byRows) this.gemmFn(pa, pb, pc, K, Np, r0, r1, 0, nPanels, lda, M);
    else this.gemmFn(pa, pb, pc, K, Np, 0, mPanels, r0, r1, lda, M);
    const want = this.threads - 1;
    for (;;) {
      const d = Atomics.load(c, DONE);
      if (d >= want) break;
      Atomics.wait(c, DONE, d, 1000);
    }
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

function defaultThreads(): number {
  const env = Number(process.env.LORAKIT_THREADS);
  if (Number.isInteger(env) && env > 0) return env;
  return Math.max(1, Math.min(16, os.availableParallelism?.() ?? os.cpus().length));
}

/** op(A) (M, K) into 4-row panels, k-major; rows past M are zero. */
function packA(f: Float32Array, off: number, a: Float32Array, M: number, K: number, trans: boolean): void {
  const panels = (M + 3) >> 2;
  for (let p = 0; p < panels; p++) {
    const base = off + p * K * 4;
    for (let r = 0; r < 4; r++) {
      const row = p * 4 + r;
      if (row >= M) {
        for (let k = 0; k < K; k++) f[base + k * 4 + r] = 0;
      } else if (trans) {
        for (let k = 0; k < K; k++) f[base + k * 4 + r] = a[k * M + row];
      } else {
        const src = row * K;
        for (let k = 0; k < K; k++) f[base + k * 4 + r] = a[src + k];
      }
    }
  }
}

/** B (K, N) into 8-column panels, k-major; columns past N are zero. (Bᵀ operands are packed by pack_bt.) */
function packB(f: Float32Array, off: number, b: Float32Array, N: number, K: number): void {
  const panels = (N + 7) >> 3;
  for (let p = 0; p < panels; p++) {
    const base = off + p * K * 8;
    const full = p * 8 + 8 <= N;
    if (full) {
      for (let k = 0; k < K; k++) {
        const s = k * N + p * 8;
        const d = base + k * 8;
        f[d] = b[s]; f[d + 1] = b[s + 1]; f[d + 2] = b[s + 2]; f[d + 3] = b[s + 3];
        f[d + 4] = b[s + 4]; f[d + 5] = b[s + 5]; f[d + 6] = b[s + 6]; f[d + 7] = b[s + 7];
      }
      continue;
    }
    for (let cidx = 0; cidx < 8; cidx++) {
      const col = p * 8 + cidx;
      if (col >= N) {
        for (let k = 0; k < K; k++) f[base + k * 8 + cidx] = 0;
      } else {
        for (let k = 0; k < K; k++) f[base + k * 8 + cidx] = b[k * N + col];
      }
    }
  }
}
