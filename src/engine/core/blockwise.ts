/**
 * Blockwise 4-bit quantization (NF4, FP4) and the 8-bit double quantization of its scales, with bitsandbytes'
 * numerics:
 * - the absmax of each block of `blocksize` values of the flattened tensor (the last block may be partial);
 * - each value times the f32 reciprocal of its block's absmax, clamped to [−1, 1];
 * - the code whose value is nearest, by counting the f32 midpoints of the sorted code values that lie strictly
 *   below (torch.bucketize): a value exactly on a midpoint takes the lower one;
 * - two codes a byte, element 2j in the high nibble; an odd length pads with the code of 0.0;
 * - an all-zero block stores absmax 0 and the codes of 0.0.
 * Dequantization is code value × absmax in f32. Double quantization stores absmax − mean(absmax) with the signed
 * 8-bit dynamic map in blocks of 256, plus the mean (`offset`).
 */
import { UserError } from './errors';

export type QuantType = 'nf4' | 'fp4';
export const QUANT_TYPES: readonly QuantType[] = ['nf4', 'fp4'];
export const DEFAULT_BLOCKSIZE = 64;
export const NESTED_BLOCKSIZE = 256;

/** NF4 code values, code order 0..15 (the QLoRA paper's normal-quantile table) */
export const NF4 = new Float32Array([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495,
  0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0,
]);
/** FP4 (e2m1 with bias 3) code values: [0, 0.0625, 8, 12, 4, 6, 2, 3, 0, −…] / 12 in f32; code 8 is +0 too */
export const FP4 = new Float32Array([0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3].map((v) => Math.fround(v / 12)));

/** A code table sorted by value (a stable sort), the f32 midpoints, and sorted position → code. */
interface Search {
  mids: Float32Array;
  order: Uint8Array;
}
function searchOf(code: Float32Array): Search {
  const order = Uint8Array.from([...code.keys()].sort((a, b) => code[a] - code[b]));
  const mids = new Float32Array(code.length - 1);
  for (let i = 0; i < mids.length; i++) mids[i] = Math.fround(Math.fround(code[order[i]] + code[order[i + 1]]) / 2);
  return { mids, order };
}
const SEARCH: Record<QuantType, Search> = { nf4: searchOf(NF4), fp4: searchOf(FP4) };
export const codeTable = (t: QuantType): Float32Array => (t === 'nf4' ? NF4 : FP4);

/** the number of midpoints strictly below v: its position in the sorted table */
function bucket(mids: Float32Array, v: number): number {
  let lo = 0,
    hi = mids.length;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (mids[m] < v) lo = m + 1;
    else hi = m;
  }
  return lo;
}

const F32_TINY = Math.fround(1e-38);
/** the f32 reciprocal bitsandbytes scales by (an all-zero block scales its zeros by 1e38: codes of 0.0) */
const recip = (absmax: number) => Math.fround(1 / Math.max(absmax, F32_TINY));

export function checkBlocksize(b: number, what = 'block size'): void {
  if (!Number.isInteger(b) || b < 32 || b > 4096 || (b & (b - 1)) !== 0)
    throw new UserError(`${what} must be a power of two from 32 to 4096, got ${b}`);
}

/** absmax of each block of `blocksize` values */
export function blockAbsmax(x: Float32Array, blocksize: number): Float32Array {
  const n = Math.ceil(x.length / blocksize);
  const out = new Float32Array(n);
  for (let b = 0; b < n; b++) {
    let m = 0;
    const end = Math.min(x.length, (b + 1) * blocksize);
    for (let i = b * blocksize; i < end; i++) {
      const a = Math.abs(x[i]);
      if (a > m) m = a;
      else if (a !== a) throw new UserError(`cannot quantize: value ${i} is not a number`);
    }
    if (m === Infinity) throw new UserError(`cannot quantize: block ${b} holds an infinite value`);
    out[b] = m;
  }
  return out;
}

/** Quantize to packed 4-bit codes (length ⌈n/2⌉) and the f32 absmax of each block. */
export function quantize4bit(x: Float32Array, blocksize: number, type: QuantType): { packed: Uint8Array; absmax: Float32Array } {
  checkBlocksize(blocksize);
  const absmax = blockAbsmax(x, blocksize);
  const { mids, order } = SEARCH[type];
  const n = x.length;
  const packed = new Uint8Array((n + 1) >> 1);
  const zero = order[bucket(mids, 0)];
  for (let b = 0; b < absmax.length; b++) {
    const s = recip(absmax[b]);
    const end = Math.min(n, (b + 1) * blocksize);
    for (let i = b * blocksize; i < end; i++) {
      const v = Math.min(1, Math.max(-1, Math.fround(x[i] * s)));
      const q = order[bucket(mids, v)];
      if (i & 1) packed[i >> 1] |= q;
      else packed[i >> 1] = q << 4;
    }
  }
  if (n & 1) packed[n >> 1] |= zero;
  return { packed, absmax };
}

/** code value × absmax for every element: the f32 weights a quantized tensor stands for */
export function dequantize4bit(
  packed: Uint8Array,
  absmax: Float32Array,
  blocksize: number,
  type: QuantType,
  n: number,
  out = new Float32Array(n),
): Float32Array {
  const code = codeTable(type);
  for (let i = 0; i < n; i++) {
    const byte = packed[i >> 1];
    out[i] = Math.fround(code[i & 1 ? byte & 15 : byte >> 4] * absmax[Math.floor(i / blocksize)]);
  }
  return out;
}

// ---- 8-bit blockwise with the dynamic map: double quantization of the absmax ----

/**
 * bitsandbytes' signed dynamic map (create_dynamic_map(signed=True), 7 exponent bits, 8 bits), as torch builds
 * it in f32: 256 sorted values in [−0.993, 1]. Stored as f32 bits; test/golden checks it against torch.
 */
const DYNAMIC_HEX =
  'bf7e3333bf7a999abf770000bf736666bf6fcccdbf6c3333bf68999abf650000bf616666bf5dcccdbf5a3333bf56999abf530000bf4f6666bf4bcccdbf483333' +
  'bf44999abf410000bf3d6666bf39cccdbf363334bf32999abf2f0000bf2b6666bf27cccdbf243334bf20999abf1d0000bf196666bf15cccdbf123334bf0e999a' +
  'bf0b0000bf076666bf03ccccbf003333bef93332bef20000beeaccccbee3999abedc6666bed53333bece0000bec6ccccbebf999abeb86666beb13333beaa0000' +
  'bea2ccccbe9b999abe946666be8d3334be860000be7d9999be6f3333be60cccdbe526666be440000be35999abe273333be18cccdbe0a6666bdf80000bddb3334' +
  'bdc9eb85bdc428f7bdbe6667bdb8a3d7bdb2e148bdad1eb8bda75c2abda1999abd9bd70abd96147bbd9051ebbd8a8f5dbd84cccdbd7e147bbd728f5dbd670a3d' +
  'bd5b851fbd500000bd447ae1bd38f5c3bd2d70a3bd21eb85bd166667bd0ae148bcfeb852bce7ae15bcd0a3d7bcb9999abca28f5dbc8b851fbc68f5c3bc3ae148' +
  'bc1f3b64bc160418bc0ccccdbc039581bbf4bc6abbe24dd3bbcfdf3bbbbd70a4bbab020dbb989374bb8624ddbb676c8abb428f5cbb1db22dbaf1a9fcbaa7ef9d' +
  'ba7765ffba59e83eba3c6a80ba1eecc1ba016f01b9c7e283b98ce705b923d70bb8ba1f4bb88aefb3b8378034b7b24206b70205ffb65a1a94b513a3b700000000' +
  '3513a3b7365a1a94370205ff37b2420638378034388aefb338ba1f4b3923d70b398ce70539c7e2833a016f013a1eecc13a3c6a803a59e83e3a7765ff3aa7ef9d' +
  '3af1a9fc3b1db22d3b428f5c3b676c8a3b8624dd3b9893743bab020d3bbd70a43bcfdf3b3be24dd33bf4bc6a3c0395813c0ccccd3c1604183c1f3b643c3ae148' +
  '3c68f5c33c8b851f3ca28f5d3cb9999a3cd0a3d73ce7ae153cfeb8523d0ae1483d1666673d21eb853d2d70a33d38f5c33d447ae13d5000003d5b851f3d670a3d' +
  '3d728f5d3d7e147b3d84cccd3d8a8f5d3d9051eb3d96147b3d9bd70a3da1999a3da75c2a3dad1eb83db2e1483db8a3d73dbe66673dc428f73dc9eb853ddb3334' +
  '3df800003e0a66663e18cccd3e2733333e35999a3e4400003e5266663e60cccd3e6f33333e7d99993e8600003e8d33343e9466663e9b999a3ea2cccc3eaa0000' +
  '3eb133333eb866663ebf999a3ec6cccc3ece00003ed533333edc66663ee3999a3eeacccc3ef200003ef933323f0033333f03cccc3f0766663f0b00003f0e999a' +
  '3f1233343f15cccd3f1966663f1d00003f20999a3f2433343f27cccd3f2b66663f2f00003f32999a3f3633343f39cccd3f3d66663f4100003f44999a3f483333' +
  '3f4bcccd3f4f66663f5300003f56999a3f5a33333f5dcccd3f6166663f6500003f68999a3f6c33333f6fcccd3f7366663f7700003f7a999a3f7e33333f800000';
export const DYNAMIC_MAP = new Float32Array(
  Uint32Array.from({ length: 256 }, (_, i) => parseInt(DYNAMIC_HEX.slice(i * 8, i * 8 + 8), 16)).buffer,
);
const DYNAMIC_SEARCH = searchOf(DYNAMIC_MAP);

/** 8-bit blockwise quantization with a sorted 256-value map: one code a byte, f32 absmax per block */
export function quantize8bit(x: Float32Array, blocksize: number): { codes: Uint8Array; absmax: Float32Array } {
  const absmax = blockAbsmax(x, blocksize);
  const { mids } = DYNAMIC_SEARCH;
  const codes = new Uint8Array(x.length);
  for (let b = 0; b < absmax.length; b++) {
    const s = recip(absmax[b]);
    const end = Math.min(x.length, (b + 1) * blocksize);
    for (let i = b * blocksize; i < end; i++) codes[i] = bucket(mids, Math.min(1, Math.max(-1, Math.fround(x[i] * s))));
  }
  return { codes, absmax };
}

/** Double-quantized absmax: `codes` (one byte a block), per-256 `absmax`, the 8-bit `map` and the `offset`. */
export interface NestedAbsmax {
  codes: Uint8Array;
  absmax: Float32Array;
  map: Float32Array;
  offset: number;
  blocksize: number;
}

/**
 * torch's f32 mean on the CPU: its sum, then a division by the count in f32. The sum follows torch's reduction
 * order (aten SumKernel: 8-lane vectors as on AVX2, four interleaved accumulators, a four-level cascade, then the
 * scalar tail and the lanes in order), so the offset bitsandbytes stores is reproduced bit for bit where torch
 * reduces on one thread (up to 32768 scales; past that torch splits the sum by thread count and so differs
 * between machines itself, by an ulp or so).
 */
export function meanF32(x: Float32Array): number {
  return Math.fround(torchSumF32(x) / x.length);
}

const LANES = 8;
const ILP = 4;

/** torch's multi_row_sum: `rows` groups of ILP vectors (width w) starting at `at(i, k)`, cascaded in 4 levels */
function cascade(rows: number, w: number, at: (i: number, k: number) => number, x: Float32Array): Float32Array[] {
  const levels = 4;
  const power = Math.max(4, Math.floor(ceilLog2(rows) / levels));
  const step = 1 << power,
    mask = step - 1;
  const acc = Array.from({ length: levels }, () => Array.from({ length: ILP }, () => new Float32Array(w)));
  const add = (dst: Float32Array, i: number, k: number) => {
    const o = at(i, k);
    for (let l = 0; l < w; l++) dst[l] += x[o + l];
  };
  let i = 0;
  for (; i + step <= rows;) {
    for (let j = 0; j < step; j++, i++) for (let k = 0; k < ILP; k++) add(acc[0][k], i, k);
    for (let j = 1; j < levels; j++) {
      for (let k = 0; k < ILP; k++) {
        for (let l = 0; l < w; l++) acc[j][k][l] += acc[j - 1][k][l];
        acc[j - 1][k].fill(0);
      }
      if ((i & (mask << (j * power))) !== 0) break;
    }
  }
  for (; i < rows; i++) for (let k = 0; k < ILP; k++) add(acc[0][k], i, k);
  for (let j = 1; j < levels; j++) for (let k = 0; k < ILP; k++) for (let l = 0; l < w; l++) acc[0][k][l] += acc[j][k][l];
  return acc[0];
}
const ceilLog2 = (n: number) => (n <= 1 ? 0 : Math.ceil(Math.log2(n)));

function torchSumF32(x: Float32Array): number {
  const n = x.length;
  const w = n < LANES ? 1 : LANES; // short rows take torch's scalar path
  const vecs = Math.floor(n / w);
  const groups = Math.floor(vecs / ILP);
  const ps = cascade(groups, w, (i, k) => (i * ILP + k) * w, x);
  for (let v = groups * ILP; v < vecs; v++) for (let l = 0; l < w; l++) ps[0][l] += x[v * w + l];
  for (let k = 1; k < ILP; k++) for (let l = 0; l < w; l++) ps[0][l] += ps[k][l];
  if (w === 1) return ps[0][0];
  let total = 0;
  for (let i = vecs * w; i < n; i++) total = Math.fround(total + x[i]);
  for (let l = 0; l < w; l++) total = Math.fround(total + ps[0][l]);
  return total;
}

export function doubleQuantize(absmax: Float32Array): NestedAbsmax {
  const offset = meanF32(absmax);
  const centred = absmax.map((a) => Math.fround(a - offset));
  const { codes, absmax: nested } = quantize8bit(centred, NESTED_BLOCKSIZE);
  return { codes, absmax: nested, map: DYNAMIC_MAP, offset, blocksize: NESTED_BLOCKSIZE };
}

/** the f32 absmax that double-quantized scales stand for: map[code] × nested absmax + offset, in f32 */
export function nestedToAbsmax(d: NestedAbsmax, out = new Float32Array(d.codes.length)): Float32Array {
  for (let i = 0; i < d.codes.length; i++)
    out[i] = Math.fround(Math.fround(d.map[d.codes[i]] * d.absmax[Math.floor(i / d.blocksize)]) + d.offset);
  return out;
}
