/**
 * Merge one or more LoRA adapters into a base model: W' = W + Σᵢ wᵢ·sᵢ·Bᵢ·Aᵢ for every targeted linear. The
 * merged model is a normal Hugging Face folder written beside the base (never over it), streamed one tensor at a
 * time, with the same file layout, config and tokenizer files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sharedRuntime } from '../../ops/wasm';
import { gemm } from '../../ops/matmul/gemm';
import { UserError } from '../../core/errors';
import { DType, DTYPE_BYTES, TORCH_DTYPE, fromF32, parseFloatDType, toF32 } from '../../core/dtype';
import { loadSpec } from '../../formats/config';
import { TensorStore, TensorToWrite, isPickle, writeSafetensors } from '../../formats/safetensors';
import { isInside, readJson, realPathOf, writeDirAtomic } from '../../core/fsx';
import { alphaFor, loraScale } from '../../formats/lora-config';
import { bnbKind, bnbPartNames, isBnbWeight, readBnbWeight } from '../../formats/bnb';
import { dequantizeWeight } from '../../core/qweight';
import { SOURCE_FILE } from '../quantize';
import { readAdapterConfig } from '../../formats/lora-config';
import { readAdapterTensors } from '../../model/peft';

export interface MergeOptions {
  model: string;
  adapters: { dir: string; weight: number }[];
  out: string;
  dtype?: 'f32' | 'f16' | 'bf16';
}

export interface MergeReport {
  out: string;
  mergedModules: number;
  tensors: number;
  dtype: string;
  files: string[];
}

/** The merged model's folder: outside the base (by real paths, any spelling) and new or empty; `given` as the user wrote it. */
export function checkMergeOut(given: string, base: string): void {
  const out = path.resolve(given);
  if (isInside(out, base))
    throw new UserError(
      `the merged model must be written outside the base model folder ${realPathOf(base)} (the base is never modified)`,
      given,
    );
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0) throw new UserError('output folder exists and is not empty', given);
}

export function mergeAdapters(o: MergeOptions): MergeReport {
  const model = path.resolve(o.model);
  const out = path.resolve(o.out);
  checkMergeOut(o.out, model);
  const spec = loadSpec(model);
  const store = new TensorStore(model);
  // delta terms per weight name: (B, A, factor)
  const deltas = new Map<string, { A: Float32Array; B: Float32Array; r: number; inF: number; outF: number; f: number }[]>();
  for (const a of o.adapters) {
    const cfg = readAdapterConfig(a.dir);
    for (const [p, t] of readAdapterTensors(a.dir, spec)) {
      const list = deltas.get(`${p}.weight`) ?? [];
      list.push({ ...t, f: a.weight * loraScale(alphaFor(cfg, p), t.r, cfg.useRslora) });
      deltas.set(`${p}.weight`, list);
    }
  }
  const unmerged = [...deltas.keys()].filter((n) => !store.has(n));
  if (unmerged.length) throw new UserError(`adapter modules not found in the model: ${unmerged.join(', ')}`, o.adapters[0].dir);
  const outDtype: DType | undefined = o.dtype ? parseFloatDType(o.dtype) : undefined;
  // a bnb-4bit base (merged only when asked to requantize): its 4-bit weights are dequantized and written in the
  // dtype they had; their quantization parts are dropped
  const bnb = bnbKind(readJson(path.join(model, 'config.json'))) === '4bit';
  const parts = new Set<string>();
  const quantized = new Set<string>();
  if (bnb)
    for (const n of store.names())
      if (isBnbWeight(store, n)) {
        quantized.add(n);
        for (const p of bnbPartNames(n)) parts.add(p);
      }
  const rt = sharedRuntime();
  const files = store.files.map((f) => f.file);
  let count = 0;
  /** w (out, in, f32, owned) plus the adapters' deltas for `name`, in `dtype` */
  const mergeInto = (name: string, w: Float32Array, dtype: DType) => {
    const list = deltas.get(name);
    if (!list) return fromF32(dtype, w);
    for (const d of list) gemm(rt, { M: d.outF, N: d.inF, K: d.r, a: d.B, b: d.A, c: w, alpha: d.f, beta: 1 });
    for (let i = 0; i < w.length; i++)
      if (!Number.isFinite(w[i])) throw new UserError(`merging makes "${name}" non-finite; nothing was written`, o.adapters[0].dir);
    count++;
    return fromF32(dtype, w);
  };
  writeDirAtomic(out, (tmp) => {
    for (const src of store.files) {
      const names = src.names().filter((n) => !parts.has(n));
      const tensors: TensorToWrite[] = names.map((name) => {
        if (quantized.has(name)) {
          const q = readBnbWeight(store, name);
          const dtype = outDtype ?? parseFloatDType(q.dtype)!;
          return { name, dtype, shape: q.shape, data: () => mergeInto(name, dequantizeWeight(q), dtype) };
        }
        const info = src.info(name);
        const isFloat = info.dtype === 'F32' || info.dtype === 'F16' || info.dtype === 'BF16';
        const dtype = isFloat && outDtype ? outDtype : info.dtype;
        return {
          name,
          dtype,
          shape: info.shape,
          data: () => {
            const t = src.read(name);
            const list = deltas.get(name);
            if (!isFloat) return t.data;
            if (!list) return dtype === t.dtype ? t.data : fromF32(dtype, toF32(t.dtype, t.data));
            return mergeInto(name, toF32(t.dtype, t.data).slice(), dtype); // (out, in)
          },
        };
      });
      writeSafetensors(path.join(tmp, path.basename(src.file)), tensors, { format: 'pt' });
    }
    // everything else in the folder (config, tokenizer, generation config, index) comes along
    for (const entry of fs.readdirSync(model)) {
      const from = path.join(model, entry);
      if (entry.endsWith('.safetensors') || !fs.statSync(from).isFile()) continue;
      if (isPickle(entry) || entry === SOURCE_FILE) continue;
      fs.copyFileSync(from, path.join(tmp, entry));
    }
    if (outDtype || bnb) {
      const cfg = readJson(path.join(model, 'config.json'));
      if (outDtype) cfg.torch_dtype = TORCH_DTYPE[outDtype];
      delete cfg.quantization_config;
      fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
      const idx = path.join(tmp, 'model.safetensors.index.json');
      if (fs.existsSync(idx)) {
        const j = readJson(idx);
        let total = 0;
        for (const n of store.names()) {
          if (parts.has(n)) delete j.weight_map[n];
          else if (quantized.has(n)) total += readBnbWeight(store, n).shape.reduce((x, y) => x * y, 1) * DTYPE_BYTES[outDtype ?? 'F32'];
          else total += store.info(n).shape.reduce((x, y) => x * y, 1) * DTYPE_BYTES[outDtype ?? store.info(n).dtype];
        }
        j.metadata = { ...(j.metadata ?? {}), total_size: total };
        fs.writeFileSync(idx, JSON.stringify(j, null, 2) + '\n');
      }
    }
  });
  return {
    out,
    mergedModules: count,
    tensors: store.names().length,
    dtype: outDtype ?? 'as stored',
    files: files.map((f) => path.basename(f)),
  };
}
