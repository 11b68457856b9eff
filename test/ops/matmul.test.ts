// The matrix product: the WebAssembly gemm (plain and FMA builds) and the WGSL matmul against the three-loop reference,
// on shapes that are not tile multiples, in every transpose, with alpha/beta, blocked and half-precision operands.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { WasmRuntime } from '../../src/engine/ops/wasm';
import { gemm, gemmTnAt } from '../../src/engine/ops/matmul/gemm';
import { Residency } from '../../src/engine/backend/cpu/resident';
import { GemmArgs, matmulRef } from '../../src/engine/ops/matmul/reference';
import { Rng } from '../../src/engine/core/rng';
import { assertClose } from '../helpers';
import { T, gpuSkip, gpus, joinedRuntime, same, simdBuilds } from './parity';

const rng = new Rng(1);
const rand = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));

for (const { build, fma } of simdBuilds()) {
  test(`wasm gemm (${build}) matches the reference in every transpose, on shapes that are not tile multiples`, () => {
    const g = new WasmRuntime(2, { fma });
    try {
      for (const [M, N, K] of [
        [1, 1, 1],
        [3, 5, 7],
        [4, 8, 16],
        [17, 9, 300],
        [65, 130, 513],
        [1, 64, 33],
        [200, 3, 64],
      ]) {
        for (const transA of [false, true])
          for (const transB of [false, true])
            for (const [alpha, beta] of [
              [1, 0],
              [0.5, 1],
              [-2, 0.25],
            ]) {
              const a = rand(M * K);
              const b = rand(K * N);
              const c0 = rand(M * N);
              const args: GemmArgs = { M, N, K, a, b, transA, transB, alpha, beta, c: c0.slice() };
              const want = { ...args, c: c0.slice() };
              gemm(g, args);
              matmulRef(want);
              assertClose(args.c, want.c, 2e-6 * K * (Math.abs(alpha) + 1), 1e-5, `M=${M} N=${N} K=${K} tA=${transA} tB=${transB}`);
            }
      }
    } finally {
      g.dispose();
    }
  });

  test(`wasm gemm (${build}) splits problems across threads with identical results`, () => {
    const one = new WasmRuntime(1, { fma });
    const two = joinedRuntime(2, { fma });
    try {
      // panels split by rows (more row panels than column panels) and by columns
      for (const [M, N, K] of [
        [130, 60, 96],
        [30, 260, 300],
      ]) {
        const a = rand(M * K);
        const b = rand(K * N);
        const c1 = new Float32Array(M * N);
        const c2 = new Float32Array(M * N);
        gemm(one, { M, N, K, a, b, c: c1 });
        gemm(two.rt, { M, N, K, a, b, c: c2 });
        assert.deepEqual(c1, c2, `${M}×${N}×${K}`);
      }
    } finally {
      one.dispose();
      two.restore();
    }
  });

  test(`gemm_tn (${build}), Aᵀ·B with both operands read in place: the bits of the packed transA product, on 1 and 2 threads`, () => {
    for (const threads of [1, 2]) {
      const { rt, restore } = joinedRuntime(threads, { fma });
      try {
        // M the rank (not a multiple of 4 too), N columns past a panel, K tokens past a 256-step block
        for (const [M, N, K] of [
          [1, 1, 1],
          [7, 37, 300],
          [16, 768, 1024],
          [12, 5, 513],
        ])
          for (const acc of [false, true]) {
            const at = rand(K * M);
            const b = rand(K * N);
            const c0 = rand(M * N);
            const Np = (N + 7) & ~7;
            const Mp = (M + 3) & ~3;
            // packed: gemm()'s transA path; in place: gemmTnAt on At, B and C laid out in the arena
            const packed = c0.slice();
            gemm(rt, { M, N, K, a: at, b, transA: true, beta: acc ? 1 : 0, c: packed });
            rt.arenaReset();
            const pa = rt.alloc(K * M),
              pb = rt.alloc(K * N),
              pc = rt.alloc(Mp * Np);
            const f = rt.mem();
            f.set(at, pa >> 2);
            f.set(b, pb >> 2);
            for (let i = 0; i < M; i++) f.set(c0.subarray(i * N, (i + 1) * N), (pc >> 2) + i * Np);
            gemmTnAt(rt, { M, N, K, a: pa, lda: M * 4, b: pb, ldb: N * 4, c: pc, acc });
            const got = new Float32Array(M * N);
            for (let i = 0; i < M; i++) got.set(rt.mem().subarray((pc >> 2) + i * Np, (pc >> 2) + i * Np + N), i * N);
            assert.deepEqual(got, packed, `${M}×${N}×${K} acc ${acc}, ${threads} threads`);
            const want = { M, N, K, a: at, b, transA: true, beta: acc ? 1 : 0, c: c0.slice() };
            matmulRef(want);
            assertClose(got, want.c, 1e-4, 1e-4, `${M}×${N}×${K} vs the reference`);
          }
      } finally {
        restore();
      }
    }
  });

  test(`a bf16 B that is not transposed is read in place (gemm_bh): the bits of its f32 widening packed, on 1 and 2 threads (${build})`, async () => {
    const { f32ToBf16, bf16ToF32 } = await import('../../src/engine/core/dtype');
    for (const threads of [1, 2]) {
      const { rt: g, restore } = joinedRuntime(threads, { fma });
      try {
        // M not a multiple of 4, K past a 256-step block, N of several panels (split by rows, then by columns); C
        // added to (beta 1) or not
        for (const [M, N, K] of [
          [130, 96, 300],
          [20, 200, 300],
          [64, 8, 600],
          [7, 40, 5],
        ])
          for (const beta of [0, 1])
            for (const resident of [false, true]) {
              const a = rand(M * K);
              const host = f32ToBf16(rand(K * N));
              const b = resident ? (new Residency(g).place(host) as Uint16Array) : host;
              const c0 = rand(M * N);
              const got = { M, N, K, a, b, bHalf: 'bf16' as const, c: c0.slice(), beta };
              const want = { M, N, K, a, b: bf16ToF32(host), c: c0.slice(), beta };
              gemm(g, got);
              gemm(g, want);
              assert.deepEqual(got.c, want.c, `M=${M} N=${N} K=${K} beta=${beta} resident=${resident}, ${threads} threads`);
            }
      } finally {
        restore();
      }
    }
  });

  test(`products too large for the WebAssembly memory run in blocks of columns and K, with the same result (${build})`, () => {
    const g = new WasmRuntime(2, { fma });
    const keep = WasmRuntime.MAX_BYTES;
    WasmRuntime.MAX_BYTES = 24 * 1024; // forces blocks on these shapes
    try {
      for (const [M, N, K] of [
        [33, 70, 130],
        [5, 300, 17],
      ])
        for (const transA of [false, true])
          for (const transB of [false, true])
            for (const [alpha, beta] of [
              [1, 0],
              [0.5, 1],
              [2, -0.5],
            ]) {
              const a = rand(M * K),
                b = rand(K * N),
                c0 = rand(M * N);
              const got = { M, N, K, a, b, transA, transB, alpha, beta, c: c0.slice() };
              const want = { ...got, c: c0.slice() };
              gemm(g, got);
              matmulRef(want);
              assertClose(got.c, want.c, 2e-6 * K * 3, 1e-5, `blocked M=${M} N=${N} K=${K} tA=${transA} tB=${transB} α=${alpha} β=${beta}`);
            }
    } finally {
      WasmRuntime.MAX_BYTES = keep;
      g.dispose();
    }
  });

  test(`half-float B operands (weights kept in bf16 or f16) are widened exactly, in the matrix and matrix-vector paths (${build})`, async () => {
    const { f32ToBf16, f32ToF16 } = await import('../../src/engine/core/dtype');
    const g = new WasmRuntime(2, { fma });
    try {
      for (const [M, N, K] of [
        [1, 37, 67],
        [3, 16, 8],
        [4, 300, 130],
        [5, 20, 9],
        [17, 33, 64],
        [9, 523, 201], // packed by both threads, a partial last panel and a k tail
      ])
        for (const transB of [true, false])
          for (const bHalf of ['bf16', 'f16'] as const)
            for (const resident of M === 9 ? [false, true] : [false]) {
              const a = rand(M * K);
              const f = rand(K * N);
              f[0] = 3e-6; // an f16 subnormal
              f[1] = -65504; // the largest f16
              f[2] = -0;
              const host = bHalf === 'f16' ? f32ToF16(f) : f32ToBf16(f);
              // resident: packed from where it lies in the heap (as a base weight is), not from a copy
              const b = resident ? (new Residency(g).place(host) as Uint16Array) : host;
              const got = { M, N, K, a, b, bHalf, transB, c: new Float32Array(M * N), alpha: 0.5, beta: 0 };
              const want = { ...got, b: host, c: new Float32Array(M * N) };
              gemm(g, got);
              matmulRef(want);
              assertClose(got.c, want.c, 2e-6 * K, 1e-5, `${bHalf} M=${M} N=${N} K=${K} tB=${transB} resident=${resident}`);
            }
    } finally {
      g.dispose();
    }
  });
}

test(
  'WGSL matmul and linear match the reference in every transpose, with alpha/beta and a bias, on each kernel path',
  { skip: gpuSkip() },
  () => {
    for (const [path, g] of gpus())
      for (const [M, N, K] of [
        [1, 1, 1],
        [3, 5, 7],
        [17, 33, 20],
        [40, 9, 129],
      ]) {
        for (const transA of [false, true])
          for (const transB of [false, true]) {
            const a = T(transA ? [K, M] : [M, K]),
              b = T(transB ? [N, K] : [K, N]),
              c = T([M, N]);
            same(g, `matmul ${M}×${N}×${K} tA=${transA} tB=${transB} (${path})`, [a, b, c], (be, [x, y, z]) =>
              be.matmul(x, y, { transA, transB, alpha: 0.5, out: z, beta: 1 }, 'activations'),
            );
          }
        const x = T([M, K]),
          w = T([N, K]),
          bias = T([N]);
        same(g, `linear ${M}×${N}×${K} (${path})`, [x, w, bias], (be, [xx, ww, bb]) => be.linear(xx, ww, bb));
      }
  },
);

test(
  'WGSL linear and its backward with bf16 and f16 weights (f16 read as f16 where the adapter has shader-f16) match the reference',
  { skip: gpuSkip() },
  async () => {
    const { f32ToBf16, f32ToF16 } = await import('../../src/engine/core/dtype');
    for (const [path, g] of gpus())
      for (const [M, N, K] of [
        [1, 37, 67],
        [17, 33, 130],
        [70, 65, 64],
      ])
        for (const dtype of ['BF16', 'F16'] as const) {
          const f = rand(N * K);
          f[0] = 3e-6; // an f16 subnormal
          f[1] = -65504; // the largest f16
          const data = dtype === 'F16' ? f32ToF16(f) : f32ToBf16(f);
          const x = T([M, K]),
            dy = T([M, N]);
          same(
            g,
            `${dtype} linear ${M}×${N}×${K} (${path})`,
            [x, dy],
            (be, [xx, dd]) => {
              const w = be.uploadWeight({ dtype, shape: [N, K], data }, [N, K]);
              return [be.linear(xx, w), be.linearBackward(dd, w)];
            },
            2e-6 * K * 3,
            1e-5,
          );
        }
  },
);
