/**
 * SwiGLU on the CPU with swiglu.wat, on every thread: the operands go through WebAssembly memory in slices of
 * ELEMENTWISE_CHUNK values, so the kernels' memory stays bounded whatever the batch. reference.ts is the spec.
 */
import type { WasmRuntime } from '../wasm';
import { f32Out } from '../../core/f32pool';
import { ELEMENTWISE_CHUNK, stealSlices } from '../rows';

export function swigluWasm(rt: WasmRuntime, gate: Float32Array, up: Float32Array): Float32Array {
  const h = f32Out(gate.length);
  for (let i = 0; i < gate.length; i += ELEMENTWISE_CHUNK) {
    const n = Math.min(ELEMENTWISE_CHUNK, gate.length - i);
    rt.arenaReset();
    const go = rt.put(gate.subarray(i, i + n)),
      uo = rt.put(up.subarray(i, i + n)),
      ho = rt.alloc(n);
    stealSlices(rt, 'swiglu_steal', [go, uo, ho], n);
    h.set(rt.mem().subarray(ho >> 2, (ho >> 2) + n), i);
  }
  return h;
}

export function swigluBackwardWasm(rt: WasmRuntime, dh: Float32Array, gate: Float32Array, up: Float32Array) {
  const dgate = f32Out(gate.length),
    dup = f32Out(gate.length);
  for (let i = 0; i < gate.length; i += ELEMENTWISE_CHUNK) {
    const n = Math.min(ELEMENTWISE_CHUNK, gate.length - i);
    rt.arenaReset();
    const dho = rt.put(dh.subarray(i, i + n)),
      go = rt.put(gate.subarray(i, i + n)),
      uo = rt.put(up.subarray(i, i + n));
    stealSlices(rt, 'swiglu_backward_steal', [dho, go, uo], n);
    const f = rt.mem();
    dgate.set(f.subarray(go >> 2, (go >> 2) + n), i);
    dup.set(f.subarray(uo >> 2, (uo >> 2) + n), i);
  }
  return { dgate, dup };
}
