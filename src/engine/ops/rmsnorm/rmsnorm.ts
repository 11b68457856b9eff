/** RMSNorm on the CPU with rmsnorm.wat, the rows shared among the threads; reference.ts's results bit for bit. */
import type { WasmRuntime } from '../wasm';
import { f32Out } from '../../core/f32pool';
import { stealRows } from '../rows';

export function rmsnormWasm(rt: WasmRuntime, x: Float32Array, w: Float32Array, N: number, C: number, eps: number) {
  rt.arenaReset();
  const xo = rt.put(x.subarray(0, N * C)),
    wo = rt.at(w),
    yo = rt.alloc(N * C),
    ro = rt.alloc(N);
  stealRows(rt, 'rmsnorm_steal', [xo, wo, yo, ro, N, C], N, N * C, eps);
  const f = rt.mem();
  const y = f32Out(N * C),
    rstd = f32Out(N);
  y.set(f.subarray(yo >> 2, (yo >> 2) + N * C));
  rstd.set(f.subarray(ro >> 2, (ro >> 2) + N));
  return { y, rstd };
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
  const dx = f32Out(N * C);
  dx.set(rt.mem().subarray(dxo >> 2, (dxo >> 2) + N * C));
  return dx;
}
