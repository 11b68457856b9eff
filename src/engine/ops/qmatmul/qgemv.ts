/**
 * The 4-bit matrix-vector products of decoding on the CPU: x·Wᵀ for a few rows of x and an NF4/FP4 W, its codes
 * read once, in place when resident. When W's blocks lie inside its rows (the columns a multiple of the block size,
 * as in every real model) `qgemv_fast_steal` (qgemv.wat) decodes 32 codes a load with SIMD table lookups and decodes
 * double-quantized scales itself; otherwise `qgemv_steal` (qgemm.wat) walks the codes one by one with f32 scales.
 * reference.ts is the spec.
 */
import { COUNTER, WasmRuntime } from '../wasm';
import { nestedToAbsmax } from '../../core/blockwise';
import { gemvSplit } from '../matmul/gemv';
import type { QGemmArgs, QMatrix } from './qgemm';

/** the f32 block scales (double quantization decoded: blocks/64 floats, transient) */
export function scalesOfQ(w: QMatrix): Float32Array {
  if (w.scales) return w.scales;
  if (w.nested) return nestedToAbsmax(w.nested);
  throw new Error('internal: a 4-bit matrix without scales');
}

/** whether the fast kernel applies: blocks of ≥ 32 that do not straddle rows */
export const qgemvFast = (w: QMatrix) => w.blocksize >= 32 && w.cols % w.blocksize === 0;

export function qgemv(rt: WasmRuntime, g: QGemmArgs): void {
  const n = g.M * g.w.rows;
  rt.arenaReset();
  const yo = qgemvFast(g.w) ? fast(rt, g) : general(rt, g);
  const y = rt.mem().subarray(yo >> 2, (yo >> 2) + n);
  if ((g.beta ?? 0) === 1) for (let i = 0; i < n; i++) g.c[i] += y[i];
  else g.c.set(y);
}

/** x permuted by 32-element groups: the 16 even elements, then the 16 odd ones (the high, then low nibbles) */
function permuteX(x: Float32Array, M: number, C: number, out: Float32Array): void {
  for (let m = 0; m < M; m++)
    for (let g = 0; g < C; g += 32) {
      const s = m * C + g;
      for (let j = 0; j < 16; j++) {
        out[s + j] = x[s + 2 * j];
        out[s + 16 + j] = x[s + 2 * j + 1];
      }
    }
}

function fast(rt: WasmRuntime, g: QGemmArgs): number {
  const { M, w } = g;
  const R = w.rows,
    C = w.cols;
  const qo = rt.at(w.packed);
  const d = w.nested;
  const so = rt.at(d ? d.codes : w.scales!);
  const nabs = d ? rt.at(d.absmax) : 0;
  const map = d ? rt.at(d.map) : 0;
  const xo = rt.alloc(M * C);
  const planes = rt.alloc(16);
  const yo = rt.alloc(M * R);
  const params = rt.alloc(16);
  const f = rt.mem();
  permuteX(g.x, M, C, f.subarray(xo >> 2, (xo >> 2) + M * C));
  // byte b of every table value: plane b
  const tb = new Uint8Array(w.table.buffer, w.table.byteOffset, 64);
  const pl = new Uint8Array(rt.buffer(), planes, 64);
  for (let c = 0; c < 16; c++) for (let b = 0; b < 4; b++) pl[b * 16 + c] = tb[c * 4 + b];
  const { threads, chunk } = gemvSplit(rt, R, C);
  const p = new Int32Array(rt.buffer(), params, 16);
  p.set([xo, M, qo, so, nabs, map, 0, d ? d.blocksize : 1, Math.log2(w.blocksize), R, C, yo, COUNTER, chunk, planes, d ? 1 : 0]);
  new Float32Array(rt.buffer(), params + 24, 1)[0] = d ? d.offset : 0;
  rt.dispatch('qgemv_fast_steal', threads, [params]);
  return yo;
}

/** blocks that straddle rows: the element-by-element kernel with a per-block scaled table, f32 scales */
function general(rt: WasmRuntime, g: QGemmArgs): number {
  const { M, w } = g;
  const R = w.rows,
    C = w.cols;
  const xo = rt.put(g.x.length === M * C ? g.x : g.x.subarray(0, M * C));
  const qo = rt.at(w.packed);
  const so = rt.at(scalesOfQ(w));
  const to = rt.put(w.table);
  const { threads: n } = gemvSplit(rt, R, C);
  const tab = rt.alloc(16 * n);
  const yo = rt.alloc(M * R);
  const params = rt.alloc(12);
  const chunk = Math.max(1, Math.ceil(R / (8 * n)));
  new Int32Array(rt.buffer(), params, 12).set([xo, M, qo, so, to, Math.log2(w.blocksize), R, C, yo, COUNTER, chunk, tab]);
  rt.dispatch('qgemv_steal', n, [params]);
  return yo;
}
