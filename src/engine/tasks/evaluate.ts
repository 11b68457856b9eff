/**
 * `lorakit eval`: mean next-token cross-entropy over every scored token. Each example is scored on its own, on
 * the tokens the tokenizer gives (no EOS is added), labels being the inputs shifted by one; an example longer than seqLen is cut into seqLen-token pieces that
 * overlap by one token, so every token after the first is predicted exactly once, each piece on its own.
 */
import { loadExamples } from '../data/dataset';
import { Tokenizer } from '../formats/tokenizer';
import { LlamaModel } from '../model/llama';
import type { Windows } from '../data/dataset';

export interface EvalResult {
  loss: number;
  perplexity: number;
  tokens: number;
  sequences: number;
}

export function evaluateFile(model: LlamaModel, tok: Tokenizer, data: string, seqLen: number): EvalResult {
  const { examples } = loadExamples(data, tok, model.spec.vocabSize, { appendEos: false });
  let sum = 0;
  let tokens = 0;
  let sequences = 0;
  for (const e of examples) {
    const step = Number.isFinite(seqLen) ? seqLen - 1 : e.ids.length;
    for (let s = 0; s + 1 < e.ids.length; s += step) {
      const n = Math.min(seqLen, e.ids.length - s); // inputs ids[s..s+n), the last has no target inside the piece
      const inputs = Int32Array.from(e.ids.slice(s, s + n));
      const targets = new Int32Array(n).fill(-1);
      for (let t = 0; t + 1 < n; t++) if (e.scored[s + t + 1]) targets[t] = e.ids[s + t + 1];
      const r = model.loss(inputs, targets, 1, n);
      sum += model.be.read(r.loss)[0];
      tokens += r.count;
      sequences++;
      model.be.free(r.loss);
    }
  }
  const loss = tokens ? sum / tokens : NaN;
  return { loss, perplexity: Math.exp(loss), tokens, sequences };
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
