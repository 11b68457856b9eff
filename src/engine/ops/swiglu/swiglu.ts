/**
 * SwiGLU on the CPU with swiglu.wat: the operands go through WebAssembly memory in slices of ELEMENTWISE_CHUNK
 * values, so the kernels' memory stays bounded whatever the batch. reference.ts is the spec.
 */
import type { WasmRuntime } from '../wasm';
import { f32 } from '../../core/f32pool';

interface SwigluFns {
  swiglu(g: number, u: number, h: number, n: number): void;
  swiglu_backward(dh: number, g: number, u: number, n: number): void;
}
const fns = (rt: WasmRuntime) => rt.fns<SwigluFns>(['swiglu', 'swiglu_backward']);

/** elementwise kernels work through their operands in slices of this many values (bounded kernel memory) */
export const ELEMENTWISE_CHUNK = 1 << 22;

export function swigluWasm(rt: WasmRuntime, gate: Float32Array, up: Float32Array): Float32Array {
  const h = f32(gate.length);
  for (let i = 0; i < gate.length; i += ELEMENTWISE_CHUNK) {
    const n = Math.min(ELEMENTWISE_CHUNK, gate.length - i);
    rt.arenaReset();
    const go = rt.put(gate.subarray(i, i + n)),
      uo = rt.put(up.subarray(i, i + n)),
      ho = rt.alloc(n);
    fns(rt).swiglu(go, uo, ho, (n + 3) & ~3);
    h.set(rt.mem().subarray(ho >> 2, (ho >> 2) + n), i);
  }
  return h;
}

export function swigluBackwardWasm(rt: WasmRuntime, dh: Float32Array, gate: Float32Array, up: Float32Array) {
  const dgate = f32(gate.length),
    dup = f32(gate.length);
  for (let i = 0; i < gate.length; i += ELEMENTWISE_CHUNK) {
    const n = Math.min(ELEMENTWISE_CHUNK, gate.length - i);
    rt.arenaReset();
    const dho = rt.put(dh.subarray(i, i + n)),
      go = rt.put(gate.subarray(i, i + n)),
      uo = rt.put(up.subarray(i, i + n));
    fns(rt).swiglu_backward(dho, go, uo, (n + 3) & ~3);
    const f = rt.mem();
    dgate.set(f.subarray(go >> 2, (go >> 2) + n), i);
    dup.set(f.subarray(uo >> 2, (uo >> 2) + n), i);
  }
  return { dgate, dup };
}
