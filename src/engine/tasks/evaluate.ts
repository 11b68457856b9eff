/**
 * `lorakit eval`: mean next-token cross-entropy over every scored token. Each example is scored on its own, on
 * the tokens the tokenizer gives (no EOS is added), labels being the inputs shifted by one; an example longer than
 * the window is cut into window-long pieces that overlap by one token, so every token after the first is predicted
 * exactly once, each piece on its own. The window is --seq-len, or by default the model's context
 * (max_position_embeddings) capped at DEFAULT_EVAL_WINDOW: one sequence of 50,000 tokens would take minutes and
 * memory quadratic in its length.
 */
import { UserError } from '../core/errors';
import { loadExamples } from '../data/dataset';
import { Tokenizer } from '../formats/tokenizer';
import { LlamaModel } from '../model/llama';
import type { Windows } from '../data/dataset';
import { nonFiniteError } from './finite';

/** the default window of eval when --seq-len is not given, at most (tokens) */
export const DEFAULT_EVAL_WINDOW = 2048;

export interface EvalResult {
  loss: number;
  perplexity: number;
  tokens: number;
  sequences: number;
  /** the window examples were cut into (tokens) */
  window: number;
  /** how the window was chosen */
  windowFrom: 'seq-len' | 'context';
  /** examples longer than the window, cut into pieces */
  cutExamples: number;
}

export interface EvalOptions {
  /** --seq-len: the window (default: the model's context, capped at DEFAULT_EVAL_WINDOW) */
  seqLen?: number;
  /** called after each piece with the pieces done and their total */
  onProgress?: (done: number, total: number, tokens: number) => void;
  /** the model and adapter folders, to name the weight at fault when the loss is not finite */
  modelDir?: string;
  adapterDir?: string;
}

/** the default window for a model: its context, at most DEFAULT_EVAL_WINDOW */
export function evalWindow(model: LlamaModel): number {
  return Math.max(2, Math.min(model.spec.maxPositions, DEFAULT_EVAL_WINDOW));
}

export function evaluateFile(model: LlamaModel, tok: Tokenizer, data: string, o: EvalOptions | number = {}): EvalResult {
  const opts: EvalOptions = typeof o === 'number' ? (Number.isFinite(o) ? { seqLen: o } : {}) : o;
  const { examples } = loadExamples(data, tok, model.spec.vocabSize, { appendEos: false });
  const window = opts.seqLen ?? evalWindow(model);
  const step = window - 1;
  const pieces = (n: number) => (n < 2 ? 0 : Math.ceil((n - 1) / step));
  const total = examples.reduce((a, e) => a + pieces(e.ids.length), 0);
  let sum = 0;
  let tokens = 0;
  let sequences = 0;
  let cutExamples = 0;
  for (const e of examples) {
    if (e.ids.length > window) cutExamples++;
    for (let s = 0; s + 1 < e.ids.length; s += step) {
      const n = Math.min(window, e.ids.length - s); // inputs ids[s..s+n), the last has no target inside the piece
      const inputs = Int32Array.from(e.ids.slice(s, s + n));
      const targets = new Int32Array(n).fill(-1);
      for (let t = 0; t + 1 < n; t++) if (e.scored[s + t + 1]) targets[t] = e.ids[s + t + 1];
      const r = model.loss(inputs, targets, 1, n);
      sum += model.be.read(r.loss)[0];
      tokens += r.count;
      sequences++;
      model.be.free(r.loss);
      opts.onProgress?.(sequences, total, tokens);
    }
  }
  if (tokens === 0)
    throw new UserError('no token to score: every example is shorter than two tokens, or none of its labels is scored', data);
  const loss = sum / tokens;
  if (!Number.isFinite(loss)) throw nonFiniteError('the eval loss', opts.modelDir, opts.adapterDir);
  return { loss, perplexity: Math.exp(loss), tokens, sequences, window, windowFrom: opts.seqLen ? 'seq-len' : 'context', cutExamples };
}

/** Mean loss over the windows, in batches of `batch`. */
export function evaluateWindows(model: LlamaModel, w: Windows, batch: number): { loss: number; tokens: number } {
  let sum = 0;
  let tokens = 0;
  for (let i = 0; i < w.count; i += batch) {
    const B = Math.min(batch, w.count - i);
    const r = model.loss(w.inputs.subarray(i * w.T, (i + B) * w.T), w.targets.subarray(i * w.T, (i + B) * w.T), B, w.T);
    sum += model.be.read(r.loss)[0];
    tokens += r.count;
    model.be.free(r.loss);
  }
  return { loss: tokens ? sum / tokens : NaN, tokens };
}
