// RMSNorm: the reference's backward against finite differences, and the WGSL kernels against the reference.
import { test } from 'node:test';
import * as ref from '../../src/engine/ops/rmsnorm/reference';
import { T, fdCheck, gpu, gpuSkip, rand, same } from './parity';

test('rmsnorm backward matches finite differences', () => {
  const N = 3, C = 7;
  const x = rand(N * C), w = rand(C), g = rand(N * C);
  const { rstd } = ref.rmsnormForward(x, w, N, C, 1e-6);
  const dx = ref.rmsnormBackward(g, x, w, rstd, N, C);
  fdCheck('rmsnorm', x, (xx) => ref.rmsnormForward(xx, w, N, C, 1e-6).y, g, dx);
});

test('the WGSL RMSNorm matches the reference, forward and backward', { skip: gpuSkip() }, () => {
  const g = gpu()!;
  const [N, C] = [7, 37];
  same(g, 'rmsnorm', [T([N, C]), T([C])], (be, [x, w]) => {
    const r = be.rmsnorm(x, w, 1e-5);
    return [r.y, r.rstd];
  });
  same(g, 'rmsnorm backward', [T([N, C]), T([N, C]), T([C])], (be, [dy, x, w]) => be.rmsnormBackward(dy, x, w, be.rmsnorm(x, w, 1e-5).rstd));
});
