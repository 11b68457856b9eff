// The matrix-vector products of decoding (x·Wᵀ with M ≤ 4 rows of x), in the plain and FMA builds of the kernels:
// gemv_steal and gemv_short_steal over f32,
// bf16 and f16 W, and qgemv_fast_steal over 4-bit W (NF4/FP4, plain or double-quantized scales), against the reference ops, on odd
// shapes; the same bits on any thread count, whether W is resident in the WebAssembly memory or copied in, and (for
// a half-float W) as its f32 widening. Also the resident heap itself and the bandwidth probe of the bench.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { COUNTER, HEAP_BASE, WasmRuntime } from '../../src/engine/ops/wasm';
import { gemm } from '../../src/engine/ops/matmul/gemm';
import { GemmArgs, matmulRef } from '../../src/engine/ops/matmul/reference';
import { qgemm, qmatrixOf } from '../../src/engine/ops/qmatmul/qgemm';
import { qgemvFast } from '../../src/engine/ops/qmatmul/qgemv';
import { qmatmulRef } from '../../src/engine/ops/qmatmul/reference';
import { Residency } from '../../src/engine/backend/cpu/resident';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { quantizeWeight } from '../../src/engine/core/qweight';
import { QuantType } from '../../src/engine/core/blockwise';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/engine/core/dtype';
import { Rng } from '../../src/engine/core/rng';
import { assertClose } from '../helpers';
import { joinedRuntime, simdBuilds } from './parity';

const rng = new Rng(11);
const randn = (n: number) => Float32Array.from({ length: n }, () => rng.normal());

/** one runtime per thread count, each with its heap, all of one build of the kernels (plain or FMA) */
function runtimes<T>(fma: boolean, f: (rts: { rt: WasmRuntime; res: Residency }[]) => T): T {
  // workers joined before the first product (joinedRuntime), so that 2 and 3 threads really split the work
  const rts = [1, 2, 3].map((t) => {
    const { rt, restore } = joinedRuntime(t, { fma });
    return { rt, restore, res: new Residency(rt) };
  });
  try {
    return f(rts);
  } finally {
    for (const { restore } of rts.reverse()) restore();
  }
}

for (const { build, fma } of simdBuilds()) {
  test(`gemv (${build}; f32, bf16, f16 W; M ≤ 4; odd N and K) matches the reference, with the same bits on 1–3 threads, resident or not`, () =>
    runtimes(fma, (rts) => {
      for (const [N, K] of [
        [1, 1],
        [3, 7],
        [5, 4],
        [37, 67],
        [130, 33],
        [300, 899],
        [611, 128],
        [37, 16], // short rows (LoRA's B): four at a time
        [9, 64],
        [4, 8],
      ])
        for (const M of [1, 2, 3, 4])
          for (const kind of ['f32', 'bf16', 'f16'] as const)
            for (const [alpha, beta] of [
              [1, 0],
              [0.5, 1],
            ]) {
              const f = randn(N * K);
              const b = kind === 'f32' ? f : kind === 'bf16' ? f32ToBf16(f) : f32ToF16(f);
              const wide = kind === 'f32' ? f : kind === 'bf16' ? bf16ToF32(b as Uint16Array) : f16ToF32(b as Uint16Array);
              const a = randn(M * K);
              const c0 = randn(M * N);
              const args = (bb: Float32Array | Uint16Array): GemmArgs => ({
                M,
                N,
                K,
                a,
                b: bb,
                bHalf: kind === 'f16' ? 'f16' : 'bf16',
                transB: true,
                alpha,
                beta,
                c: c0.slice(),
              });
              const want = args(wide);
              matmulRef(want);
              const what = `${kind} M=${M} N=${N} K=${K} α=${alpha} β=${beta}`;
              let first: Float32Array | null = null;
              for (const { rt, res } of rts)
                for (const resident of [false, true]) {
                  const bb = resident ? res.place(b)! : b;
                  const got = args(bb);
                  gemm(rt, got);
                  if (resident) res.release(bb);
                  assertClose(got.c, want.c, 2e-6 * K, 1e-5, what);
                  if (!first) first = got.c;
                  else assert.deepEqual(got.c, first, `${what}: threads ${rt.threads}, resident ${resident}`);
                }
              if (kind !== 'f32') {
                const asF32 = args(wide);
                gemm(rts[1].rt, asF32);
                assert.deepEqual(asF32.c, first, `${what}: the half-float W gives exactly what its f32 widening gives`);
              }
            }
    }));

  test(`the 4-bit gemv (${build}; NF4, FP4; plain and double-quantized scales; M ≤ 4) matches dequantize-then-multiply, the same on 1–3 threads, resident or not`, () =>
    runtimes(fma, (rts) => {
      for (const [R, C, bs, type, dq] of [
        [1, 32, 32, 'nf4', false],
        [3, 64, 64, 'nf4', true],
        [37, 192, 64, 'fp4', true],
        [5, 256, 128, 'nf4', false],
        [300, 64, 64, 'nf4', true], // 300 blocks: the nested scales' second block
        [129, 512, 256, 'fp4', false],
        [7, 96, 32, 'nf4', true],
      ] as [number, number, number, QuantType, boolean][]) {
        const w = randn(R * C);
        w[5] = 0;
        const q = quantizeWeight(w, [R, C], { type, blocksize: bs, doubleQuant: dq }, 'float32');
        assert.ok(qgemvFast(qmatrixOf(q)), 'these shapes take the SIMD kernel');
        for (const M of [1, 2, 3, 4])
          for (const beta of [0, 1] as const) {
            const x = randn(M * C);
            const c0 = randn(M * R);
            const want = c0.slice();
            qmatmulRef(x, M, q, true, want, beta);
            const what = `${type} dq=${dq} R=${R} C=${C} bs=${bs} M=${M} β=${beta}`;
            let first: Float32Array | null = null;
            for (const { rt, res } of rts)
              for (const resident of [false, true]) {
                const qq = resident ? res.placeQuant(q) : q;
                assert.equal(res.has(qq.packed), resident);
                const got = c0.slice();
                qgemm(rt, { M, x, w: qmatrixOf(qq), trans: true, c: got, beta });
                if (resident) res.releaseQuant(qq);
                assertClose(got, want, 3e-6 * C, 1e-5, what);
                if (!first) first = got;
                else assert.deepEqual(got, first, `${what}: threads ${rt.threads}, resident ${resident}`);
              }
          }
      }
    }));
}

test('the resident heap lies above the arena, at 2 GiB (offsets past 2^31), reuses and merges freed blocks, and refuses past HEAP_LIMIT', () => {
  const rt = new WasmRuntime(1);
  const keep = WasmRuntime.HEAP_LIMIT;
  try {
    const a = rt.hold(1000),
      b = rt.hold(3000),
      c = rt.hold(100);
    assert.ok(HEAP_BASE <= a && a < b && b < c, 'bump allocation from HEAP_BASE');
    rt.arenaReset();
    assert.ok(rt.alloc(10) < HEAP_BASE, 'the arena keeps its first 2 GiB');
    assert.equal(rt.arenaBytes(), 1 << 20, 'the heap is not workspace: the arena counts, at least 1 MiB');
    rt.unhold(a);
    rt.unhold(b);
    assert.equal(rt.hold(3900), a, 'two freed neighbours merge into one hole, reused first-fit');
    rt.unhold(c);
    assert.equal(rt.heldBytes(), 3904);
    WasmRuntime.HEAP_LIMIT = rt.hold(16) - HEAP_BASE + 4096;
    assert.equal(rt.hold(1 << 20), -1, 'past the limit: refused');
  } finally {
    WasmRuntime.HEAP_LIMIT = keep;
    rt.dispose();
  }
});

test('the CPU backend keeps weights resident (read gives a copy) and computes the same bits past a full heap', () => {
  const keep = WasmRuntime.HEAP_LIMIT;
  const wf = f32ToBf16(randn(40 * 24));
  const qw = quantizeWeight(randn(50 * 64), [50, 64], { type: 'nf4', blocksize: 64, doubleQuant: true }, 'float32');
  const af = randn(16 * 24),
    xf = randn(3 * 24),
    x2f = randn(2 * 64);
  const run = (limit: number) => {
    WasmRuntime.HEAP_LIMIT = limit;
    const be = new CpuBackend({ threads: 2 });
    try {
      const w = be.uploadWeight({ dtype: 'BF16', shape: [40, 24], data: wf }, [40, 24]);
      const q = be.uploadQuantized(qw);
      const a = be.upload(af.slice(), [16, 24], 'lora');
      if (limit === keep) {
        const r = be.read(a);
        r[0] = 123;
        assert.notEqual(be.read(a)[0], 123, 'read gives a copy of a resident tensor');
      }
      const x = be.upload(xf.slice(), [3, 24], 'activations');
      const x2 = be.upload(x2f.slice(), [2, 64], 'activations');
      return [be.linear(x, w), be.matmul(x, a, { transB: true }, 'activations'), be.linear(x2, q)].map((t) => be.read(t).slice());
    } finally {
      be.dispose();
    }
  };
  try {
    const resident = run(keep);
    const host = run(64); // nothing fits: every operand is copied in per call
    assert.deepEqual(resident, host);
  } finally {
    WasmRuntime.HEAP_LIMIT = keep;
  }
});

test("the bench's bandwidth probe reads every byte once, across the threads", () => {
  const rt = new WasmRuntime(2);
  try {
    rt.arenaReset();
    const n = 1 << 18; // floats
    const base = rt.alloc(n);
    const out = rt.alloc(8);
    const i32 = new Int32Array(rt.buffer(), base, n);
    for (let i = 0; i < n; i++) i32[i] = i % 7;
    rt.dispatch('read_steal', 2, [base, n * 4, 4096, COUNTER, out]);
    const sums = new Int32Array(rt.buffer(), out, 8);
    let got = 0;
    for (const s of sums) got += s;
    let want = 0;
    for (let i = 0; i < n; i++) want += i % 7;
    assert.equal(got, want);
  } finally {
    rt.dispose();
  }
});
