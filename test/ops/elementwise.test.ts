// Elementwise ops, row copies and reductions: the reference pinned to hand-worked values, and the WebAssembly add
// and the WGSL kernels against the reference.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { T, gpu, gpuSkip, gpus, same, joinedBackend } from './parity';
import { add, addBias, axpy, sumSquares } from '../../src/engine/ops/elementwise/reference';
import { assertClose } from '../helpers';

test('the reference axpy (s = 1 and s ≠ 1) and the bias added to every row', () => {
  const a = Float32Array.of(1, 2, 3);
  axpy(a, Float32Array.of(10, 20, 30), 1);
  assert.deepEqual([...a], [11, 22, 33]);
  axpy(a, Float32Array.of(2, 4, 6), -0.5);
  assert.deepEqual([...a], [10, 20, 30]);
  const y = Float32Array.of(0, 0, 0, 1, 1, 1); // (N = 2, M = 3)
  addBias(y, Float32Array.of(1, 2, 4), 2, 3);
  assert.deepEqual([...y], [1, 2, 4, 2, 3, 5]);
});

test('the WGSL add, mul, axpy, scale, row copies and sum of squares match the reference', { skip: gpuSkip() }, () => {
  const g = gpu()!;
  const [N, C] = [7, 37];
  same(g, 'add, mul, axpy, scale', [T([N, C]), T([N, C])], (be, [a, b]) => {
    const s = be.add(a, b);
    const m = be.mul(a, b);
    be.addInPlace(s, m, -0.5);
    be.scaleInPlace(m, 3);
    return [s, m];
  });
  same(g, 'slice and set rows', [T([N, C]), T([2, C])], (be, [a, b]) => {
    const s = be.sliceRows(a, 2, 3);
    be.setRows(a, 4, b);
    return [s, a];
  });
});

test(
  'the WGSL sum of squares, of one tensor and of many into one scalar, matches the reference on each kernel path',
  { skip: gpuSkip() },
  () => {
    const shapes = [[1000, 3], [1], [37], [4097, 2]];
    const ins = shapes.map((s) => T(s));
    const want = ins.reduce((a, x) => a + sumSquares(x.data), 0);
    for (const [path, g] of gpus()) {
      same(g, `sum of squares (${path})`, [T([1000, 3])], (be, [x]) => be.sumSquares(x), 1e-3, 1e-5);
      const ts = ins.map((x) => g.upload(x.data.slice(), x.shape, 'activations'));
      const all = g.sumSquaresAll(ts);
      assertClose(g.read(all), [want], 1e-3, 1e-5, `sum of squares of ${shapes.length} tensors (${path})`);
      g.free(all, ...ts);
    }
  },
);

for (const threads of [1, 2])
  test(`the WebAssembly add (${threads} thread${threads > 1 ? 's' : ''}) gives the reference bit for bit, odd lengths included`, () => {
    const be = joinedBackend(threads);
    for (const n of [3, 70001]) {
      const a = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 1e3),
        b = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.7) / 3);
      assert.deepEqual(be.read(be.add(be.upload(a, [n], 'activations'), be.upload(b, [n], 'activations'))), add(a, b), `n ${n}`);
    }
    be.dispose();
  });
