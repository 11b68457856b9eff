// RMSNorm: the reference's backward against finite differences, and the WebAssembly and WGSL kernels against the
// reference.
import { test } from 'node:test';
import * as ref from '../../src/engine/ops/rmsnorm/reference';
import { T, fdCheck, gpuSkip, gpus, rand, same, joinedBackend } from './parity';
import { assertClose } from '../helpers';
import * as assert from 'node:assert/strict';

test('rmsnorm backward matches finite differences', () => {
  const N = 3,
    C = 7;
  const x = rand(N * C),
    w = rand(C),
    g = rand(N * C);
  const { rstd } = ref.rmsnormForward(x, w, N, C, 1e-6);
  const dx = ref.rmsnormBackward(g, x, w, rstd, N, C);
  fdCheck('rmsnorm', x, (xx) => ref.rmsnormForward(xx, w, N, C, 1e-6).y, g, dx);
});

test('the WGSL RMSNorm matches the reference, forward and backward, on each kernel path', { skip: gpuSkip() }, () => {
  // C = 1 (one lane), 37 (part of one subgroup's stride), 1000 (several strides of the workgroup), ±30 values
  for (const [path, g] of gpus())
    for (const [N, C, s] of [
      [7, 37, 1],
      [3, 1000, 30],
      [2, 1, 1],
    ]) {
      same(g, `rmsnorm ${N}×${C} (${path})`, [T([N, C], s), T([C])], (be, [x, w]) => {
        const r = be.rmsnorm(x, w, 1e-5);
        return [r.y, r.rstd];
      });
      same(g, `rmsnorm backward ${N}×${C} (${path})`, [T([N, C]), T([N, C], s), T([C])], (be, [dy, x, w]) =>
        be.rmsnormBackward(dy, x, w, be.rmsnorm(x, w, 1e-5).rstd),
      );
    }
});

// hand-computed values (the arithmetic in the comments): the formula itself, with no torch needed
const F = (...v: number[]) => Float32Array.from(v);

test('RMSNorm: y = x·w / √(mean(x²) + eps), eps inside the square root (eps = 1)', () => {
  const C = 4;
  const x = F(1, 1, 1, 3, /* row 2 */ 2, 0, 0, 0);
  const w = F(1, 2, 0.5, -1);
  const { y, rstd } = ref.rmsnormForward(x, w, 2, C, 1);
  // row 1: mean(x²) = (1 + 1 + 1 + 9)/4 = 3, 3 + 1 = 4, rstd = 1/2 (eps outside: 1/(√3 + 1) ≈ 0.366)
  // row 2: mean(x²) = 4/4 = 1, 1 + 1 = 2, rstd = 1/√2 (eps outside: 1/2)
  assertClose(rstd, [0.5, Math.SQRT1_2], 1e-7, 1e-6, 'rstd');
  // y = x·w·rstd: row 1 [1·1, 1·2, 1·0.5, 3·(−1)]/2; row 2 [2·1/√2, 0, 0, 0]
  assertClose(y, [0.5, 1, 0.25, -1.5, Math.SQRT2, 0, 0, 0], 1e-7, 1e-6, 'y');
});

test('RMSNorm backward: dx = r·w·dy − (r³/C)·x·Σ(dy·w·x), by hand', () => {
  const C = 4;
  const x = F(1, 1, 1, 3, 2, 0, 0, 0);
  const w = F(1, 2, 0.5, -1);
  const dy = F(1, 0, 0, 1, /* row 2 */ 0, 1, 0, 0);
  const { rstd } = ref.rmsnormForward(x, w, 2, C, 1);
  const dx = ref.rmsnormBackward(dy, x, w, rstd, 2, C);
  // row 1: r = 1/2, Σ dy·w·x = 1·1·1 + 1·(−1)·3 = −2, r³/C = (1/8)/4 = 1/32, so dx = w·dy/2 + x/16:
  //   [1/2 + 1/16, 0 + 1/16, 0 + 1/16, −1/2 + 3/16] = [9/16, 1/16, 1/16, −5/16]
  // row 2: r = 1/√2, Σ dy·w·x = 1·2·0 = 0, so dx = r·w·dy = [0, 2/√2, 0, 0]
  assertClose(dx, [9 / 16, 1 / 16, 1 / 16, -5 / 16, 0, Math.SQRT2, 0, 0], 1e-7, 1e-6, 'dx');
  // and with the rstd given by hand, the backward pass alone
  assertClose(
    ref.rmsnormBackward(dy, x, w, F(0.5, Math.SQRT1_2), 2, C),
    [9 / 16, 1 / 16, 1 / 16, -5 / 16, 0, Math.SQRT2, 0, 0],
    1e-7,
    1e-6,
    'dx (given rstd)',
  );
});

for (const threads of [1, 2])
  test(`the WebAssembly RMSNorm (${threads} thread${threads > 1 ? 's' : ''}) gives the reference bit for bit, forward and backward`, () => {
    const be = joinedBackend(threads);
    for (const [N, C] of [
      [2341, 7], // an odd row length
      [301, 256],
    ]) {
      const x = rand(N * C, 3),
        w = rand(C),
        dy = rand(N * C);
      const want = ref.rmsnormForward(x, w, N, C, 1e-5);
      const tx = be.upload(x, [N, C], 'activations');
      const tw = be.upload(w, [C], 'weights');
      const got = be.rmsnorm(tx, tw, 1e-5);
      assert.deepEqual(be.read(got.y), want.y, `y ${N}×${C}`);
      assert.deepEqual(be.read(got.rstd), want.rstd, `rstd ${N}×${C}`);
      const dx = be.rmsnormBackward(be.upload(dy, [N, C], 'activations'), tx, tw, got.rstd);
      assert.deepEqual(be.read(dx), ref.rmsnormBackward(dy, x, w, want.rstd, N, C), `dx ${N}×${C}`);
    }
    be.dispose();
  });
