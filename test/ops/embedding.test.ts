// Embedding rows: the reference refuses ids outside the table; the WGSL kernel matches it (f32 here; half-precision
// and row-block tables in the whole-model GPU tests).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { embeddingForward } from '../../src/engine/ops/embedding/reference';
import { T, gpuSkip, gpus, same } from './parity';

test('the reference gathers rows by id and refuses an id outside the table', () => {
  const table = Float32Array.from({ length: 12 }, (_, i) => i); // (V=4, C=3)
  assert.deepEqual([...embeddingForward(Int32Array.of(2, 0, 2), table, 3)], [6, 7, 8, 0, 1, 2, 6, 7, 8]);
  assert.throws(() => embeddingForward(Int32Array.of(4), table, 3), /token id 4 is outside the embedding table \(4 rows\)/);
  assert.throws(() => embeddingForward(Int32Array.of(-1), table, 3), /token id -1/);
});

test('the WGSL embedding matches the reference: f32, bf16 and f16 tables, on each kernel path', { skip: gpuSkip() }, async () => {
  const { f32ToBf16, f32ToF16 } = await import('../../src/engine/core/dtype');
  const C = 37;
  const ids = Int32Array.from([3, 0, 9, 9, 1]);
  const table = T([10, C]);
  for (const [path, g] of gpus()) {
    same(g, `embedding (${path})`, [table], (be, [tab]) => be.embedding(ids, tab));
    for (const dtype of ['BF16', 'F16'] as const) {
      const data = dtype === 'F16' ? f32ToF16(table.data) : f32ToBf16(table.data);
      same(
        g,
        `${dtype} embedding (${path})`,
        [],
        (be) => be.embedding(ids, be.uploadWeight({ dtype, shape: [10, C], data }, [10, C])),
        0,
        0,
      );
    }
  }
});
