/**
 * GGUF reading: the header, metadata and tensor infos of a GGUF file, and a tensor's bytes. Enough to check what
 * lorakit wrote and to describe a GGUF file; the values are checked as they are read.
 */
import * as fs from 'node:fs';
import { UserError } from '../core/errors';
import { BLOCK, GGUF_ALIGNMENT, GGUF_MAGIC, GgmlType, GgufValue } from './gguf';

export type GgufScalar = number | bigint | boolean | string;
export interface GgufTensorInfo {
  name: string;
  /** numpy order (outermost first), as the writer was given it */
  shape: number[];
  type: GgmlType;
  /** absolute position of the data in the file */
  offset: number;
  bytes: number;
}
export interface GgufFile {
  version: number;
  kv: Map<string, GgufScalar | GgufScalar[]>;
  tensors: GgufTensorInfo[];
}

/** header sizes are bounded so that a corrupt file fails with a message, not an allocation of petabytes */
const MAX_HEADER = 1 << 30;

export function readGguf(file: string): GgufFile {
  const size = fs.statSync(file).size;
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(Math.min(size, MAX_HEADER));
    fs.readSync(fd, head, 0, head.length, 0);
    return parse(head, size, file);
  } finally {
    fs.closeSync(fd);
  }
}

function parse(b: Buffer, size: number, file: string): GgufFile {
  let p = 0;
  const bad = (what: string) => new UserError(`not a valid GGUF file: ${what}`, file);
  const need = (n: number) => {
    if (p + n > b.length) throw bad('the header ends early');
  };
  const u32 = () => (need(4), (p += 4), b.readUInt32LE(p - 4));
  const u64 = () => {
    need(8);
    const v = b.readBigUInt64LE(p);
    p += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`a size of ${v}`);
    return Number(v);
  };
  const string = () => {
    const n = u64();
    need(n);
    p += n;
    return b.toString('utf8', p - n, p);
  };
  const scalar = (type: GgufValue): GgufScalar => {
    switch (type) {
      case GgufValue.U8:
        return (need(1), b[p++]);
      case GgufValue.I8:
        return (need(1), (p += 1), b.readInt8(p - 1));
      case GgufValue.U16:
        return (need(2), (p += 2), b.readUInt16LE(p - 2));
      case GgufValue.I16:
        return (need(2), (p += 2), b.readInt16LE(p - 2));
      case GgufValue.U32:
        return u32();
      case GgufValue.I32:
        return (need(4), (p += 4), b.readInt32LE(p - 4));
      case GgufValue.F32:
        return (need(4), (p += 4), b.readFloatLE(p - 4));
      case GgufValue.BOOL:
        return (need(1), b[p++] !== 0);
      case GgufValue.STRING:
        return string();
      case GgufValue.U64:
        return (need(8), (p += 8), b.readBigUInt64LE(p - 8));
      case GgufValue.I64:
        return (need(8), (p += 8), b.readBigInt64LE(p - 8));
      case GgufValue.F64:
        return (need(8), (p += 8), b.readDoubleLE(p - 8));
      default:
        throw bad(`unknown value type ${type}`);
    }
  };
  if (u32() !== GGUF_MAGIC) throw bad('no GGUF magic');
  const version = u32();
  if (version !== 2 && version !== 3) throw bad(`version ${version} (2 and 3 are read)`);
  const nTensors = u64();
  const nKv = u64();
  const kv = new Map<string, GgufScalar | GgufScalar[]>();
  for (let i = 0; i < nKv; i++) {
    const key = string();
    const type = u32();
    if (type === GgufValue.ARRAY) {
      const item = u32();
      const n = u64();
      if (n > b.length - p) throw bad(`array "${key}" of ${n} items`);
      const arr: GgufScalar[] = new Array(n);
      for (let j = 0; j < n; j++) arr[j] = scalar(item);
      kv.set(key, arr);
    } else kv.set(key, scalar(type));
  }
  const tensors: GgufTensorInfo[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = string();
    const nd = u32();
    if (nd > 4) throw bad(`tensor "${name}" has ${nd} dimensions`);
    const ne: number[] = [];
    for (let d = 0; d < nd; d++) ne.push(u64());
    const type = u32() as GgmlType;
    const offset = u64();
    if (!BLOCK[type]) throw bad(`tensor "${name}" has a ggml type (${type}) lorakit does not read`);
    const [per, bytes] = BLOCK[type];
    const n = ne.reduce((a, x) => a * x, 1);
    tensors.push({ name, shape: ne.reverse(), type, offset, bytes: (n / per) * bytes });
  }
  const align = Number(kv.get('general.alignment') ?? GGUF_ALIGNMENT);
  const dataStart = p + ((align - (p % align)) % align);
  for (const t of tensors) {
    t.offset += dataStart;
    if (t.offset + t.bytes > size) throw bad(`tensor "${t.name}" runs past the end of the file`);
  }
  return { version, kv, tensors };
}

/** a tensor's stored bytes */
export function readGgufTensor(file: string, t: GgufTensorInfo): Uint8Array {
  const out = new Uint8Array(t.bytes);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, out, 0, t.bytes, t.offset);
  } finally {
    fs.closeSync(fd);
  }
  return out;
}
