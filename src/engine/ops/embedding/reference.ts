/** The embedding lookup's spec: rows of a table by token id, range-checked. */
import { f32 } from '../../core/f32pool';

/** out (N, C) = table[ids] with table (V, C) */
export function embeddingForward(ids: Int32Array, table: Float32Array, C: number): Float32Array {
  const out = f32(ids.length * C);
  const V = table.length / C;
  for (let n = 0; n < ids.length; n++) {
    if (!(ids[n] >= 0 && ids[n] < V)) throw new RangeError(`token id ${ids[n]} is outside the embedding table (${V} rows)`);
    out.set(table.subarray(ids[n] * C, ids[n] * C + C), n * C);
  }
  return out;
}
