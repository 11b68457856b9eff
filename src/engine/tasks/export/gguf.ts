/**
 * GGUF exports for llama.cpp and Ollama: a model folder (the base, or a merged model) as a GGUF model in F32, F16,
 * BF16, Q8_0 or Q4_0, with its tokenizer and chat template; and a PEFT adapter as a GGUF LoRA adapter in the
 * layout of llama.cpp's convert_lora_to_gguf.py. Both are written streaming and atomically.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../../core/errors';
import { readJson } from '../../core/fsx';
import { dequantizeWeight } from '../../core/qweight';
import { bnbKind, bnbPartNames, isBnbWeight, readBnbWeight } from '../../formats/bnb';
import { ModelSpec, loadSpec } from '../../formats/config';
import { FILE_TYPE, GgmlType, KvValue, TensorToWriteGguf, encodeTensor, f32, fitsBlocks, str, u32, writeGguf } from '../../formats/gguf';
import { archMetadata, ggufArch, ggufLinearName, ggufTensorName, permuteHeads, permuteRows } from '../../formats/gguf-arch';
import { vocabMetadata } from '../../formats/gguf-vocab';
import { alphaFor, loraScale } from '../../formats/lora-config';
import { TensorStore } from '../../formats/safetensors';
import { TextTokenizer } from '../../formats/tokenizer';
import { modulePath } from '../../formats/structure';
import { readAdapterConfig } from '../../formats/lora-config';
import { readAdapterTensors } from '../../model/peft';

export const GGUF_TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'] as const;
export type GgufTypeName = (typeof GGUF_TYPES)[number];
const TYPE_OF: Record<GgufTypeName, GgmlType> = {
  f32: GgmlType.F32,
  f16: GgmlType.F16,
  bf16: GgmlType.BF16,
  q8_0: GgmlType.Q8_0,
  q4_0: GgmlType.Q4_0,
};

export interface GgufExportReport {
  out: string;
  kind: 'model' | 'adapter';
  arch: string;
  type: string;
  tensors: number;
  bytes: number;
  /** tensors stored in another type than asked (rows that do not fill quantization blocks), name → type */
  fallbacks: Record<string, string>;
}

export interface ModelGgufOptions {
  model: string;
  out?: string;
  type?: GgufTypeName;
  /** general.name; the folder's name by default */
  name?: string;
  onTensor?: (name: string, i: number, n: number) => void;
}

/** The type a tensor is stored in: 1-D tensors stay F32 (as convert_hf_to_gguf.py keeps them); rows that do not
 * fill a block type's blocks fall back to F16 (the converter's fallback), or Q8_0 under Q4_0 where they can */
function storedType(shape: number[], want: GgmlType): GgmlType {
  if (shape.length < 2) return GgmlType.F32;
  if (fitsBlocks(shape, want)) return want;
  if (want === GgmlType.Q4_0 && fitsBlocks(shape, GgmlType.Q8_0)) return GgmlType.Q8_0;
  return want === GgmlType.Q8_0 || want === GgmlType.Q4_0 ? GgmlType.F16 : want;
}

function outFile(o: { out?: string }, fallback: string): string {
  const out = path.resolve(o.out ?? fallback);
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new UserError('--out is a folder; give a file name ending in .gguf', out);
  return out;
}

function checkType(type: string): GgmlType {
  const t = TYPE_OF[type as GgufTypeName];
  if (t === undefined) throw new UserError(`--type must be one of ${GGUF_TYPES.join(', ')}, got "${type}"`);
  return t;
}

/** A model folder as a GGUF model file. */
export function exportModelGguf(o: ModelGgufOptions): GgufExportReport {
  const dir = path.resolve(o.model);
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    if (fs.existsSync(path.join(dir, 'adapter_config.json')))
      throw new UserError('this is a PEFT adapter folder: export it with --adapter (and its base model with --model)', o.model);
    throw new UserError('not a model folder: no config.json', o.model);
  }
  const typeName = o.type ?? 'f16';
  const want = checkType(typeName);
  const spec = loadSpec(dir);
  const file = path.join(dir, 'config.json');
  const arch = ggufArch(spec);
  if (!fs.existsSync(path.join(dir, 'tokenizer.json')))
    throw new UserError('no tokenizer.json: llama.cpp needs the tokenizer inside the GGUF', dir);
  const tok = TextTokenizer.load(dir);
  const out = outFile(o, path.join(path.dirname(dir), `${path.basename(dir)}-${typeName}.gguf`));
  const { kv: archKv, ropeFreqs } = archMetadata(spec, file);
  const store = new TensorStore(dir);
  const bnb = bnbKind(readJson(file)) === '4bit';
  const skip = new Set<string>();
  if (bnb) for (const n of store.names()) if (isBnbWeight(store, n)) for (const p of bnbPartNames(n)) skip.add(p);

  const fallbacks: Record<string, string> = {};
  const tensors: TensorToWriteGguf[] = [];
  for (const name of store.names()) {
    if (skip.has(name)) continue;
    if (name === 'lm_head.weight' && spec.tieEmbeddings) continue;
    const gname = ggufTensorName(name);
    if (!gname) throw new UserError(`tensor "${name}" has no place in llama.cpp's ${arch} architecture`, dir);
    const quantized = bnb && isBnbWeight(store, name);
    const shape = quantized ? readBnbWeight(store, name).shape : store.info(name).shape;
    const type = storedType(shape, want);
    if (shape.length >= 2 && type !== want) fallbacks[gname] = GgmlType[type];
    const heads = permuteHeads(spec, name);
    tensors.push({
      name: gname,
      shape,
      type,
      data: () => {
        let x = quantized ? dequantizeWeight(readBnbWeight(store, name)) : store.readF32(name);
        if (heads) x = permuteRows(x, heads, shape.length > 1 ? shape[1] : 1);
        return encodeTensor(x, type);
      },
    });
  }
  if (ropeFreqs)
    tensors.push({
      name: 'rope_freqs.weight',
      shape: [ropeFreqs.length],
      type: GgmlType.F32,
      data: () => encodeTensor(ropeFreqs, GgmlType.F32),
    });
  const kv: [string, KvValue][] = [
    ['general.architecture', str(arch)],
    ['general.type', str('model')],
    ['general.name', str(o.name ?? path.basename(dir))],
    ...archKv,
    ['general.file_type', u32(FILE_TYPE[want])],
    ['general.quantization_version', u32(2)],
    ...vocabMetadata(tok, spec),
  ];
  const r = writeGguf(out, kv, tensors, o.onTensor);
  return { out, kind: 'model', arch, type: typeName, tensors: r.tensors, bytes: r.bytes, fallbacks };
}

export interface AdapterGgufOptions {
  adapter: string;
  /** the base model folder (only config.json is read); by default the adapter's base_model_name_or_path */
  model?: string;
  out?: string;
  onTensor?: (name: string, i: number, n: number) => void;
}

/** The base model's spec for an adapter: --model, or the folder adapter_config.json names. */
function adapterBase(o: AdapterGgufOptions, baseModel: string | undefined): { spec: ModelSpec; dir: string } {
  const cfgFile = path.join(o.adapter, 'adapter_config.json');
  const dir = o.model ?? baseModel;
  if (!dir)
    throw new UserError(
      'adapter_config.json names no base model: pass the base model folder with --model (only its config.json is read)',
      cfgFile,
    );
  if (!fs.existsSync(path.join(dir, 'config.json')))
    throw new UserError(
      `the base model ${o.model ? '' : '(base_model_name_or_path) '}has no config.json here: pass the base model folder with --model`,
      o.model ?? cfgFile,
    );
  return { spec: loadSpec(dir), dir };
}

/**
 * A PEFT LoRA adapter as a GGUF LoRA adapter: `blk.N.<module>.weight.lora_a` (PEFT's A, [r, in]) and `.lora_b`
 * (B, [out, r]) in F32, `adapter.lora.alpha`. llama.cpp scales each module by alpha/r with r read from the
 * tensors; where lorakit's scale differs (rsLoRA, PEFT's alpha_pattern), the difference is folded into B, so the
 * adapter's effect is the same. For the llama architecture B's rows for q and k are permuted as the base's are.
 */
export function exportAdapterGguf(o: AdapterGgufOptions): GgufExportReport {
  const cfg = readAdapterConfig(o.adapter);
  const { spec } = adapterBase(o, cfg.baseModel);
  const arch = ggufArch(spec);
  const out = outFile(o, path.join(path.dirname(path.resolve(o.adapter)), `${path.basename(path.resolve(o.adapter))}-lora.gguf`));
  const modules = readAdapterTensors(o.adapter, spec);
  const alpha = cfg.alpha;
  const tensors: TensorToWriteGguf[] = [];
  for (const [p, t] of modules) {
    const base = ggufLinearName(t.layer, t.name);
    const fold = loraScale(alphaFor(cfg, p), t.r, cfg.useRslora) / (alpha / t.r);
    const heads = permuteHeads(spec, `${modulePath(t.layer, t.name)}.weight`);
    tensors.push({ name: `${base}.lora_a`, shape: [t.r, t.inF], type: GgmlType.F32, data: () => encodeTensor(t.A, GgmlType.F32) });
    tensors.push({
      name: `${base}.lora_b`,
      shape: [t.outF, t.r],
      type: GgmlType.F32,
      data: () => {
        let b = t.B;
        if (fold !== 1) b = b.map((v) => v * fold);
        if (heads) b = permuteRows(b, heads, t.r);
        return encodeTensor(b, GgmlType.F32);
      },
    });
  }
  const kv: [string, KvValue][] = [
    ['general.architecture', str(arch)],
    ['general.type', str('adapter')],
    ['general.name', str(path.basename(path.resolve(o.adapter)))],
    ['adapter.type', str('lora')],
    ['adapter.lora.alpha', f32(alpha)],
  ];
  const r = writeGguf(out, kv, tensors, o.onTensor);
  return { out, kind: 'adapter', arch, type: 'f32', tensors: r.tensors, bytes: r.bytes, fallbacks: {} };
}
