/** Opening a model folder: spec, weights on a backend, tokenizer, and optionally a PEFT adapter. */
import { Backend } from './backend/backend';
import { loadAdapter } from './lora/peft';
import { LlamaModel } from './model/llama';
import { loadModel } from './model/weights';
import type { QuantConfig } from './quant/weight';
import { NoTokenizer, TextTokenizer, Tokenizer } from './formats/tokenizer';
import { UserError } from './errors';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface OpenModel {
  model: LlamaModel;
  tokenizer: Tokenizer;
  dir: string;
  /** the 4-bit quantization of the decoder's linear weights, and where it came from */
  quant: QuantConfig | null;
  quantSource: 'on load' | 'bnb-4bit' | null;
}

/** Open a model folder; with `quant`, its linear weights are quantized on load (a bnb-4bit folder always is). */
export function openModel(dir: string, be: Backend, adapterDir?: string, quant: QuantConfig | null = null): OpenModel {
  if (!fs.existsSync(dir)) throw new UserError('model folder not found', dir);
  if (!fs.statSync(dir).isDirectory()) throw new UserError('expected a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)', dir);
  if (!fs.existsSync(path.join(dir, 'config.json')) && fs.existsSync(path.join(dir, 'adapter_config.json')))
    throw new UserError('this is a PEFT adapter folder, not a model: pass it with --adapter, and the base model with --model', dir);
  const { spec, weights, quant: q, quantSource } = loadModel(dir, be, quant);
  const tokenizer: Tokenizer = fs.existsSync(path.join(dir, 'tokenizer.json')) ? TextTokenizer.load(dir) : new NoTokenizer(dir);
  const model = new LlamaModel(spec, weights, be);
  if (adapterDir) model.adapter = loadAdapter(adapterDir, spec, be);
  return { model, tokenizer, dir, quant: q, quantSource };
}
