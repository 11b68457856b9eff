/**
 * Cross-entropy on the CPU with cross_entropy.wat, rows shared among the threads: the gradient in place, the loss
 * from per-row stats. reference.ts is the spec.
 */
import { COUNTER, WasmRuntime, f32Bits } from '../wasm';
import { f32Out } from '../../core/f32pool';

export function crossEntropyWasm(rt: WasmRuntime, logits: Float32Array, targets: Int32Array, V: number, gradScale: number) {
  const N = targets.length;
  rt.arenaReset();
  const xo = rt.put(logits);
  const to = rt.putBytes(targets);
  const so = rt.alloc(6 * N); // (max, logit[target]) f64 pairs, then the sums
  const threads = N * V < 1 << 16 ? 1 : Math.min(rt.threads, N);
  const chunk = Math.max(1, Math.ceil(N / (4 * threads)));
  rt.dispatch('cross_entropy_steal', threads, [xo, N, V, to, f32Bits(gradScale), so, COUNTER, chunk]);
  const f = rt.mem();
  const stats = new Float64Array(f.buffer, so, 3 * N);
  let loss = 0;
  let count = 0;
  for (let n = 0; n < N; n++)
    if (targets[n] >= 0) {
      loss += stats[2 * n] + Math.log(stats[2 * N + n]) - stats[2 * n + 1];
      count++;
    }
  const dlogits = f32Out(N * V);
  dlogits.set(f.subarray(xo >> 2, (xo >> 2) + N * V));
  return { loss, count, dlogits };
}
