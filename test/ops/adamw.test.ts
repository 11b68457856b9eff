// AdamW: the reference step pinned to the formula where eps decides it, and the WGSL kernel against the reference.
import { test } from 'node:test';
import { T, gpu, gpuSkip, rand, same } from './parity';
import { adamwStep } from '../../src/engine/ops/adamw/reference';
import { assertClose } from '../helpers';

test('the reference AdamW step where eps matters: a gradient of 1e-9, and decay of a parameter with no gradient', () => {
  // step 1 from m = v = 0: m̂ = g, √v̂ = |g|, so the update is lr·g/(|g| + eps) = 0.1·1e-9/(1e-9 + 1e-8) = 0.1/11
  // (eps added, not subtracted); with g = 0 only the decoupled decay acts: p·(1 − lr·wd)
  const p = Float32Array.of(1, 2, -3);
  const g = Float32Array.of(1e-9, 0, -1e-9);
  const m = new Float32Array(3),
    v = new Float32Array(3);
  adamwStep(p, g, m, v, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5, step: 1 });
  assertClose(p, [1 * 0.95 - 0.1 / 11, 2 * 0.95, -3 * 0.95 + 0.1 / 11], 0, 1e-6, 'p');
});

test('the WGSL AdamW step matches the reference (weight decay, bias correction at step 3)', { skip: gpuSkip() }, () => {
  const g = gpu()!;
  const [N, C] = [7, 37];
  same(g, 'adamw', [T([N, C]), T([N, C]), T([N, C], 0.1), { data: rand(N * C).map((v) => v * v), shape: [N, C] }], (be, [p, g, m, v]) => {
    be.adamw(p, g, m, v, { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 3 });
    return [p, m, v];
  });
});
