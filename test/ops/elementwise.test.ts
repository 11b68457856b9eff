// Elementwise ops, row copies and reductions: the WGSL kernels against the reference.
import { test } from 'node:test';
import { T, gpu, gpuSkip, same } from './parity';

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
  same(g, 'slice, set and concat rows', [T([N, C]), T([2, C])], (be, [a, b]) => {
    const s = be.sliceRows(a, 2, 3);
    be.setRows(a, 4, b);
    return [s, a, be.concatRows(a, b)];
  });
  same(g, 'sum of squares', [T([1000, 3])], (be, [x]) => be.sumSquares(x), 1e-3, 1e-5);
});
