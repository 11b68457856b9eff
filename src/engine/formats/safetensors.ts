/**
 * safetensors: an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
 * then the raw data. Headers are checked against the file before any tensor is read, and tensors are read
 * one at a time from disk, so a model never has to fit in memory twice.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { UserError } from '../core/errors';
import { DType, DTYPE_BYTES, HostTensor, TypedArray, toF32 } from '../core/dtype';

export interface TensorInfo {
  dtype: DType;
  shape: number[];
  begin: number; // byte offset from the start of the data section
  end: number;
}

export type { HostTensor } from '../core/dtype';

const MAX_HEADER = 100 * 1024 * 1024;

/** PyTorch pickle checkpoints, which lorakit never loads */
export const isPickle = (name: string) => /\.(bin|pt|pth|ckpt)$/.test(name);

export function pickleRefused(file: string, what = 'convert the model to safetensors first'): UserError {
  return new UserError(`pickle checkpoints are refused: loading them can run arbitrary code; ${what}`, file);
}

export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string> = {};
  private dataStart = 0;

  constructor(readonly file: string) {
    if (isPickle(file)) throw pickleRefused(file);
    regularFile(file);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (caught) {
      const e = caught as NodeJS.ErrnoException;
      throw new UserError(e.code === 'ENOENT' ? 'file not found' : `cannot open (${e.code})`, file);
    }
    try {
      this.parse(fd, fs.fstatSync(fd).size);
    } finally {
      fs.closeSync(fd);
    }
  }

  private parse(fd: number, size: number): void {
    const bad = (msg: string) => new UserError(`not a valid safetensors file: ${msg}`, this.file);
    if (size < 8) throw bad(`truncated: ${size} bytes, shorter than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(size - 8)) throw bad(`header length ${n} is larger than the file (${size} bytes)`);
    if (n > BigInt(MAX_HEADER)) throw bad(`header length ${n} exceeds ${MAX_HEADER} bytes`);
    const headerLen = Number(n);
    const hbuf = Buffer.alloc(headerLen);
    fs.readSync(fd, hbuf, 0, headerLen, 8);
    let header: any;
    try {
      header = JSON.parse(hbuf.toString('utf8'));
    } catch {
      throw bad('header is not JSON');
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('header is not an object');
    this.dataStart = 8 + headerLen;
    const dataSize = size - this.dataStart;
    const spans: [number, number, string][] = [];
    for (const [name, v] of Object.entries<any>(header)) {
      if (name === '__metadata__') {
        // the format says string → string; anything else is a damaged or foreign file
        if (!v || typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string'))
          throw bad('__metadata__ must map names to strings');
        Object.assign(this.metadata, v);
        continue;
      }
      if (!v || typeof v !== 'object') throw bad(`tensor "${name}" has no description`);
      const dtype = v.dtype as DType;
      if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype))
        throw bad(`tensor "${name}" has unknown dtype ${JSON.stringify(v.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
      const shape = v.shape;
      if (!Array.isArray(shape) || !shape.every((d: unknown) => Number.isSafeInteger(d) && (d as number) >= 0))
        throw bad(`tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
      const off = v.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d: unknown) => Number.isSafeInteger(d) && (d as number) >= 0))
        throw bad(`tensor "${name}" has invalid data_offsets ${JSON.stringify(off)}`);
      const [begin, end] = off as [number, number];
      const want = shape.reduce((a: number, b: number) => a * b, 1) * DTYPE_BYTES[dtype];
      if (end < begin || end - begin !== want)
        throw bad(`tensor "${name}" spans ${end - begin} bytes but ${dtype}${JSON.stringify(shape)} needs ${want}`);
      if (end > dataSize) throw bad(`tensor "${name}" ends at byte ${end} of the data, past its end (${dataSize} bytes; truncated file?)`);
      this.tensors.set(name, { dtype, shape, begin, end });
      spans.push([begin, end, name]);
    }
    spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (let i = 1; i < spans.length; i++)
      if (spans[i][0] < spans[i - 1][1]) throw bad(`tensors "${spans[i - 1][2]}" and "${spans[i][2]}" overlap`);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new UserError(`no tensor named "${name}"`, this.file);
    return t;
  }

  read(name: string): HostTensor {
    const t = this.info(name);
    const bytes = t.end - t.begin;
    const buf = new ArrayBuffer(bytes);
    const fd = fs.openSync(this.file, 'r');
    try {
      let done = 0;
      while (done < bytes) {
        const got = fs.readSync(fd, new Uint8Array(buf, done), 0, bytes - done, this.dataStart + t.begin + done);
        if (got === 0) throw new UserError(`truncated while reading "${name}"`, this.file);
        done += got;
      }
    } finally {
      fs.closeSync(fd);
    }
    return { dtype: t.dtype, shape: t.shape, data: typedView(t.dtype, buf) };
  }

  /** A float tensor as f32, whatever it is stored as. */
  readF32(name: string): Float32Array {
    const t = this.read(name);
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16')
      throw new UserError(`tensor "${name}" is ${t.dtype}, expected a float type`, this.file);
    return toF32(t.dtype, t.data);
  }
}

/**
 * Refuse what is not a regular file before opening it: a folder gives EISDIR on the first read, and opening a FIFO
 * waits for a writer for ever. Symbolic links are followed (Hugging Face's cache links snapshots into blobs/).
 */
function regularFile(file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (caught) {
    const e = caught as NodeJS.ErrnoException;
    throw new UserError(e.code === 'ENOENT' ? 'file not found' : `cannot open (${e.code})`, file);
  }
  if (!st.isFile()) throw new UserError(`not a regular file (${st.isDirectory() ? 'a folder' : 'a device, FIFO or socket'})`, file);
}

const IndexSchema = z.object(
  {
    weight_map: z.record(z.string(), z.string({ error: 'must be a shard file name' }), {
      error: 'has no "weight_map" object (tensor name → shard file name)',
    }),
  },
  { error: 'expected a JSON object with a "weight_map"' },
);

/**
 * A weight_map entry must name a plain file in the model folder: not empty, ".", "..", a path with a folder or
 * an absolute path, so an index cannot point the loader at a folder or outside the model. The file itself may be
 * a symbolic link to anywhere: Hugging Face's cache stores every shard as a link into its blobs/ folder.
 */
function isPlainFileName(shard: string): boolean {
  return shard !== '' && shard !== '.' && shard !== '..' && !/[/\\\0]/.test(shard) && !path.isAbsolute(shard);
}

function readWeightMap(index: string): Record<string, string> {
  regularFile(index);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(index, 'utf8'));
  } catch (caught) {
    const e = caught as NodeJS.ErrnoException;
    throw new UserError(`not a valid index (${e.message})`, index);
  }
  const r = IndexSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    const at = i.path.length === 2 ? `weight_map entry for ${JSON.stringify(i.path[1])} ` : '';
    throw new UserError(`not a valid index: ${at}${i.message}`, index);
  }
  // the parsed JSON, not zod's copy: that copy loses a "__proto__" entry (assigning it sets the prototype)
  const map = (json as { weight_map: Record<string, string> }).weight_map;
  for (const [name, shard] of Object.entries(map))
    if (typeof shard !== 'string')
      throw new UserError(`not a valid index: weight_map entry for ${JSON.stringify(name)} must be a shard file name`, index);
    else if (!isPlainFileName(shard))
      throw new UserError(
        `weight_map entry for ${JSON.stringify(name)} is ${JSON.stringify(shard)}, not the name of a file in the model folder`,
        index,
      );
  return map;
}

function typedView(dtype: DType, buf: ArrayBuffer): TypedArray {
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf);
    case 'F16':
    case 'BF16':
      return new Uint16Array(buf);
    case 'U8':
      return new Uint8Array(buf);
    case 'I32':
      return new Int32Array(buf);
    case 'I64':
      return new BigInt64Array(buf);
  }
}

/** All the tensors of a model folder: one `model.safetensors`, or shards listed by `model.safetensors.index.json`. */
export class TensorStore {
  private where = new Map<string, SafetensorsFile>();
  readonly files: SafetensorsFile[] = [];

  constructor(
    readonly dir: string,
    single = 'model.safetensors',
  ) {
    const index = path.join(dir, `${single}.index.json`);
    if (fs.existsSync(index)) {
      const map = readWeightMap(index);
      const opened = new Map<string, SafetensorsFile>();
      for (const [name, shard] of Object.entries(map)) {
        let f = opened.get(shard);
        if (!f) {
          f = new SafetensorsFile(path.join(dir, shard));
          opened.set(shard, f);
          this.files.push(f);
        }
        if (!f.tensors.has(name)) throw new UserError(`index lists "${name}" but the shard does not hold it`, f.file);
        this.where.set(name, f);
      }
      return;
    }
    const file = path.join(dir, single);
    if (!fs.existsSync(file)) {
      const entries = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
      const pickle = entries.find(isPickle);
      if (pickle) throw pickleRefused(path.join(dir, pickle));
      const other = entries.filter((e) => e.endsWith('.safetensors'));
      if (other.length === 1) {
        this.addFile(path.join(dir, other[0]));
        return;
      }
      throw new UserError(`no ${single} or ${single}.index.json found`, dir);
    }
    this.addFile(file);
  }

  private addFile(file: string): void {
    const f = new SafetensorsFile(file);
    this.files.push(f);
    for (const n of f.tensors.keys()) this.where.set(n, f);
  }

  has(name: string): boolean {
    return this.where.has(name);
  }
  names(): string[] {
    return [...this.where.keys()];
  }
  info(name: string): TensorInfo & { file: string } {
    const f = this.fileOf(name);
    return { ...f.info(name), file: f.file };
  }
  read(name: string): HostTensor {
    return this.fileOf(name).read(name);
  }
  readF32(name: string): Float32Array {
    return this.fileOf(name).readF32(name);
  }
  private fileOf(name: string): SafetensorsFile {
    const f = this.where.get(name);
    if (!f) throw new UserError(`the model has no tensor "${name}"`, this.dir);
    return f;
  }
}

/** parameters and bytes of every tensor a file or a model folder holds, and parameters by dtype */
export function tensorTotals(src: { names(): string[]; info(name: string): TensorInfo }): {
  params: number;
  bytes: number;
  dtypes: Record<string, number>;
} {
  const dtypes: Record<string, number> = {};
  let params = 0,
    bytes = 0;
  for (const n of src.names()) {
    const i = src.info(n);
    const k = i.shape.reduce((a, b) => a * b, 1);
    params += k;
    bytes += k * DTYPE_BYTES[i.dtype];
    dtypes[i.dtype] = (dtypes[i.dtype] ?? 0) + k;
  }
  return { params, bytes, dtypes };
}

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  /** the data, or a function that produces it when the writer reaches this tensor (streaming writes) */
  data: TypedArray | (() => TypedArray);
}

/**
 * Write a safetensors file atomically. Tensors given as functions are produced one at a time while writing,
 * so a merge streams through a model without holding it.
 */
export function writeSafetensors(file: string, tensors: TensorToWrite[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // the data starts 8-byte aligned
  const hbytes = Buffer.from(json, 'utf8');
  const pad = (8 - (hbytes.length % 8)) % 8;
  const head = Buffer.alloc(8 + hbytes.length + pad, 0x20);
  head.writeBigUInt64LE(BigInt(hbytes.length + pad), 0);
  hbytes.copy(head, 8);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, head);
    for (const t of tensors) {
      const data = typeof t.data === 'function' ? t.data() : t.data;
      const want = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
      if (data.byteLength !== want) throw new Error(`tensor ${t.name}: ${data.byteLength} bytes, expected ${want}`);
      fs.writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    fs.fsyncSync(fd);
  } catch (caught) {
    const e = caught as NodeJS.ErrnoException;
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}
