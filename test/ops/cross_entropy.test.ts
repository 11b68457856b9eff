// Cross-entropy: the gradient against finite differences, stability at ±30 logits, and the WebAssembly and WGSL
// kernels against the reference (odd sizes, masked rows).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as ref from '../../src/engine/ops/cross_entropy/reference';
import { assertClose } from '../helpers';
import { T, fdCheck, gpuSkip, gpus, rand, same, simdBuilds, joinedBackend } from './parity';

test('cross-entropy gradient matches finite differences, ignoring masked targets', () => {
  const N = 4,
    V = 9;
  const logits = rand(N * V, 3);
  const targets = Int32Array.from([2, -1, 8, 0]);
  const { dlogits, count } = ref.crossEntropy(logits, targets, V, 1);
  assert.equal(count, 3);
  const one = [1];
  fdCheck('cross-entropy', logits, (x) => [ref.crossEntropy(x, targets, V, 0).loss], one, dlogits, 1e-2);
  for (let j = 0; j < V; j++) assert.equal(dlogits[V + j], 0);
});
test('cross-entropy is stable for ±30 logits', () => {
  const V = 5;
  const logits = Float32Array.of(30, -30, 29, 0, -29);
  const { loss } = ref.crossEntropy(logits, Int32Array.of(2), V, 1);
  assert.ok(Math.abs(loss - (Math.log(Math.exp(0) + Math.exp(-1) + Math.exp(-59) + Math.exp(-30) + Math.exp(-58)) + 1)) < 1e-6);
});

for (const { build, fma } of simdBuilds())
  for (const [N, V] of [
    [7, 1003],
    [37, 2003], // enough to share the rows among both threads
  ])
    test(`WebAssembly cross-entropy (${build}) matches the reference (${N}×${V}, ±30 logits, masked rows)`, () => {
      const be = joinedBackend(2, { fma });
      const logits = rand(N * V, 10);
      logits[5] = 30;
      logits[V + 7] = -30;
      const targets = Int32Array.from({ length: N }, (_, i) => [5, -1, V - 1, 0, 17, -1, 500][i % 7]);
      const want = ref.crossEntropy(logits, targets, V, 0.25);
      const got = be.crossEntropy(be.upload(logits.slice(), [N, V], 'activations'), targets, 0.25);
      assert.equal(got.count, want.count);
      assert.ok(Math.abs(be.read(got.loss)[0] - want.loss) < 1e-5 * Math.abs(want.loss), `${be.read(got.loss)[0]} vs ${want.loss}`);
      assertClose(be.read(got.dlogits), want.dlogits, 1e-7, 1e-5, 'dlogits');
      be.dispose();
    });

test('the WGSL cross-entropy matches the reference, masked rows and ±30 logits included, on each kernel path', { skip: gpuSkip() }, () => {
  for (const [path, g] of gpus())
    for (const [N, V] of [
      [7, 37],
      [4, 1003],
    ]) {
      const targets = Int32Array.from({ length: N }, (_, i) => (i % 3 === 1 ? -1 : (i * 17) % V));
      const logits = T([N, V], 3);
      logits.data[5] = 30; // the row's max, far above the rest
      logits.data[V + 2] = -30;
      same(
        g,
        `cross-entropy ${N}×${V} (${path})`,
        [logits],
        (be, [x]) => {
          const r = be.crossEntropy(x, targets, 0.25);
          return [r.loss, r.dlogits];
        },
        1e-4,
        1e-4,
      );
    }
});

// hand-computed values (the arithmetic in the comments): the formula itself, with no torch needed
const F = (...v: number[]) => Float32Array.from(v);

test('cross-entropy: the summed loss, the scored count and (softmax − onehot)·gradScale, by hand', () => {
  const V = 4;
  // logits ln[1, 2, 3, 4]: softmax = [1, 2, 3, 4]/10; the second row is shifted by 100 (same softmax); the third is masked
  const row = [0, Math.log(2), Math.log(3), Math.log(4)];
  const logits = F(...row, ...row.map((v) => v + 100), 5, -5, 7, 1);
  const targets = Int32Array.of(3, 0, -1);
  const { loss, count, dlogits } = ref.crossEntropy(logits, targets, V, 0.5);
  assert.equal(count, 2);
  // −ln(4/10) − ln(1/10) = ln 2.5 + ln 10 = ln 25
  assertClose([loss], [Math.log(25)], 1e-5, 1e-6, 'loss');
  // row 1: ([.1, .2, .3, .4] − [0, 0, 0, 1])·0.5; row 2: ([.1, .2, .3, .4] − [1, 0, 0, 0])·0.5; row 3: 0
  assertClose(dlogits, [0.05, 0.1, 0.15, -0.3, -0.45, 0.1, 0.15, 0.2, 0, 0, 0, 0], 1e-6, 1e-5, 'dlogits');
});
