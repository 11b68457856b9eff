/**
 * GGUF writing (version 3, little-endian), the file format of llama.cpp: a header, metadata key/values, tensor
 * infos, then the tensor data, each tensor aligned to `general.alignment` (32). The file is written streaming:
 * the header is built in memory, then each tensor's bytes are made and written one at a time, into a temporary
 * file renamed over the target at the end.
 */
import * as fs from 'node:fs';
import { writeStreamAtomic } from '../core/fsx';
import { f32ToBf16, f32ToF16, f32ToF16One } from '../core/dtype';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
export const GGUF_VERSION = 3;
export const GGUF_ALIGNMENT = 32;

/** metadata value types */
export enum GgufValue {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
}

/** the ggml tensor types lorakit writes */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
  BF16 = 30,
}

/** llama.cpp's general.file_type (LlamaFileType) for each output type */
export const FILE_TYPE: Record<GgmlType, number> = {
  [GgmlType.F32]: 0,
  [GgmlType.F16]: 1,
  [GgmlType.Q4_0]: 2,
  [GgmlType.Q8_0]: 7,
  [GgmlType.BF16]: 32,
};

/** elements per block and bytes per block */
export const BLOCK: Record<GgmlType, [number, number]> = {
  [GgmlType.F32]: [1, 4],
  [GgmlType.F16]: [1, 2],
  [GgmlType.BF16]: [1, 2],
  [GgmlType.Q8_0]: [32, 34],
  [GgmlType.Q4_0]: [32, 18],
};

export type KvValue =
  | { type: GgufValue.STRING; value: string }
  | { type: GgufValue.U32 | GgufValue.I32 | GgufValue.F32 | GgufValue.U64 | GgufValue.F64; value: number }
  | { type: GgufValue.BOOL; value: boolean }
  | { type: GgufValue.ARRAY; itemType: GgufValue.STRING; value: string[] }
  | { type: GgufValue.ARRAY; itemType: GgufValue.I32 | GgufValue.U32 | GgufValue.F32; value: ArrayLike<number> };

export interface TensorToWriteGguf {
  name: string;
  /** numpy/PyTorch order (outermost first); GGUF stores it reversed (ne[0] is the row length) */
  shape: number[];
  type: GgmlType;
  /** the tensor's bytes in `type`, made when its turn comes */
  data: () => Uint8Array;
}

export const str = (value: string): KvValue => ({ type: GgufValue.STRING, value });
export const u32 = (value: number): KvValue => ({ type: GgufValue.U32, value });
export const f32 = (value: number): KvValue => ({ type: GgufValue.F32, value });
export const bool = (value: boolean): KvValue => ({ type: GgufValue.BOOL, value });
export const strs = (value: string[]): KvValue => ({ type: GgufValue.ARRAY, itemType: GgufValue.STRING, value });
export const i32s = (value: ArrayLike<number>): KvValue => ({ type: GgufValue.ARRAY, itemType: GgufValue.I32, value });
export const f32s = (value: ArrayLike<number>): KvValue => ({ type: GgufValue.ARRAY, itemType: GgufValue.F32, value });

/** bytes of a tensor of `n` elements per row … in `type` */
export function tensorBytes(shape: number[], type: GgmlType): number {
  const [per, bytes] = BLOCK[type];
  const n = shape.reduce((a, b) => a * b, 1);
  return (n / per) * bytes;
}

/** whether rows of this length can be stored in `type` (block types need whole blocks per row) */
export function fitsBlocks(shape: number[], type: GgmlType): boolean {
  return shape[shape.length - 1] % BLOCK[type][0] === 0;
}

const pad = (n: number, a = GGUF_ALIGNMENT) => (a - (n % a)) % a;

/** A growable little-endian byte buffer for the header. */
class Bytes {
  private buf = Buffer.alloc(1 << 16);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }
  i32(v: number): void {
    this.room(4);
    this.buf.writeInt32LE(v, this.length);
    this.length += 4;
  }
  u64(v: number): void {
    this.room(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.length);
    this.length += 8;
  }
  f32(v: number): void {
    this.room(4);
    this.buf.writeFloatLE(v, this.length);
    this.length += 4;
  }
  f64(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.length);
    this.length += 8;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v;
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.room(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
  }
  zeros(n: number): void {
    this.room(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeScalar(b: Bytes, type: GgufValue, v: number | boolean | string): void {
  switch (type) {
    case GgufValue.STRING:
      return b.str(v as string);
    case GgufValue.U32:
      return b.u32(v as number);
    case GgufValue.I32:
      return b.i32(v as number);
    case GgufValue.F32:
      return b.f32(v as number);
    case GgufValue.U64:
      return b.u64(v as number);
    case GgufValue.F64:
      return b.f64(v as number);
    case GgufValue.BOOL:
      return b.u8(v ? 1 : 0);
    default:
      throw new Error(`GGUF value type ${type} is not written by lorakit`);
  }
}

/** The header: magic, version, counts, the key/values and the tensor infos, padded to the alignment. */
export function ggufHeader(kv: [string, KvValue][], tensors: { name: string; shape: number[]; type: GgmlType }[]): Uint8Array {
  const b = new Bytes();
  b.u32(GGUF_MAGIC);
  b.u32(GGUF_VERSION);
  b.u64(tensors.length);
  b.u64(kv.length);
  const seen = new Set<string>();
  for (const [key, v] of kv) {
    if (seen.has(key)) throw new Error(`GGUF key ${key} written twice`);
    seen.add(key);
    b.str(key);
    b.u32(v.type);
    if (v.type === GgufValue.ARRAY) {
      b.u32(v.itemType);
      b.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) writeScalar(b, v.itemType, v.value[i]);
    } else writeScalar(b, v.type, v.value);
  }
  let offset = 0;
  for (const t of tensors) {
    if (!fitsBlocks(t.shape, t.type)) throw new Error(`${t.name}: rows of ${t.shape.at(-1)} do not fill ${GgmlType[t.type]} blocks`);
    b.str(t.name);
    b.u32(t.shape.length);
    for (let i = t.shape.length - 1; i >= 0; i--) b.u64(t.shape[i]);
    b.u32(t.type);
    b.u64(offset);
    const n = tensorBytes(t.shape, t.type);
    offset += n + pad(n);
  }
  b.zeros(pad(b.length));
  return b.bytes();
}

export interface GgufWriteReport {
  bytes: number;
  tensors: number;
}

/**
 * Write a GGUF file atomically, one tensor at a time: `onTensor` is called before each tensor is made (for
 * progress), and a tensor's `data()` must give exactly the bytes its shape and type take.
 */
export function writeGguf(
  target: string,
  kv: [string, KvValue][],
  tensors: TensorToWriteGguf[],
  onTensor?: (name: string, i: number, n: number) => void,
): GgufWriteReport {
  const header = ggufHeader(kv, tensors);
  let bytes = 0;
  writeStreamAtomic(target, (fd) => {
    fs.writeSync(fd, header);
    bytes = header.length;
    const zeros = new Uint8Array(GGUF_ALIGNMENT);
    tensors.forEach((t, i) => {
      onTensor?.(t.name, i, tensors.length);
      const data = t.data();
      const want = tensorBytes(t.shape, t.type);
      if (data.byteLength !== want) throw new Error(`${t.name}: made ${data.byteLength} bytes, its shape and type take ${want}`);
      fs.writeSync(fd, data);
      fs.writeSync(fd, zeros, 0, pad(want));
      bytes += want + pad(want);
    });
  });
  return { bytes, tensors: tensors.length };
}

const asBytes = (a: Float32Array | Uint16Array | Uint8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** f32 values as the bytes of a tensor of `type` (rows already checked to fill whole blocks) */
export function encodeTensor(x: Float32Array, type: GgmlType): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return asBytes(x);
    case GgmlType.F16:
      return asBytes(f32ToF16(x));
    case GgmlType.BF16:
      return asBytes(f32ToBf16(x));
    case GgmlType.Q8_0:
      return quantizeQ8_0(x);
    case GgmlType.Q4_0:
      return quantizeQ4_0(x);
  }
}

/**
 * Q8_0, as ggml's reference quantizer: blocks of 32, each an f16 scale d = max|x|/127 and 32 int8 codes
 * round(x/d), rounded half away from zero.
 */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 34);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const o = b * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    dv.setUint16(b * 34, f32ToF16One(d), true);
    for (let j = 0; j < 32; j++) {
      const v = Math.fround(x[o + j] * id);
      dv.setInt8(b * 34 + 2 + j, Math.sign(v) * Math.round(Math.abs(v)));
    }
  }
  return out;
}

/**
 * Q4_0, as ggml's reference quantizer: blocks of 32, each an f16 scale d = m/−8 (m the value of largest
 * magnitude, with its sign) and 32 4-bit codes min(15, trunc(x/d + 8.5)); element j sits in the low nibble of
 * byte j, element j+16 in its high nibble.
 */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 18);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const o = b * 32;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++)
      if (Math.abs(x[o + j]) > amax) {
        amax = Math.abs(x[o + j]);
        max = x[o + j];
      }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    dv.setUint16(b * 18, f32ToF16One(d), true);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[o + j] * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[o + 16 + j] * id) + 8.5)));
      out[b * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}
