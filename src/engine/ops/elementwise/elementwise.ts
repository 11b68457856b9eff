/** The elementwise sum on the CPU with elementwise.wat, on every thread; reference.ts's add bit for bit. */
import { COUNTER, WasmRuntime } from '../wasm';
import { f32Out } from '../../core/f32pool';
import { ELEMENTWISE_CHUNK } from '../swiglu/swiglu';

/** values per slice a thread takes, and below which one thread does it all */
const SLICE = 1 << 14;

export function addWasm(rt: WasmRuntime, a: Float32Array, b: Float32Array): Float32Array {
  const out = f32Out(a.length);
  for (let i = 0; i < a.length; i += ELEMENTWISE_CHUNK) {
    const n = Math.min(ELEMENTWISE_CHUNK, a.length - i);
    const n4 = (n + 3) & ~3;
    rt.arenaReset();
    const ao = rt.put(a.subarray(i, i + n)),
      bo = rt.put(b.subarray(i, i + n)),
      oo = rt.alloc(n4);
    rt.dispatch('add_steal', n4 < 2 * SLICE ? 1 : rt.threads, [ao, bo, oo, n4, COUNTER, SLICE]);
    out.set(rt.mem().subarray(oo >> 2, (oo >> 2) + n), i);
  }
  return out;
}
