/** Element types of safetensors files and conversions between f32, f16 and bf16. */
export type DType = 'F32' | 'F16' | 'BF16' | 'U8' | 'I32' | 'I64';
export const DTYPE_BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2, U8: 1, I32: 4, I64: 8 };
export type TypedArray = Float32Array | Uint16Array | Uint8Array | Int32Array | BigInt64Array;

/** a tensor as read from a file, in its stored element type */
export interface HostTensor {
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bf16ToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const d = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) d[i] = src[i] << 16;
  return dst;
}

/** f32 → bf16 with round-to-nearest-even, NaN kept as a quiet NaN (torch's rule) */
export function f32ToBf16(src: Float32Array, dst = new Uint16Array(src.length)): Uint16Array {
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = s[i];
    if ((x & 0x7fffffff) > 0x7f800000) dst[i] = ((x >>> 16) | 0x40) & 0xffff;
    else dst[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return dst;
}

export function f16ToF32One(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function f16ToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) dst[i] = f16ToF32One(src[i]);
  return dst;
}

/** f32 → f16, round-to-nearest-even, overflow to ±inf */
export function f32ToF16One(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

export function f32ToF16(src: Float32Array, dst = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) dst[i] = f32ToF16One(src[i]);
  return dst;
}

/** Convert float data of any float dtype to f32 (a copy, or the same array when already f32). */
export function toF32(dtype: DType, data: TypedArray): Float32Array {
  if (dtype === 'F32') return data as Float32Array;
  if (dtype === 'BF16') return bf16ToF32(data as Uint16Array);
  if (dtype === 'F16') return f16ToF32(data as Uint16Array);
  throw new Error(`dtype ${dtype} is not a float type`);
}

export function fromF32(dtype: DType, data: Float32Array): TypedArray {
  if (dtype === 'F32') return data;
  if (dtype === 'BF16') return f32ToBf16(data);
  if (dtype === 'F16') return f32ToF16(data);
  throw new Error(`cannot write f32 data as ${dtype}`);
}

/** torch_dtype / --dtype names → safetensors dtype */
/** torch's names of the float dtypes (config.json's torch_dtype, bitsandbytes' quant_state dtype) */
export type TorchDtype = 'float32' | 'float16' | 'bfloat16';
export const TORCH_DTYPE: Partial<Record<DType, TorchDtype>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

export function parseFloatDType(name: string | undefined): DType | undefined {
  if (!name) return undefined;
  const n = name.toLowerCase().replace('torch.', '');
  if (n === 'float32' || n === 'f32' || n === 'fp32') return 'F32';
  if (n === 'float16' || n === 'f16' || n === 'fp16' || n === 'half') return 'F16';
  if (n === 'bfloat16' || n === 'bf16') return 'BF16';
  return undefined;
}
