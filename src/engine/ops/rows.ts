/**
 * The calling conventions of the kernels that share rows or slices of values among the threads:
 * - row kernels (rmsnorm.wat, rope.wat): their parameters lie in a block in the arena (i32s, then an f64 at byte
 *   8·⌈ints/2⌉ when there is one), and threads take chunks of rows from the counter;
 * - slice kernels (swiglu.wat, elementwise.wat): their operands' offsets and length are the call's arguments, and
 *   threads take slices of SLICE values.
 * Results are copied out of the arena into pooled arrays (`takeOut`).
 */
import { COUNTER, WasmRuntime } from './wasm';
import type { StealKernel } from './wasm-control';
import { f32Out } from '../core/f32pool';

/** values below which one thread does a row kernel's work alone */
const ROWS_PARALLEL_MIN = 1 << 15;
/** values per slice a thread takes (and below two of which one thread does it all) */
const SLICE = 1 << 14;
/** elementwise kernels work through their operands in slices of this many values (bounded kernel memory) */
export const ELEMENTWISE_CHUNK = 1 << 22;

/** run `kernel` over N rows of `values` values in all, with `ints` (and `f64`) as its parameter block */
export function stealRows(rt: WasmRuntime, kernel: StealKernel, ints: number[], N: number, values: number, f64?: number): void {
  const at = rt.alloc(2 * Math.ceil(ints.length / 2) + 2);
  new Int32Array(rt.buffer(), at, ints.length).set(ints);
  if (f64 !== undefined) new Float64Array(rt.buffer(), at + 8 * Math.ceil(ints.length / 2), 1)[0] = f64;
  const threads = values < ROWS_PARALLEL_MIN ? 1 : Math.min(rt.threads, N);
  rt.dispatch(kernel, threads, [at, COUNTER, Math.max(1, Math.ceil(N / (4 * threads)))]);
}

/** run a slice kernel over n values (rounded up to 4) at the byte offsets `ptrs`, on every thread when there are enough */
export function stealSlices(rt: WasmRuntime, kernel: StealKernel, ptrs: number[], n: number): void {
  const n4 = (n + 3) & ~3;
  rt.dispatch(kernel, n4 < 2 * SLICE ? 1 : rt.threads, [...ptrs, n4, COUNTER, SLICE]);
}

/** n floats at byte offset `at` of the arena, copied into a pooled array */
export function takeOut(rt: WasmRuntime, at: number, n: number): Float32Array {
  const x = f32Out(n);
  x.set(rt.mem().subarray(at >> 2, (at >> 2) + n));
  return x;
}
