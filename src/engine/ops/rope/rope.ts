/** RoPE on the CPU with rope.wat, the rows shared among the threads; reference.ts's results bit for bit. */
import type { WasmRuntime } from '../wasm';
import { stealRows, takeOut } from '../rows';

export function ropeWasm(
  rt: WasmRuntime,
  x: Float32Array,
  N: number,
  heads: number,
  D: number,
  pos: Int32Array,
  cos: Float32Array,
  sin: Float32Array,
  inverse: boolean,
): Float32Array {
  const n = N * heads * D;
  const h2 = D / 2;
  // only the tables' rows these positions use go in (a prompt chunk far into a long context: not the whole table)
  let lo = N ? pos[0] : 0,
    hi = lo;
  for (let i = 1; i < N; i++) {
    lo = Math.min(lo, pos[i]);
    hi = Math.max(hi, pos[i]);
  }
  rt.arenaReset();
  const xo = rt.put(x.subarray(0, n)),
    oo = rt.alloc(n),
    po = rt.putBytes(Int32Array.from(pos.subarray(0, N), (p) => p - lo)),
    co = rt.put(cos.subarray(lo * h2, (hi + 1) * h2)),
    so = rt.put(sin.subarray(lo * h2, (hi + 1) * h2));
  stealRows(rt, 'rope_steal', [xo, oo, N, heads, D, po, co, so, inverse ? 1 : 0], N, n);
  return takeOut(rt, oo, n);
}
