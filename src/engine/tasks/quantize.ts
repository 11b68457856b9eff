/**
 * `lorakit quantize`: write a model folder in the Hugging Face bnb-4bit layout. The decoder layers' linear weights
 * become 4-bit codes and scales; embeddings, norms and lm_head are copied as they are (as transformers does). The
 * folder keeps the source's shards, config (plus `quantization_config`), tokenizer and other files, and records
 * where its full-precision original lives (`lorakit_quantize.json`), so a later merge can use the original.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../core/errors';
import { resolveModel } from '../formats/hf-cache';
import { isQuantizable } from '../formats/structure';
import { loadSpec } from '../formats/config';
import { DTYPE_BYTES, TORCH_DTYPE, toF32 } from '../core/dtype';
import { TensorStore, TensorToWrite, isPickle, writeSafetensors } from '../formats/safetensors';
import { isInside, readJson, writeDirAtomic } from '../core/fsx';
import { bnbKind, bnbTensors, quantizationConfig } from '../formats/bnb';
import { QuantConfig, QuantWeight, TorchDtype, bitsPerParam, numelOf, quantBytes, quantizeWeight } from '../core/qweight';

export const SOURCE_FILE = 'lorakit_quantize.json';

export interface QuantizeReport {
  out: string;
  quantized: number;
  params: number;
  bytes: number;
  bitsPerParam: number;
  config: QuantConfig;
}

/** Refuse a model that is already quantized, naming the folder. */
export function refuseQuantized(dir: string, what: string): void {
  const kind = bnbKind(readJson(path.join(dir, 'config.json')));
  if (kind) throw new UserError(`the model is already ${kind === '4bit' ? '4-bit' : '8-bit'} quantized (bitsandbytes); ${what}`, dir);
}

/**
 * Quantize a model folder into `outDir`. `source` is the full-precision original recorded for later merges (the
 * folder itself by default; null when it is a temporary folder).
 */
export function quantizeModel(
  modelDir: string,
  outDir: string,
  cfg: QuantConfig,
  onTensor?: (name: string) => void,
  source?: string | null,
): QuantizeReport {
  const model = path.resolve(resolveModel(modelDir));
  if (source === undefined) source = model;
  const out = path.resolve(outDir);
  refuseQuantized(model, 'quantize its full-precision original instead');
  if (isInside(out, model))
    throw new UserError('the quantized model must be written outside the source folder (the source is never modified)', outDir);
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0) throw new UserError('output folder exists and is not empty', outDir);
  loadSpec(model); // a valid model config, before any work
  const store = new TensorStore(model);
  let quantized = 0,
    params = 0,
    bytes = 0;
  let compute: TorchDtype = 'float32';
  writeDirAtomic(out, (tmp) => {
    const weightMap: Record<string, string> = {};
    let total = 0;
    for (const src of store.files) {
      const tensors: TensorToWrite[] = [];
      for (const name of src.names()) {
        const info = src.info(name);
        if (!isQuantizable(name)) {
          tensors.push({ name, dtype: info.dtype, shape: info.shape, data: () => src.read(name).data });
          continue;
        }
        if (info.shape.length !== 2) throw new UserError(`"${name}" has shape [${info.shape}], a matrix was expected`, src.file);
        onTensor?.(name);
        const t = src.read(name);
        const torch = TORCH_DTYPE[t.dtype];
        if (!torch) throw new UserError(`"${name}" is ${t.dtype}; only F32, F16 and BF16 weights can be quantized`, src.file);
        compute = torch;
        const q: QuantWeight = quantizeWeight(toF32(t.dtype, t.data), info.shape, cfg, compute);
        tensors.push(...bnbTensors(name, q));
        quantized++;
        params += numelOf(q);
        bytes += quantBytes(q);
      }
      for (const t of tensors) {
        weightMap[t.name] = path.basename(src.file);
        total += t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
      }
      writeSafetensors(path.join(tmp, path.basename(src.file)), tensors, { format: 'pt' });
    }
    for (const entry of fs.readdirSync(model)) {
      const from = path.join(model, entry);
      if (entry.endsWith('.safetensors') || isPickle(entry) || entry === SOURCE_FILE || !fs.statSync(from).isFile()) continue;
      fs.copyFileSync(from, path.join(tmp, entry));
    }
    const config = readJson(path.join(model, 'config.json'));
    config.quantization_config = quantizationConfig(cfg, compute);
    fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    const index = path.join(tmp, 'model.safetensors.index.json');
    if (fs.existsSync(index)) {
      const j = readJson(index);
      j.weight_map = weightMap;
      j.metadata = { ...(j.metadata ?? {}), total_size: total };
      fs.writeFileSync(index, JSON.stringify(j, null, 2) + '\n');
    }
    fs.writeFileSync(path.join(tmp, SOURCE_FILE), JSON.stringify({ source, ...cfg }, null, 2) + '\n');
  });
  return { out, quantized, params, bytes, bitsPerParam: bitsPerParam(cfg), config: cfg };
}
