/** The bench's fused 4-bit matmul section: qgemm (NF4 + DQ) against the f32 gemm on an f32 copy of the same W. */
import * as os from 'node:os';
import { WasmRuntime } from '../engine/ops/wasm';
import { gemm } from '../engine/ops/matmul/gemm';
import { qgemm } from '../engine/ops/qmatmul/qgemm';
import { quantizeWeight, scalesOf } from '../engine/core/qweight';
import { NF4 } from '../engine/core/blockwise';
import { Rng } from '../engine/core/rng';
import { median } from '../bench-step';

/** the fused 4-bit dequant-matmul against the f32 gemm on the same shapes (all threads) */
export function qmatmulRows(): string[] {
  const rows: string[] = [];
  const g = new WasmRuntime(os.availableParallelism());
  const rng = new Rng(3);
  for (const [M, R, C] of [
    [1024, 768, 256],
    [1024, 256, 768],
    [512, 1536, 576],
    [1, 1536, 576],
  ] as [number, number, number][]) {
    const w = Float32Array.from({ length: R * C }, () => rng.normal() * 0.02);
    const q = quantizeWeight(w, [R, C], { type: 'nf4', blocksize: 64, doubleQuant: true }, 'float32');
    const qm = { packed: q.packed, scales: scalesOf(q), table: NF4, blocksize: 64, rows: R, cols: C };
    for (const trans of [true, false]) {
      const K = trans ? C : R,
        N = trans ? R : C;
      const x = Float32Array.from({ length: M * K }, () => rng.normal());
      const c = new Float32Array(M * N);
      const time = (f: () => void) => {
        const t: number[] = [];
        for (let r = 0; r < 7; r++) {
          const t0 = performance.now();
          f();
          t.push(performance.now() - t0);
        }
        return (2 * M * N * K) / median(t) / 1e6;
      };
      const gq = time(() => qgemm(g, { M, x, w: qm, trans, c }));
      const gf = time(() => gemm(g, { M, N, K, a: x, b: w, transB: trans, c }));
      const what = trans ? `x ${M}×${K} · Wᵀ (W ${R}×${C})` : `dY ${M}×${K} · W (W ${R}×${C})`;
      rows.push(`| ${what} | ${gq.toFixed(1)} | ${gf.toFixed(1)} | ${(gq / gf).toFixed(2)} |`);
      console.log(`qgemm ${what}: ${gq.toFixed(1)} GFLOP/s (f32 gemm ${gf.toFixed(1)})`);
    }
  }
  g.dispose();
  return rows;
}
