/**
 * Opening a model folder once: config.json, the tensor index and the stored quantization are read here, and the
 * memory plan, the loader and the commands all take the opened folder instead of reading them again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../core/errors';
import { readJson } from '../core/fsx';
import { resolveModel } from './hf-cache';
import type { QuantConfig } from '../core/qweight';
import { bnbKind, isBnbWeight, readBnbState } from './bnb';
import { ModelSpec, loadSpec } from './config';
import { TensorStore } from './safetensors';
import { modulePath } from './structure';

export interface ModelFolder {
  dir: string;
  spec: ModelSpec;
  /** the safetensors headers (tensors are read lazily) */
  store: TensorStore;
  /** how the decoder's linear weights will be held: the stored bnb-4bit quantization, or the one asked for, or none */
  quant: QuantConfig | null;
  quantSource: 'on load' | 'bnb-4bit' | null;
  hasTokenizer: boolean;
}

/**
 * Open a model folder; `asked` is the quantization to apply on load (`--quant`), checked against a stored one.
 * A Hub id (`ORG/NAME[@REVISION]`) that is not a folder here opens its snapshot in the Hugging Face cache.
 */
export function openModelFolder(given: string, asked: QuantConfig | null = null): ModelFolder {
  const dir = resolveModel(given);
  if (!fs.existsSync(dir)) throw new UserError('model folder not found', dir);
  if (!fs.statSync(dir).isDirectory())
    throw new UserError(
      'is a file, not a model folder: --model takes a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)',
      dir,
    );
  if (!fs.existsSync(path.join(dir, 'config.json')) && fs.existsSync(path.join(dir, 'adapter_config.json')))
    throw new UserError(`this is a PEFT adapter folder, not a model: pass it with --adapter, and ${adapterBase(dir)} with --model`, dir);
  const spec = loadSpec(dir);
  const store = new TensorStore(dir);
  const stored = storedQuant(dir, store, spec, asked);
  const quant = stored ?? asked;
  return {
    dir,
    spec,
    store,
    quant,
    quantSource: stored ? 'bnb-4bit' : quant ? 'on load' : null,
    hasTokenizer: fs.existsSync(path.join(dir, 'tokenizer.json')),
  };
}

/** "its base model, <path>" as adapter_config.json names it, or "the base model" */
function adapterBase(dir: string): string {
  try {
    const base = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'))?.base_model_name_or_path;
    if (typeof base === 'string' && base) return `its base model (adapter_config.json names ${base})`;
  } catch {
    // an unreadable adapter_config.json is reported when the adapter is used
  }
  return 'the base model';
}

/**
 * The quantization a model folder stores (bnb-4bit), checked against what the user asked for: `--quant` on a
 * pre-quantized base must name the stored type (or be left out).
 */
function storedQuant(dir: string, store: TensorStore, spec: ModelSpec, asked: QuantConfig | null): QuantConfig | null {
  const kind = bnbKind(readJson(path.join(dir, 'config.json')));
  if (kind === '8bit')
    throw new UserError('8-bit bitsandbytes models are not supported; use the full-precision original (optionally with --quant nf4)', dir);
  if (!kind) return null;
  const first = `${modulePath(0, 'q_proj')}.weight`;
  if (spec.layers === 0 || !isBnbWeight(store, first))
    throw new UserError(`config.json has a bitsandbytes quantization_config but "${first}" is not in the bnb 4-bit layout`, dir);
  const q = readBnbState(store, first); // the quantization only: the weight itself is read when the model loads
  const cfg: QuantConfig = { type: q.type, blocksize: q.blocksize, doubleQuant: q.nested };
  if (asked && asked.type !== cfg.type)
    throw new UserError(`the model is stored quantized as ${cfg.type}; pass --quant ${cfg.type} or leave --quant out`, dir);
  return cfg;
}
