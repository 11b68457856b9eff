// AdamW: the WGSL kernel against the reference step.
import { test } from 'node:test';
import { T, gpu, gpuSkip, rand, same } from './parity';

test('the WGSL AdamW step matches the reference (weight decay, bias correction at step 3)', { skip: gpuSkip() }, () => {
  const g = gpu()!;
  const [N, C] = [7, 37];
  same(g, 'adamw', [T([N, C]), T([N, C]), T([N, C], 0.1), { data: rand(N * C).map((v) => v * v), shape: [N, C] }], (be, [p, g, m, v]) => {
    be.adamw(p, g, m, v, { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 3 });
    return [p, m, v];
  });
});
