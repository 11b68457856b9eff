// Dropout: the GPU uses the same mask as the CPU for a seed (made on the host by the reference).
import { test } from 'node:test';
import { T, gpu, gpuSkip, same } from './parity';


test('dropout on the GPU gives the same mask and output as the reference for a seed', { skip: gpuSkip() }, () => {
  const g = gpu()!;
  const [N, C] = [7, 37];
  same(g, 'dropout (same mask for a seed)', [T([N, C])], (be, [x]) => {
    const r = be.dropout(x, 0.3, 77);
    return [r.y, r.mask!];
  });
});
