/**
 * The fused 4-bit matrix product on the CPU (qgemm.wat): C = x·op(W) (+ C) for an NF4/FP4 W, its codes decoded
 * panel by panel into each thread's scratch, so the f32 weights exist only a few panels at a time. Decoding (a few
 * rows of x) takes the matrix-vector kernels of qgemv.ts. reference.ts is the spec.
 */
import { COUNTER, WasmRuntime } from '../wasm';
import { GEMV_MAX_ROWS } from '../matmul/gemv';
import { codeTable, type NestedAbsmax } from '../../core/blockwise';
import type { QuantWeight } from '../../core/qweight';
import { qgemv, scalesOfQ } from './qgemv';

/**
 * A 4-bit weight matrix as the kernels read it: packed codes, the block scales (f32, or double-quantized: `nested`),
 * the 16-value code table.
 */
export interface QMatrix {
  packed: Uint8Array;
  scales?: Float32Array;
  nested?: NestedAbsmax;
  table: Float32Array;
  blocksize: number;
  rows: number;
  cols: number;
}

/** What the fused kernels read of a 4-bit weight: codes, the f32 block scales or the double-quantized ones, the code table. */
export function qmatrixOf(q: QuantWeight): QMatrix {
  return {
    packed: q.packed,
    scales: q.absmax,
    nested: q.nested,
    table: codeTable(q.type),
    blocksize: q.blocksize,
    rows: q.shape[0],
    cols: q.shape[1],
  };
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

/**
 * C (M, N) = x (M, K) · op(W) (+ C when beta = 1) for a 4-bit W (R × C): op(W) = Wᵀ (forward, K = C, N = R) or W
 * (backward, K = R, N = C). Each thread dequantizes a few 8-column panels of op(W) into its own scratch and
 * multiplies all rows of x by them.
 */
export function qgemm(rt: WasmRuntime, g: QGemmArgs): void {
  const { M, w, trans } = g;
  const beta = g.beta ?? 0;
  if (trans && M <= GEMV_MAX_ROWS && M > 0) return qgemv(rt, g);
  const { K, N, Np, nP, n, chunk, rows } = qgemmPlan(
    M,
    w.rows,
    w.cols,
    trans,
    w.packed.length,
    Math.ceil((w.rows * w.cols) / w.blocksize),
    rt.threads,
  );
  if (M === 0 || N === 0) return;
  rt.arenaReset();
  // resident codes and f32 scales are read in place (their room still taken: the arena the estimate counts)
  const qo = rt.atSized(w.packed);
  const so = rt.atSized(scalesOfQ(w));
  const to = rt.put(w.table);
  const params = rt.alloc(20);
  const scratch = rt.alloc(n * chunk * K * 8);
  const top = rt.mark();
  for (let m0 = 0; m0 < M; m0 += rows) {
    const m = Math.min(rows, M - m0);
    const Mp = (m + 3) & ~3;
    rt.release(top);
    const pa = rt.put(g.x.subarray(m0 * K, (m0 + m) * K));
    const pc = rt.alloc(Mp * Np);
    const f = rt.mem();
    if (beta === 1) for (let i = 0; i < m; i++) f.set(g.c.subarray((m0 + i) * N, (m0 + i + 1) * N), (pc >> 2) + i * Np);
    new Int32Array(rt.buffer(), params, 20).set([
      pa,
      pc,
      K,
      Np,
      Mp / 4,
      nP,
      K * 4,
      m,
      beta === 1 ? 1 : 0,
      COUNTER,
      chunk,
      qo,
      so,
      to,
      Math.log2(w.blocksize),
      w.rows,
      w.cols,
      trans ? 1 : 0,
      scratch,
      chunk * K * 32,
    ]);
    rt.dispatch('qgemm_steal', n, [params]);
    const out = rt.mem();
    for (let i = 0; i < m; i++) g.c.set(out.subarray((pc >> 2) + i * Np, (pc >> 2) + i * Np + N), (m0 + i) * N);
  }
}

/** how qgemm cuts its work: threads, panels a grab, rows of x a pass (each pass fits MAX_BYTES) */
export function qgemmPlan(M: number, R: number, C: number, trans: boolean, packedBytes: number, scales: number, threads: number) {
  const K = trans ? C : R;
  const N = trans ? R : C;
  const Np = (N + 7) & ~7,
    nP = Np / 8;
  const n = M * N * K < WasmRuntime.PARALLEL_MIN ? 1 : Math.min(threads, nP);
  // panels a grab: a scratch of at most 256 KiB a thread, and enough grabs to share the work
  const chunk = Math.max(1, Math.min(Math.floor((256 << 10) / (K * 32)), Math.ceil(nP / (4 * n))));
  const fixed = ((packedBytes + 3) >> 2) + scales + 16 + 20 + n * chunk * K * 8 + 6 * 8;
  const perRow = K + Np;
  const rows = Math.max(4, Math.min(M, Math.floor((WasmRuntime.MAX_BYTES / 4 - fixed) / perRow) & ~3));
  return { K, N, Np, nP, n, chunk, rows, floats: fixed + ((Math.min(rows, M) + 3) & ~3) * perRow };
}
