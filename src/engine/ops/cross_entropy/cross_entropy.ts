/** Cross-entropy on the CPU with cross_entropy.wat: the gradient in place, the loss from per-row stats. reference.ts is the spec. */
import type { WasmRuntime } from '../wasm';
import { f32 } from '../../core/f32pool';

interface CrossEntropyFns {
  cross_entropy(x: number, N: number, V: number, t: number, g: number, stats: number): void;
}

export function crossEntropyWasm(rt: WasmRuntime, logits: Float32Array, targets: Int32Array, V: number, gradScale: number) {
  const N = targets.length;
  rt.arenaReset();
  const xo = rt.put(logits);
  const to = rt.putBytes(targets);
  const so = rt.alloc(6 * N); // (max, logit[target]) f64 pairs, then the sums
  rt.fns<CrossEntropyFns>(['cross_entropy']).cross_entropy(xo, N, V, to, gradScale, so);
  const f = rt.mem();
  const stats = new Float64Array(f.buffer, so, 3 * N);
  let loss = 0;
  let count = 0;
  for (let n = 0; n < N; n++)
    if (targets[n] >= 0) {
      loss += stats[2 * n] + Math.log(stats[2 * N + n]) - stats[2 * n + 1];
      count++;
    }
  const dlogits = f32(N * V);
  dlogits.set(f.subarray(xo >> 2, (xo >> 2) + N * V));
  return { loss, count, dlogits };
}
