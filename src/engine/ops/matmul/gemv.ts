/**
 * The matrix-vector product of decoding on the CPU (gemv.wat): C = alpha·x·Wᵀ + beta·C for a few rows of x. W is
 * read once, in place when it is resident in the WebAssembly memory (a base weight or a LoRA matrix), else from a
 * copy in blocks of rows that fit MAX_BYTES; threads take chunks of rows from a counter. Short rows (LoRA's B) take
 * a kernel that works four rows at a time. reference.ts is the spec.
 */
import { COUNTER, WasmRuntime } from '../wasm';
import type { GemmArgs } from './reference';

/** products with at most this many rows of x·Wᵀ (decoding) take the matrix-vector path */
export const GEMV_MAX_ROWS = 4;
/** weights below which a matrix-vector product runs on one thread (waking the others costs about as much) */
export const GEMV_PARALLEL_MIN = 1 << 16;

/** the kernels' element kind of a matrix: 0 f32, 1 bf16 bits, 2 f16 bits */
export const elementKind = (b: Float32Array | Uint16Array, half?: 'bf16' | 'f16') =>
  b instanceof Uint16Array ? (half === 'f16' ? 2 : 1) : 0;
/** B's element kind */
export const halfKind = (g: GemmArgs) => elementKind(g.b, g.bHalf);

/** threads and rows a grab for a matrix-vector product over n rows of K weights */
export function gemvSplit(rt: WasmRuntime, n: number, K: number): { threads: number; chunk: number } {
  const threads = n * K < GEMV_PARALLEL_MIN ? 1 : rt.threads;
  return { threads, chunk: threads === 1 ? n : Math.ceil(n / (8 * threads)) };
}

export function gemv(rt: WasmRuntime, g: GemmArgs): void {
  const { M, N, K } = g;
  const alpha = g.alpha ?? 1;
  const beta = g.beta ?? 0;
  const kind = halfKind(g);
  const wAll = g.b.length === N * K ? g.b : g.b.subarray(0, N * K);
  const perRow = K * (kind > 0 ? 2 : 4) + M * 4;
  const resident = rt.offsetOf(wAll) >= 0;
  const rows = resident ? N : Math.max(1, Math.min(N, Math.floor((WasmRuntime.MAX_BYTES - M * K * 4) / perRow)));
  for (let n0 = 0; n0 < N; n0 += rows) {
    const n = Math.min(rows, N - n0);
    rt.arenaReset();
    const xo = rt.put(g.a.length === M * K ? g.a : g.a.subarray(0, M * K));
    const wo = rt.at(wAll.subarray(n0 * K, (n0 + n) * K));
    const yo = rt.alloc(M * n);
    const { threads, chunk } = gemvSplit(rt, n, K);
    // short rows (LoRA's B: K = r) go four at a time; the per-row work of the long-row kernel would dominate
    const short = K <= 64 && K % 4 === 0;
    rt.dispatch(short ? 'gemv_short_steal' : 'gemv_steal', threads, [
      xo,
      M,
      wo,
      kind,
      K,
      n,
      yo,
      COUNTER,
      short ? Math.ceil(chunk / 4) * 4 : chunk,
    ]);
    const f = rt.mem();
    for (let m = 0; m < M; m++) {
      const y = f.subarray((yo >> 2) + m * n, (yo >> 2) + m * n + n);
      const c = g.c.subarray(m * N + n0, m * N + n0 + n);
      if (alpha === 1 && beta === 0) c.set(y);
      else if (beta === 0) for (let j = 0; j < n; j++) c[j] = alpha * y[j];
      else for (let j = 0; j < n; j++) c[j] = alpha * y[j] + beta * c[j];
    }
  }
}
