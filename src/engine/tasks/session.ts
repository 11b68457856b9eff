/** A model ready to run: an opened folder's weights on a backend, its tokenizer, and optionally a PEFT adapter. */
import type { Backend } from '../core/backend';
import type { QuantConfig } from '../core/qweight';
import { ModelFolder, openModelFolder } from '../formats/model-folder';
import { NoTokenizer, TextTokenizer, Tokenizer } from '../formats/tokenizer';
import { LlamaModel } from '../model/llama';
import { loadAdapter } from '../model/peft';
import { loadModel } from '../model/weights';

export interface OpenModel {
  model: LlamaModel;
  tokenizer: Tokenizer;
  dir: string;
  /** the 4-bit quantization of the decoder's linear weights, and where it came from */
  quant: QuantConfig | null;
  quantSource: 'on load' | 'bnb-4bit' | null;
}

/**
 * Load a model folder (a path, or one opened already) onto a backend; with `quant`, a path's linear weights are
 * quantized on load (a bnb-4bit folder always is).
 */
export function openModel(folder: string | ModelFolder, be: Backend, adapterDir?: string, quant: QuantConfig | null = null): OpenModel {
  const f = typeof folder === 'string' ? openModelFolder(folder, quant) : folder;
  const { spec, weights } = loadModel(f, be);
  const tokenizer: Tokenizer = f.hasTokenizer ? TextTokenizer.load(f.dir) : new NoTokenizer(f.dir);
  const model = new LlamaModel(spec, weights, be);
  if (adapterDir) model.adapter = loadAdapter(adapterDir, spec, be);
  return { model, tokenizer, dir: f.dir, quant: f.quant, quantSource: f.quantSource };
}
