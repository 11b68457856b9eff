/**
 * The row kernels' calling convention (rmsnorm.wat, rope.wat): their parameters lie in a block in the arena (i32s,
 * then an f64 at byte 8·⌈ints/2⌉ when there is one), and threads take chunks of rows from the counter.
 */
import { COUNTER, WasmRuntime } from './wasm';
import type { StealKernel } from './wasm-control';

/** values below which one thread does a row kernel's work alone */
const ROWS_PARALLEL_MIN = 1 << 15;

/** run `kernel` over N rows of `values` values in all, with `ints` (and `f64`) as its parameter block */
export function stealRows(rt: WasmRuntime, kernel: StealKernel, ints: number[], N: number, values: number, f64?: number): void {
  const at = rt.alloc(2 * Math.ceil(ints.length / 2) + 2);
  new Int32Array(rt.buffer(), at, ints.length).set(ints);
  if (f64 !== undefined) new Float64Array(rt.buffer(), at + 8 * Math.ceil(ints.length / 2), 1)[0] = f64;
  const threads = values < ROWS_PARALLEL_MIN ? 1 : Math.min(rt.threads, N);
  rt.dispatch(kernel, threads, [at, COUNTER, Math.max(1, Math.ceil(N / (4 * threads)))]);
}
