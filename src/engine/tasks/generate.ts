/** Text generation with a KV cache: greedy, or temperature with top-p (nucleus) sampling, adapter on or off. */
import { UserError } from '../core/errors';
import { eosIds } from '../formats/config';
import { Tokenizer } from '../formats/tokenizer';
import { LlamaModel } from '../model/llama';
import { Rng } from '../core/rng';

export interface GenerateOptions {
  maxNewTokens?: number;
  temperature?: number; // 0 = greedy
  topP?: number;
  seed?: number;
  onText?: (delta: string) => void;
  /** stop early (between tokens); the text so far is returned */
  signal?: AbortSignal;
  /** render the prompt as a user turn with the model's chat template (and the assistant's header) */
  chat?: boolean;
}

export interface Generation {
  text: string;
  ids: number[];
  promptTokens: number;
  newTokens: number;
  tokensPerS: number;
}

/** Pick the next token from logits (the first `n` entries are the real vocabulary). */
export function sample(logits: Float32Array, n: number, temperature: number, topP: number, rng: Rng): number {
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i]);
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += p[i] = Math.exp((logits[i] - max) / temperature);
  const order = [...Array(n).keys()].sort((a, b) => p[b] - p[a] || a - b);
  let keep = 0;
  let mass = 0;
  while (keep < n && (keep === 0 || mass < topP * sum)) mass += p[order[keep++]];
  let u = rng.next() * mass;
  for (let i = 0; i < keep; i++) {
    u -= p[order[i]];
    if (u <= 0) return order[i];
  }
  return order[keep - 1];
}

/** Generate a completion, yielding to the event loop between tokens so that a caller can cancel or stream. */
export async function generate(model: LlamaModel, tok: Tokenizer, prompt: string, o: GenerateOptions = {}): Promise<Generation> {
  const maxNew = o.maxNewTokens ?? 64;
  const temperature = o.temperature ?? 0;
  const topP = o.topP ?? 1;
  if (!(Number.isInteger(maxNew) && maxNew >= 0)) throw new UserError(`--max-new-tokens must be a non-negative integer, got ${maxNew}`);
  if (!(temperature >= 0)) throw new UserError(`--temperature must be ≥ 0, got ${temperature}`);
  if (!(topP > 0 && topP <= 1)) throw new UserError(`--top-p must be in (0, 1], got ${topP}`);
  const rng = new Rng(o.seed ?? 0);
  // a rendered chat template carries its own special tokens (as transformers' apply_chat_template encodes it)
  const promptIds = o.chat ? tok.encode(tok.applyChat([{ role: 'user', content: prompt }], true), false) : tok.encode(prompt);
  if (promptIds.length === 0) throw new UserError('the prompt is empty');
  const stops = new Set([...eosIds(model.spec), ...(tok.eosId !== undefined ? [tok.eosId] : [])]);
  const n = Math.min(model.spec.vocabSize, tok.vocabSize);
  const be = model.be;
  const cache = model.newCache();
  const out: number[] = [];
  const t0 = performance.now();
  let shown = '';
  try {
    let feed = Int32Array.from(promptIds);
    for (let i = 0; i < maxNew; i++) {
      const logitsT = model.step(feed, cache);
      const next = sample(be.read(logitsT), n, temperature, topP, rng);
      be.free(logitsT);
      if (stops.has(next)) break;
      out.push(next);
      if (o.onText) {
        const text = tok.decode(out);
        if (!text.endsWith('\uFFFD')) {
          o.onText(text.slice(shown.length));
          shown = text;
        }
      }
      feed = Int32Array.of(next);
      await new Promise((r) => setImmediate(r));
      if (o.signal?.aborted) break;
    }
  } finally {
    model.freeCache(cache);
  }
  const s = (performance.now() - t0) / 1000;
  return {
    text: tok.decode(out),
    ids: out,
    promptTokens: promptIds.length,
    newTokens: out.length,
    tokensPerS: out.length / Math.max(s, 1e-9),
  };
}
