// Dropout: the GPU uses the same mask as the CPU for a seed (made on the host by the reference).
import { test } from 'node:test';
import { T, gpu, gpuSkip, same } from './parity';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import * as assert from 'node:assert/strict';
import { assertClose } from '../helpers';

test('dropout on the GPU gives the same mask and output as the reference for a seed', { skip: gpuSkip() }, () => {
  const g = gpu()!;
  const [N, C] = [7, 37];
  same(g, 'dropout (same mask for a seed)', [T([N, C])], (be, [x]) => {
    const r = be.dropout(x, 0.3, 77);
    return [r.y, r.mask!];
  });
});

// hand-computed values (the arithmetic in the comments): the formula itself, with no torch needed
const F = (...v: number[]) => Float32Array.from(v);

test('dropout keeps each value with probability 1 − p, scaled by 1/(1 − p), and p = 0 is the identity', () => {
  const be = new CpuBackend({ wasm: false });
  const n = 20000;
  for (const p of [0.25, 0.5]) {
    const x = Float32Array.from({ length: n }, (_, i) => 1 + (i % 7)); // 1..7
    const { y, mask } = be.dropout(be.upload(x.slice(), [n], 'activations'), p, 12345);
    const yd = be.read(y);
    const md = be.read(mask!);
    let kept = 0;
    for (let i = 0; i < n; i++) {
      if (yd[i] === 0) {
        assert.equal(md[i], 0);
        continue;
      }
      kept++;
      // p = 0.25: x·4/3; p = 0.5: x·2
      assertClose([yd[i], md[i]], [x[i] / (1 - p), 1 / (1 - p)], 1e-6, 1e-6, `element ${i}, p ${p}`);
    }
    // kept ~ Binomial(n, 1 − p): 1 − p within 5 standard deviations (√(p(1−p)/n) ≤ 0.0036)
    assert.ok(Math.abs(kept / n - (1 - p)) < 0.018, `kept ${kept / n} of the values at p = ${p}`);
  }
  const x = be.upload(F(1, 2, 3), [3], 'activations');
  const r = be.dropout(x, 0, 1);
  assert.deepEqual([...be.read(r.y)], [1, 2, 3]);
  assert.equal(r.mask, null);
});
