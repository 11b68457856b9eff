/** RMSNorm on the CPU with rmsnorm.wat, the rows shared among the threads; reference.ts's results bit for bit. */
import type { WasmRuntime } from '../wasm';
import { stealRows, takeOut } from '../rows';

export function rmsnormWasm(rt: WasmRuntime, x: Float32Array, w: Float32Array, N: number, C: number, eps: number) {
  rt.arenaReset();
  const xo = rt.put(x.subarray(0, N * C)),
    wo = rt.at(w),
    yo = rt.alloc(N * C),
    ro = rt.alloc(N);
  stealRows(rt, 'rmsnorm_steal', [xo, wo, yo, ro, N, C], N, N * C, eps);
  return { y: takeOut(rt, yo, N * C), rstd: takeOut(rt, ro, N) };
}

export function rmsnormBackwardWasm(
  rt: WasmRuntime,
  dy: Float32Array,
  x: Float32Array,
  w: Float32Array,
  rstd: Float32Array,
  N: number,
  C: number,
) {
  rt.arenaReset();
  const dyo = rt.put(dy.subarray(0, N * C)),
    xo = rt.put(x.subarray(0, N * C)),
    wo = rt.at(w),
    ro = rt.put(rstd.subarray(0, N)),
    dxo = rt.alloc(N * C);
  stealRows(rt, 'rmsnorm_backward_steal', [dyo, xo, wo, ro, dxo, N, C], N, N * C);
  return takeOut(rt, dxo, N * C);
}
