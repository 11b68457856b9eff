/** The elementwise sum on the CPU with elementwise.wat, on every thread; reference.ts's add bit for bit. */
import type { WasmRuntime } from '../wasm';
import { f32Out } from '../../core/f32pool';
import { ELEMENTWISE_CHUNK, stealSlices } from '../rows';

export function addWasm(rt: WasmRuntime, a: Float32Array, b: Float32Array): Float32Array {
  const out = f32Out(a.length);
  for (let i = 0; i < a.length; i += ELEMENTWISE_CHUNK) {
    const n = Math.min(ELEMENTWISE_CHUNK, a.length - i);
    rt.arenaReset();
    const ao = rt.put(a.subarray(i, i + n)),
      bo = rt.put(b.subarray(i, i + n)),
      oo = rt.alloc(n);
    stealSlices(rt, 'add_steal', [ao, bo, oo], n);
    out.set(rt.mem().subarray(oo >> 2, (oo >> 2) + n), i);
  }
  return out;
}
