// The fused 4-bit (NF4/FP4) product: the WebAssembly kernel (plain and FMA builds) and the WGSL kernel against dequantize-then-multiply,
// forward (x·Wᵀ) and backward (dY·W), plain and double-quantized scales.
import { test } from 'node:test';
import { WasmRuntime } from '../../src/engine/ops/wasm';
import { matmulRef } from '../../src/engine/ops/matmul/reference';
import { qgemm } from '../../src/engine/ops/qmatmul/qgemm';
import { dequantizeWeight, quantizeWeight, scalesOf } from '../../src/engine/core/qweight';
import type { Backend } from '../../src/engine/core/backend';
import { Rng } from '../../src/engine/core/rng';
import { FP4, NF4, QuantType } from '../../src/engine/core/blockwise';
import { assertClose } from '../helpers';
import { gpuSkip, gpus, rand, reference, simdBuilds } from './parity';

const rng = new Rng(7);
const randn = (n: number) => Float32Array.from({ length: n }, () => rng.normal());

for (const { build, fma } of simdBuilds())
  test(`fused 4-bit matmul (${build}) equals dequantize-then-multiply, forward (x·Wᵀ) and backward (dY·W)`, () => {
    const g = new WasmRuntime(2, { fma });
    try {
      for (const [R, C, bs, type, dq] of [
        [8, 64, 64, 'nf4', true],
        [13, 29, 32, 'nf4', false], // odd element count: the padded last nibble
        [100, 70, 64, 'fp4', true], // 70 columns: blocks straddle rows
        [264, 96, 128, 'nf4', true],
        [1030, 257, 256, 'nf4', false], // many panels: several threads and grabs
      ] as [number, number, number, QuantType, boolean][]) {
        const q = quantizeWeight(randn(R * C), [R, C], { type, blocksize: bs, doubleQuant: dq }, 'float32');
        const w = dequantizeWeight(q);
        const qm = { packed: q.packed, scales: scalesOf(q), table: type === 'nf4' ? NF4 : FP4, blocksize: bs, rows: R, cols: C };
        for (const M of [1, 3, 37, 300]) {
          for (const trans of [true, false]) {
            const K = trans ? C : R,
              N = trans ? R : C;
            const x = randn(M * K);
            const c0 = randn(M * N);
            for (const beta of [0, 1] as const) {
              const got = c0.slice();
              qgemm(g, { M, x, w: qm, trans, c: got, beta });
              const want = c0.slice();
              matmulRef({ M, N, K, a: x, b: w, transB: trans, c: want, beta });
              assertClose(got, want, 3e-6 * K, 1e-5, `R=${R} C=${C} M=${M} trans=${trans} beta=${beta}`);
            }
          }
        }
      }
    } finally {
      g.dispose();
    }
  });

test(
  'the WGSL 4-bit matmul matches the reference, forward and backward, with more than 256 blocks, on each kernel path',
  { skip: gpuSkip() },
  () => {
    for (const [path, g] of gpus())
      for (const [R, C, bs, type, doubleQuant] of [
        [13, 29, 32, 'nf4', true],
        [40, 70, 64, 'fp4', false],
        [33, 64, 64, 'nf4', true],
        [300, 40, 32, 'nf4', true],
      ] as const) {
        // (the last: more than 256 blocks, so the nested scales' second block is read)
        const q = quantizeWeight(rand(R * C), [R, C], { type, blocksize: bs, doubleQuant }, 'float32');
        for (const M of [1, 5, 37]) {
          const x = rand(M * C),
            dy = rand(M * R),
            into = rand(M * C);
          const go = (be: Backend) => {
            const w = be.uploadQuantized(q);
            const y = be.read(be.linear(be.upload(x.slice(), [M, C], 'activations'), w)).slice();
            const dx = be
              .read(be.linearBackward(be.upload(dy.slice(), [M, R], 'activations'), w, be.upload(into.slice(), [M, C], 'activations')))
              .slice();
            return [y, dx];
          };
          const [wy, wdx] = go(reference),
            [gy, gdx] = go(g);
          assertClose(gy, wy, 1e-5, 1e-4, `4-bit ${type} x·Wᵀ ${M}×${R}×${C} (${path})`);
          assertClose(gdx, wdx, 1e-5, 1e-4, `4-bit ${type} dY·W ${M}×${R}×${C} (${path})`);
        }
      }
  },
);
