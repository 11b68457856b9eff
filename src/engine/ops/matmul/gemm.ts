/**
 * The matrix product on the CPU: C = alpha·op(A)·op(B) + beta·C with the 4×8 f32x4 kernel of gemm.wat, on this
 * thread and the runtime's workers (work stealing over panels). A is read in place or packed; B is packed by all
 * threads (pack.wat) from where it lies or from a copy, half-float B widened while packing; a product too large for
 * the memory budget runs as blocks. gemmAt is the product on operands already in WebAssembly memory (gemmWhole copies
 * its operands in and calls it; lora.ts runs several on one arena session). reference.ts is the spec.
 */
import { COUNTER, WasmRuntime } from '../wasm';
import { f32, recycle } from '../../core/f32pool';
import type { GemmArgs } from './reference';
import { GEMV_MAX_ROWS, gemv, halfKind } from './gemv';

interface GemmFns {
  gemm(
    pa: number,
    pb: number,
    pc: number,
    K: number,
    Np: number,
    i0: number,
    i1: number,
    j0: number,
    j1: number,
    lda: number,
    M: number,
    acc: number,
  ): void;
  pack_bt(src: number, K: number, N: number, dst: number, lds: number): void;
  pack_b(src: number, K: number, N: number, lds: number, dst: number): void;
  pack_at(src: number, lds: number, M: number, K: number, dst: number): void;
  scale(x: number, n: number, alpha: number): void;
}
const NAMES: (keyof GemmFns)[] = ['gemm', 'pack_bt', 'pack_b', 'pack_at', 'scale'];
/** elements of B packed below which one thread packs alone */
const PACK_PARALLEL_MIN = 1 << 16;
export const gemmFns = (rt: WasmRuntime) => rt.fns<GemmFns>(NAMES);

export { GEMV_MAX_ROWS } from './gemv';

/** floats of WebAssembly memory one call holds: A (+ its packed copy), B raw + packed, C padded */
export function gemmFloats(M: number, N: number, K: number, transA: boolean, halfB = false): number {
  const Mp = (M + 3) & ~3,
    Np = (N + 7) & ~7;
  return (transA ? Mp * K + M * K : M * K) + 2 * Np * K + Mp * Np + (halfB ? (N * K + 1) >> 1 : 0);
}

/** the blocks [columns, K] a product is cut into so that each fits MAX_BYTES ([N, K]: not cut) */
export function gemmBlocks(M: number, N: number, K: number, transA: boolean, halfB = false): [number, number] {
  let nb = (N + 7) & ~7,
    kb = K;
  while (gemmFloats(M, nb, kb, transA, halfB) * 4 > WasmRuntime.MAX_BYTES && (nb > 8 || kb > 4)) {
    if (nb > 8 && (nb >= kb || kb <= 4)) nb = Math.max(8, ((nb >> 1) + 7) & ~7);
    else kb = Math.max(4, kb >> 1);
  }
  return [Math.min(nb, N), kb];
}

/** floats of WebAssembly memory a product takes, cut into blocks or not (what the estimate counts) */
export function gemmArenaFloats(M: number, N: number, K: number, transA: boolean, halfB = false): number {
  const [nb, kb] = gemmBlocks(M, N, K, transA, halfB);
  return gemmFloats(M, nb, kb, transA, halfB);
}

export function gemm(rt: WasmRuntime, g: GemmArgs): void {
  const { M, N, K } = g;
  const beta = g.beta ?? 0;
  if (M === 0 || N === 0) return;
  if (K === 0) {
    for (let i = 0; i < M * N; i++) g.c[i] = beta === 0 ? 0 : beta * g.c[i];
    return;
  }
  if (g.transB && !g.transA && M <= GEMV_MAX_ROWS) gemv(rt, g);
  else if (gemmFloats(M, N, K, !!g.transA, halfKind(g) > 0) * 4 > WasmRuntime.MAX_BYTES) gemmBlocked(rt, g);
  else gemmWhole(rt, g);
}

/**
 * A product too large for the WebAssembly memory (a large vocabulary's LM head, say) runs as blocks of columns of C
 * and of K, each block's operands copied out of A and B, its partial products added up.
 */
function gemmBlocked(rt: WasmRuntime, g: GemmArgs): void {
  const { M, N, K } = g;
  const tA = !!g.transA,
    tB = !!g.transB;
  const [nb, kb] = gemmBlocks(M, N, K, tA, halfKind(g) > 0);
  // rows [r0, r0+rows) of a row-major matrix with `cols` columns, columns [c0, c0+w): a view when whole rows
  const rowsOf = <T extends Float32Array | Uint16Array>(x: T, cols: number, r0: number, rows: number, c0: number, w: number): T => {
    if (w === cols) return x.subarray(r0 * cols, (r0 + rows) * cols) as T;
    const out = (x instanceof Float32Array ? f32(rows * w) : new Uint16Array(rows * w)) as T;
    for (let r = 0; r < rows; r++) out.set(x.subarray((r0 + r) * cols + c0, (r0 + r) * cols + c0 + w), r * w);
    if (out instanceof Float32Array) copies.push(out);
    return out;
  };
  const copies: Float32Array[] = []; // given back to the pool after each block's product
  for (let n0 = 0; n0 < N; n0 += nb) {
    const n = Math.min(nb, N - n0);
    const whole = n === N;
    const c = whole ? g.c : f32(M * n);
    if (!whole && (g.beta ?? 0) !== 0) for (let i = 0; i < M; i++) c.set(g.c.subarray(i * N + n0, i * N + n0 + n), i * n);
    for (let k0 = 0; k0 < K; k0 += kb) {
      const k = Math.min(kb, K - k0);
      const a = tA ? rowsOf(g.a, M, k0, k, 0, M) : rowsOf(g.a, K, 0, M, k0, k); // (k, M) or (M, k)
      const b = tB ? rowsOf(g.b, K, n0, n, k0, k) : rowsOf(g.b, N, k0, k, n0, n); // (n, k) or (k, n)
      gemmWhole(rt, { M, N: n, K: k, a, b, c, transA: tA, transB: tB, bHalf: g.bHalf, alpha: g.alpha, beta: k0 === 0 ? (g.beta ?? 0) : 1 });
      copies.splice(0).forEach(recycle);
    }
    if (!whole) for (let i = 0; i < M; i++) g.c.set(c.subarray(i * n, i * n + n), i * N + n0);
    if (!whole) recycle(c);
  }
}

function gemmWhole(rt: WasmRuntime, g: GemmArgs): void {
  const { M, N, K } = g;
  const alpha = g.alpha ?? 1;
  const beta = g.beta ?? 0;
  const Mp = (M + 3) & ~3;
  const Np = (N + 7) & ~7;
  // A is copied as is and read in place by the kernel, or (transposed) copied and packed in WebAssembly;
  // B is copied and packed in WebAssembly. Layout: [A or Apack][Bpack][C][raw A][raw B]
  rt.arenaReset();
  const pa = rt.alloc(g.transA ? Mp * K : M * K);
  const pb = rt.alloc(Np * K);
  const pc = rt.alloc(Mp * Np);
  const rawA = g.transA ? rt.alloc(M * K) : 0;
  const rawB = rt.alloc(N * K);
  const half = halfKind(g);
  const halfB = half ? rt.alloc((N * K + 1) >> 1) : 0; // room for half-float bits
  const f = rt.mem();
  const a = g.a.length === M * K ? g.a : g.a.subarray(0, M * K);
  const b = g.b.length === N * K ? g.b : g.b.subarray(0, N * K);
  // B is packed from where it lies when resident (a base weight, a LoRA matrix), else from its copy here, half
  // floats widened on the way, by all threads; the room of the copy stays reserved either way
  const srcB = placeAt(rt, b, half ? halfB : rawB);
  f.set(a, (g.transA ? rawA : pa) >> 2);
  gemmTraffic.in += a.byteLength;
  // beta = 1: the old C goes into the kernel's C and the kernel adds to it; alpha scales the packed B
  const acc = beta === 1;
  const c = g.c;
  if (acc) copyIn(rt, c, M, N, pc, Np);
  const es = half ? 2 : 4;
  gemmAt(rt, {
    M,
    N,
    K,
    a: g.transA ? rawA : pa,
    lda: (g.transA ? M : K) * 4,
    transA: g.transA,
    pa,
    b: srcB,
    bKind: half,
    transB: g.transB,
    ldb: (g.transB ? K : N) * es,
    pb,
    c: pc,
    acc,
    alpha: acc ? alpha : 1,
  });
  // C out: as it is (acc, or alpha 1 and beta 0), else with alpha and beta applied on the way
  if (acc || (alpha === 1 && beta === 0)) return copyOut(rt, pc, Np, c, M, N);
  gemmTraffic.out += M * N * 4;
  const base = pc >> 2;
  for (let i = 0; i < M; i++) {
    const src = base + i * Np;
    const dst = i * N;
    if (alpha === 1) for (let j = 0; j < N; j++) c[dst + j] = f[src + j] + beta * c[dst + j];
    else if (beta === 0) for (let j = 0; j < N; j++) c[dst + j] = alpha * f[src + j];
    else for (let j = 0; j < N; j++) c[dst + j] = alpha * f[src + j] + beta * c[dst + j];
  }
}

/**
 * A product on operands already in WebAssembly memory (arena or resident heap), by byte offsets: C (+)= op(A)·op(B)
 * with alpha scaling the packed B. Nothing is allocated: the caller gives the room of the packs.
 */
export interface ArenaGemm {
  M: number;
  N: number;
  K: number;
  /** A at byte offset `a`, row stride `lda` bytes: (M, K) read in place, or with transA (K, M) packed into `pa` (Mp·K floats) */
  a: number;
  lda: number;
  transA?: boolean;
  pa?: number;
  /** B at `b`, elements of `bKind` (0 f32, 1 bf16, 2 f16), row stride `ldb` bytes: (K, N), or (N, K) with transB */
  b: number;
  bKind: number;
  transB?: boolean;
  ldb: number;
  /** room for the packed B: Np·K floats */
  pb: number;
  /** C at `c`: Mp rows of Np floats (M, N padded to 4 and 8); `acc`: the product is added to what C holds */
  c: number;
  acc: boolean;
  /** scales the packed B (alpha) or, with transA, the packed A (alphaA) */
  alpha?: number;
  alphaA?: number;
}

export function gemmAt(rt: WasmRuntime, g: ArenaGemm): void {
  const { M, N, K } = g;
  const Mp = (M + 3) & ~3;
  const Np = (N + 7) & ~7;
  // a bf16 B that is not transposed (a weight in a backward product, dy·W) is read in place, not packed
  if (g.bKind === 1 && !g.transB && !g.transA && (g.alpha ?? 1) === 1 && N % 8 === 0) {
    const [mPanels, nPanels] = [Mp / 4, Np / 8];
    const { n, chunk, byRows } = panelSplit(rt, mPanels, nPanels, M * N * K);
    const args = [g.a, g.lda, g.b, g.ldb, g.c, K, Np, mPanels, nPanels, M, g.acc ? 1 : 0, COUNTER, chunk, byRows ? 1 : 0];
    return rt.dispatch('gemm_bh_steal', n, args);
  }
  const x = gemmFns(rt);
  if (g.transA) x.pack_at(g.a, g.lda, M, K, g.pa!);
  if (g.transA && (g.alphaA ?? 1) !== 1) x.scale(g.pa!, Mp * K, g.alphaA!);
  packB(rt, g.b, g.bKind, !!g.transB, K, N, g.ldb, g.pb);
  if ((g.alpha ?? 1) !== 1) x.scale(g.pb, Np * K, g.alpha!);
  runPanels(rt, g.transA ? g.pa! : g.a, g.pb, g.c, K, Np, Mp / 4, Np / 8, M * N * K, g.transA ? 0 : g.lda, M, g.acc ? 1 : 0);
}

/**
 * C (+)= Aᵀ·B on operands in WebAssembly memory, both read in place (gemm.wat's gemm_tn_steal): At (K, M) and B (K, N),
 * f32, row strides `lda` and `ldb` bytes; C as in ArenaGemm. For a LoRA weight gradient (M = the rank, K = the
 * tokens) this skips packing the large B, which each packed element would repay only M times. The same products in
 * the same order as gemmAt with transA, so the same bits (alphaA aside: scale At first, as the pack would).
 */
export function gemmTnAt(
  rt: WasmRuntime,
  g: { M: number; N: number; K: number; a: number; lda: number; b: number; ldb: number; c: number; acc: boolean },
): void {
  if (g.K === 0) throw new Error('internal: gemmTnAt with K = 0'); // its tiles would leave C as it was
  const Np = (g.N + 7) & ~7;
  const mPanels = (g.M + 3) >> 2,
    nPanels = Np >> 3;
  const n = g.M * g.N * g.K < WasmRuntime.PARALLEL_MIN ? 1 : Math.min(rt.threads, nPanels);
  const chunk = Math.max(1, Math.ceil(nPanels / (4 * n)));
  rt.dispatch('gemm_tn_steal', n, [g.a, g.lda, g.b, g.ldb, g.c, g.K, Np, mPanels, nPanels, g.acc ? 1 : 0, COUNTER, chunk]);
}

/**
 * Bytes copied between host arrays and the WebAssembly memory by the matrix products (operands in, results out):
 * a deterministic measure of what the copies cost.
 */
export const gemmTraffic = { in: 0, out: 0 };

/** the byte offset of `data` where it lies when resident, else of its copy put at `room` */
export function placeAt(rt: WasmRuntime, data: Float32Array | Uint16Array, room: number): number {
  const at = rt.offsetOf(data);
  if (at >= 0) return at;
  if (data instanceof Float32Array) rt.mem().set(data, room >> 2);
  else new Uint16Array(rt.buffer(), room, data.length).set(data);
  gemmTraffic.in += data.byteLength;
  return room;
}

/** rows × cols of a row-major host matrix into WebAssembly memory at `at` with a row stride of `ld` floats */
export function copyIn(rt: WasmRuntime, x: Float32Array, rows: number, cols: number, at: number, ld: number): void {
  const f = rt.mem();
  const base = at >> 2;
  if (ld === cols) f.set(x.subarray(0, rows * cols), base);
  else for (let i = 0; i < rows; i++) f.set(x.subarray(i * cols, i * cols + cols), base + i * ld);
  gemmTraffic.in += rows * cols * 4;
}

/** the reverse of copyIn: rows × cols at `at` (row stride `ld` floats) into a row-major host matrix */
export function copyOut(rt: WasmRuntime, at: number, ld: number, x: Float32Array, rows: number, cols: number): void {
  const f = rt.mem();
  const base = at >> 2;
  if (ld === cols) x.set(f.subarray(base, base + rows * cols));
  else for (let i = 0; i < rows; i++) x.set(f.subarray(base + i * ld, base + i * ld + cols), i * cols);
  gemmTraffic.out += rows * cols * 4;
}

/** pack op(B) from `src` (elements of `kind`: 0 f32, 1 bf16, 2 f16; row stride `lds` bytes) into panels at `dst` */
function packB(rt: WasmRuntime, src: number, kind: number, trans: boolean, K: number, N: number, lds: number, dst: number): void {
  const panels = (N + 7) >> 3;
  const n = panels * 8 * K < PACK_PARALLEL_MIN ? 1 : Math.min(rt.threads, panels);
  const chunk = Math.max(1, Math.ceil(panels / (4 * n)));
  rt.dispatch('pack_steal', n, [src, kind, trans ? 1 : 0, K, N, lds, dst, COUNTER, chunk]);
}

function runPanels(
  rt: WasmRuntime,
  pa: number,
  pb: number,
  pc: number,
  K: number,
  Np: number,
  mPanels: number,
  nPanels: number,
  work: number,
  lda: number,
  M: number,
  acc: number,
): void {
  const { n, chunk, byRows } = panelSplit(rt, mPanels, nPanels, work);
  if (n <= 1) return gemmFns(rt).gemm(pa, pb, pc, K, Np, 0, mPanels, 0, nPanels, lda, M, acc);
  rt.dispatch('gemm_steal', n, [pa, pb, pc, K, Np, mPanels, nPanels, lda, M, acc, COUNTER, chunk, byRows ? 1 : 0]);
}

/**
 * How a product's tiles are shared: its threads (one below PARALLEL_MIN multiply-adds), and the larger panel
 * dimension cut into about four chunks per thread, taken from a shared counter
 */
function panelSplit(rt: WasmRuntime, mPanels: number, nPanels: number, work: number) {
  const n = work < WasmRuntime.PARALLEL_MIN ? 1 : Math.min(rt.threads, Math.max(mPanels, nPanels));
  const byRows = mPanels >= nPanels;
  return { n, byRows, chunk: Math.max(1, Math.ceil((byRows ? mPanels : nPanels) / (4 * n))) };
}
