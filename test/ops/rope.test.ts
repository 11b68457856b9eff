// RoPE: the inverse rotation (the backward pass) against finite differences, and the WGSL kernel against the reference.
import { test } from 'node:test';
import * as ref from '../../src/engine/ops/rope/reference';
import { T, fdCheck, gpu, gpuSkip, rand, same } from './parity';

test('rope backward (the inverse rotation) matches finite differences', () => {
  const N = 5, H = 2, D = 6, P = 8;
  const x = rand(N * H * D), g = rand(N * H * D);
  const pos = Int32Array.from([0, 1, 4, 2, 7]);
  const cos = new Float32Array(P * 3), sin = new Float32Array(P * 3);
  for (let p = 0; p < P; p++) for (let i = 0; i < 3; i++) [cos[p * 3 + i], sin[p * 3 + i]] = [Math.cos(p * (i + 1) * 0.3), Math.sin(p * (i + 1) * 0.3)];
  const dx = ref.ropeForward(g, N, H, D, pos, cos, sin, true);
  fdCheck('rope', x, (xx) => ref.ropeForward(xx, N, H, D, pos, cos, sin), g, dx);
});

test('the WGSL RoPE matches the reference, forward and inverse', { skip: gpuSkip() }, () => {
  const g = gpu()!;
  const N = 7;
  const heads = 3, D = 8, P = 16;
  const pos = Int32Array.from({ length: N }, (_, i) => (i * 5) % P);
  for (const inverse of [false, true])
    same(g, `rope inverse=${inverse}`, [T([N, heads * D]), T([P, D / 2]), T([P, D / 2])], (be, [x, cos, sin]) => be.rope(x, heads, pos, { cos, sin }, inverse));
});
